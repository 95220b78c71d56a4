import DurableFiles
import Foundation
import RecEngineContract

/// The ingest's durable state, in one folder:
///
/// ```
/// state.json                      the commit: segments in order, positions they cover
/// segments/000007.ratings.csv     time,user,movie,rating  (what run 7 read, in stream order)
/// segments/000007.watches.csv     time,user,movie,minute
/// segments/000007.rejects.tsv     origin<TAB>reason<TAB>line
/// ```
///
/// Its files are created with `permissions` (those of the ingest's outputs): they hold the log's lines.
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
    /// The mode of every file written in the store.
    var permissions: mode_t = 0o600

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
                hint:
                    "it is written atomically, so it was edited by hand; restore it or run the ingest with mode historical"
            )
        }
    }

    /// The three parts of one generation, written as lines come; none is in place before `commit`.
    final class SegmentWriter {
        let ratings: AtomicFileWriter
        let watches: AtomicFileWriter
        let rejects: AtomicFileWriter

        fileprivate init(_ store: IngestStore, _ generation: Int) throws {
            ratings = try AtomicFileWriter(
                path: store.segmentPath(generation, .ratings), permissions: store.permissions)
            watches = try AtomicFileWriter(
                path: store.segmentPath(generation, .watches), permissions: store.permissions)
            rejects = try AtomicFileWriter(
                path: store.segmentPath(generation, .rejects), permissions: store.permissions)
        }

        /// Puts the parts in place, each flushed to disk.
        func commit() throws {
            for part in [ratings, watches, rejects] { try part.commit() }
        }

        /// Removes what was written and not committed.
        func discard() {
            for part in [ratings, watches, rejects] { part.discard() }
        }
    }

    func createSegment(_ generation: Int) throws -> SegmentWriter {
        try SegmentWriter(self, generation)
    }

    /// The commit point: `state.json` replaced atomically, after the segments it names are on disk.
    func commit(_ state: State) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        try AtomicFile.write(try encoder.encode(state), to: statePath, permissions: permissions)
    }

    /// Hands each line of a committed segment part to `body`, reading the file in pieces.
    func forEachLine(_ generation: Int, _ part: SegmentPart, _ body: (Substring) throws -> Void) throws {
        let path = segmentPath(generation, part)
        try withSegmentFile(path) { descriptor in
            var splitter = LineSplitter(key: path, offset: 0)
            func accept(_ line: LogLine) throws -> Bool {
                if let length = line.overlongLength {
                    throw RecEngineError(
                        .fileSystem, "a committed segment has a line of \(length) bytes", location: path,
                        hint: Self.rebuildHint)
                }
                try body(line.text)
                return true
            }
            _ = try splitter.pump(deadline: .now + .seconds(365 * 86_400), accept: accept) {
                try readDescriptor(descriptor, into: $0, location: path)
            }
            try splitter.finish(accept: accept)
        }
    }

    /// Writes `header`, then the part of each of `generations` in order, to `path` (replaced
    /// atomically), copying the files in pieces.
    func concatenate(_ generations: [Int], _ part: SegmentPart, header: String, to path: String) throws {
        let output = try AtomicFileWriter(path: path, permissions: permissions)
        try output.write(header)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        for generation in generations {
            let segment = segmentPath(generation, part)
            try withSegmentFile(segment) { descriptor in
                while true {
                    let count = try buffer.withUnsafeMutableBytes {
                        try readDescriptor(descriptor, into: $0, location: segment)
                    }
                    if count == 0 { break }
                    try buffer.withUnsafeBytes { try output.write(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
                }
            }
        }
        try output.commit()
    }

    private static let rebuildHint = "the store was changed by hand; restore the file or rebuild with mode historical"

    private func withSegmentFile(_ path: String, _ body: (Int32) throws -> Void) throws {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw RecEngineError(
                .fileSystem, "a committed segment cannot be read: \(String(cString: strerror(errno)))", location: path,
                hint: Self.rebuildHint)
        }
        defer { close(descriptor) }
        try body(descriptor)
    }

    /// Removes segment files the state does not name: leftovers of a killed run or of the store
    /// a historical run replaced.
    func removeUnlisted(_ state: State) {
        let listed = Set(state.segments)
        let folder = "\(self.folder)/segments"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] {
            // A temporary file is a killed run's: this run holds the lock and has finished its own.
            let isTemporary = name.hasPrefix(".") && name.contains(".tmp-")
            guard isTemporary || Int(name.prefix { $0.isNumber }).map({ !listed.contains($0) }) == true else {
                continue
            }
            try? FileManager.default.removeItem(atPath: "\(folder)/\(name)")
        }
    }

    /// Holds the store's lock for the life of the returned descriptor; one ingest at a time.
    func lock() throws -> Int32 {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let descriptor = open("\(folder)/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw RecEngineError(
                .fileSystem, "cannot create the store's lock file: \(String(cString: strerror(errno)))",
                location: folder)
        }
        // A few seconds of patience: a child forked elsewhere in this process holds a copy of a
        // just-closed lock until it execs.
        for _ in 0..<50 {
            if flock(descriptor, LOCK_EX | LOCK_NB) == 0 { return descriptor }
            usleep(100_000)
        }
        close(descriptor)
        throw RecEngineError(
            .invalidArgument, "another ingest is writing this store", location: folder, hint: "wait for it to finish")
    }
}
