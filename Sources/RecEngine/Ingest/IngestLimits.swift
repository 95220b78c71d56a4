/// Bounds on what one ingest run reads and holds, so that no source (a gzip bomb, a file of
/// garbage, a line that never ends, a stream that never closes) can exhaust memory or outlast the
/// run's deadline. Each is far from what a real movie log needs.
public enum IngestLimits {
    /// The longest line (or Kafka message) read as a line: 1 MiB. A movie log line is about
    /// 100 bytes, a recommendation of 20 movies under 5 KB. A longer line is rejected
    /// (`line_too_long`) and reading goes on after its newline.
    public static let maximumLineBytes = 1 << 20
    /// The head of an over-long line that is kept in the rejects file.
    public static let keptBytesOfLongLine = 1 << 10
    /// The most decompressed bytes per compressed byte of a gzip file: a movie log compresses 5
    /// to 15 times, a decompression bomb about 1000 times. Checked once a file has given
    /// `gzipRatioAllowance` bytes, so that a small file of repeated lines passes.
    public static let maximumGzipRatio: Int64 = 100
    public static let gzipRatioAllowance: Int64 = 64 << 20
    /// Rejected lines shown in the report (each cut to `sampleCharacters`); all of them are in
    /// the rejects file.
    public static let sampleLines = 5
    public static let sampleCharacters = 200
}
