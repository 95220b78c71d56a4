public import Foundation

extension AtomicFile {
    /// Replaces the end of an open file, from `offset` on, with `data`, and flushes it (`fsync`),
    /// so that a failure leaves the file as it was: on a short write, a full disk or an I/O error,
    /// `original` (the bytes that were at `offset`) is written back, the file cut back to its old
    /// length and flushed, and the error thrown. Appending is the case of an `offset` at the end
    /// and an empty `original`.
    ///
    /// A crash (`kill -9`, a power loss) in the middle can still leave part of `data` with no
    /// newline after it: readers must take an unterminated last line for a torn write.
    ///
    /// - Parameters:
    ///   - descriptor: the file, opened for writing without `O_APPEND` (which would ignore `offset`).
    ///   - path: names the file in errors.
    /// - Throws: `AtomicFileError` naming the step that failed and why (`isDiskFull` for ENOSPC).
    public static func replaceTail(
        of descriptor: Int32, from offset: off_t, with data: Data, original: Data, path: String
    ) throws {
        var failure = writeAll(data, to: descriptor, at: offset, path: path)
        if failure == nil && ftruncate(descriptor, offset + off_t(data.count)) != 0 {
            failure = AtomicFileError(path: path, step: "cutting it to its new length", code: errno)
        }
        if failure == nil && fsync(descriptor) != 0 {
            failure = AtomicFileError(path: path, step: "flushing (fsync)", code: errno)
        }
        guard let failure else { return }
        // Back to what it was: the original bytes sit in blocks the file already had, so putting
        // them back needs no space; cutting a file shorter never does.
        if writeAll(original, to: descriptor, at: offset, path: path) != nil
            || ftruncate(descriptor, offset + off_t(original.count)) != 0
        {
            ftruncate(descriptor, offset)
        }
        fsync(descriptor)
        throw failure
    }

    /// Writes every byte of `data` at `offset`, going on after short writes and signals; nil when
    /// all were written.
    private static func writeAll(_ data: Data, to descriptor: Int32, at offset: off_t, path: String) -> AtomicFileError?
    {
        data.withUnsafeBytes { bytes -> AtomicFileError? in
            var done = 0
            while done < bytes.count {
                let result = pwrite(
                    descriptor, bytes.baseAddress.map { $0 + done }, bytes.count - done, offset + off_t(done))
                if result < 0 {
                    if errno == EINTR { continue }
                    return AtomicFileError(
                        path: path, step: "writing \(bytes.count) bytes at offset \(offset) (\(done) written)",
                        code: errno)
                }
                // A write that makes no progress and reports no error would loop for ever.
                if result == 0 { return AtomicFileError(path: path, step: "writing (no progress)", code: EIO) }
                done += result
            }
            return nil
        }
    }
}
