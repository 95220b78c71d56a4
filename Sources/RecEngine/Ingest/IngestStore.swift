import Foundation
import DurableFiles

/// The ingest's durable state, in one folder:
///
/// ```
/// state.json                      the commit: segments in order, positions they cover
/// segments/000007.ratings.csv     time,user,movie,rating  (what run 7 read, in stream order)
/// segments/000007.watches.csv     time,user,movie,minute
/// segments/000007.rejects.tsv     origin<TAB>reason<TAB>line
/// ```
///
/// A run writes and flushes its segment files first, then replaces `state.json` atomically; that
/// rename is the commit. Killed before it, the run leaves segment files no state names, which the
/// next run overwrites, and the position is the old one: nothing is lost or read twice.
struct IngestStore {
    struct State: Codable, Equatable {
        var formatVersion = 1
        var source: String
        /// The generation of the newest segment; every run that reads something adds one.
        var generation: Int
        /// Generations whose segments make up the data, oldest first.
        var segments: [Int]
        /// Where each source key (file, partition) was read up to.
        var positions: [String: Int64]
        var committedOn: Date
    }

    enum SegmentPart: String {
        case ratings = "ratings.csv"
        case watches = "watches.csv"
        case rejects = "rejects.tsv"
    }

    let folder: String

    var statePath: String { "\(folder)/state.json" }

    func segmentPath(_ generation: Int, _ part: SegmentPart) -> String {
        let number = String(generation)
        return "\(folder)/segments/\(String(repeating: "0", count: max(0, 6 - number.count)))\(number).\(part.rawValue)"
    }

    /// The committed state, nil for a new store.
    func load() throws -> State? {
        guard let data = FileManager.default.contents(atPath: statePath) else { return nil }
        do {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            return try decoder.decode(State.self, from: data)
        } catch {
            throw RecEngineError(
                .invalidArgument, "the ingest state cannot be read: \(error)", location: statePath,
                hint: "it is written atomically, so it was edited by hand; restore it or run the ingest with mode historical")
        }
    }

    /// Writes one part of a segment, flushed to disk.
    func writeSegment(_ generation: Int, _ part: SegmentPart, _ text: String) throws {
        try AtomicFile.write(Data(text.utf8), to: segmentPath(generation, part))
    }

    /// The commit point: `state.json` replaced atomically, after the segments it names are on disk.
    func commit(_ state: State) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        try AtomicFile.write(try encoder.encode(state), to: statePath)
    }

    /// Reads a committed segment part, each line handed to `handle`.
    func readSegment(_ generation: Int, _ part: SegmentPart) throws -> String {
        let path = segmentPath(generation, part)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RecEngineError(
                .fileSystem, "a committed segment is missing", location: path,
                hint: "the store was changed by hand; restore the file or rebuild with mode historical")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Removes segment files the state does not name: leftovers of a killed run or of the store
    /// a historical run replaced.
    func removeUnlisted(_ state: State) {
        let listed = Set(state.segments)
        let folder = "\(self.folder)/segments"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] {
            guard let generation = Int(name.prefix { $0.isNumber }), !listed.contains(generation) else { continue }
            try? FileManager.default.removeItem(atPath: "\(folder)/\(name)")
        }
    }

    /// Holds the store's lock for the life of the returned descriptor; one ingest at a time.
    func lock() throws -> Int32 {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let descriptor = open("\(folder)/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw RecEngineError(.fileSystem, "cannot create the store's lock file: \(String(cString: strerror(errno)))", location: folder)
        }
        // A few seconds of patience: a child forked elsewhere in this process holds a copy of a
        // just-closed lock until it execs.
        for _ in 0..<50 {
            if flock(descriptor, LOCK_EX | LOCK_NB) == 0 { return descriptor }
            usleep(100_000)
        }
        close(descriptor)
        throw RecEngineError(.invalidArgument, "another ingest is writing this store", location: folder, hint: "wait for it to finish")
    }
}
