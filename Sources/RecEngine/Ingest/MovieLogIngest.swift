import DurableFiles
import Foundation
public import RecEngineContract

/// Consumes the movie log (files, standard input or Kafka) into a store, exactly once, and
/// writes the ratings file the train stage reads (the latest rating per user and movie wins) and
/// the watch events the online evaluation reads.
public struct MovieLogIngest: Sendable {
    public var source: MovieLogSource
    /// The folder that keeps what was read and the committed position.
    public var store: String
    /// The ratings CSV for training (`user_id,movie_id,rating,timestamp`).
    public var output: String
    /// The watch events CSV (`timestamp,user_id,movie_id,minute`), when wanted.
    public var watches: String?
    /// This run's rejected lines (`origin<TAB>reason<TAB>line`), when wanted beside the store's copy.
    public var rejects: String?
    public var mode: IngestMode
    /// The Kafka consumer group.
    public var group: String
    /// At most this many lines or messages per run; 0: no bound.
    public var maxRecords: Int
    /// At most this long per run.
    public var maxDuration: Duration
    /// The rating shares (of 1 to 5) of the data the live model was trained on; the batch's shift
    /// against them is the population stability index. Without it the store's earlier data is the
    /// reference.
    public var baselineShares: [Double]?
    /// How long a Kafka run waits for an unreachable broker before it gives up on it.
    public var brokerTimeout: Duration = .seconds(10)

    public init(
        source: MovieLogSource, store: String, output: String, watches: String? = nil, rejects: String? = nil,
        mode: IngestMode = .stream,
        group: String = "recengine-ingest", maxRecords: Int = 0, maxDuration: Duration = .seconds(300),
        baselineShares: [Double]? = nil
    ) {
        self.source = source
        self.store = store
        self.output = output
        self.watches = watches
        self.rejects = rejects
        self.mode = mode
        self.group = group
        self.maxRecords = maxRecords
        self.maxDuration = maxDuration
        self.baselineShares = baselineShares
    }

    /// Reads what is new, commits it, and writes the outputs. A source that fails part way (a
    /// broker gone) still commits what was read; the report's `interruption` says what happened.
    /// What is read is streamed to the store's segment files, never held whole; every file
    /// written is created with mode 0600, or the source files' permissions where they are
    /// stricter (their lines are copied into it).
    public func run() throws -> IngestReport {
        let reader = makeReader()
        // Before anything is written: a source that is not a regular file is refused here.
        let sourcePermissions = try (reader as? FileLogReader)?.permissions()
        let permissions = Self.outputPermissions(source: sourcePermissions)
        let store = IngestStore(folder: self.store, permissions: permissions)
        let lock = try store.lock()
        defer { close(lock) }
        let committed = try store.load()
        var base =
            committed
            ?? .init(source: source.description, generation: 0, segments: [], positions: [:], committedOn: Date())
        if mode == .historical {
            base.segments = []
            base.positions = [:]
        }
        var table = RatingTable()
        for generation in base.segments {
            try store.forEachLine(generation, .ratings) { try table.load(line: $0) }
        }
        let baseline = baselineShares ?? (table.count > 0 ? table.shares : nil)

        // Read, into the next generation's segment files.
        let generation = base.generation + 1
        let segment = try store.createSegment(generation)
        defer { segment.discard() }
        // The report goes where anyone may read it (the release history): it quotes rejected
        // lines only of a source anyone may read.
        let quotesLines = sourcePermissions.map { $0 & 0o004 != 0 } ?? false
        var batch = Batch(
            knownUsers: table.users, knownMovies: table.movies, segment: segment, quotesLines: quotesLines)
        let deadline = ContinuousClock.now + maxDuration
        let read = try reader.readLines(after: base.positions, limit: maxRecords, deadline: deadline) { line in
            try batch.take(line, into: &table)
        }

        // Commit: segment files first, flushed, then the state that names them.
        var state = base
        let readSomething = batch.lines > 0 || read.positions != base.positions || mode == .historical
        if readSomething {
            try segment.commit()
            state.generation = generation
            state.segments.append(generation)
            state.positions = read.positions
            state.source = source.description
            state.committedOn = Date()
            try store.commit(state)
        } else {
            segment.discard()
        }
        store.removeUnlisted(state)

        // Outputs, from the committed store (the same on every run over the same state).
        try RatingsFile.writeCSV(table.ratings, to: output, permissions: permissions)
        if let watches {
            try store.concatenate(state.segments, .watches, header: "timestamp,user_id,movie_id,minute\n", to: watches)
        }
        let rejectsFile = readSomething ? store.segmentPath(generation, .rejects) : nil
        if let rejects {
            try store.concatenate(readSomething ? [generation] : [], .rejects, header: "", to: rejects)
        }
        var notes = read.notes
        if case .kafka = source, readSomething, let kafka = reader as? KafkaLogReader {
            do {
                try kafka.commitGroupOffsets(state.positions)
            } catch {
                notes.append(
                    "the store committed its position, but the consumer group's offsets were not updated: \(error)")
            }
        }

        return IngestReport(
            source: source.description, mode: mode, generation: state.generation, lines: batch.lines,
            ratingsRead: batch.ratingsRead,
            ratingsNew: batch.ratingsNew, ratingsUpdated: batch.ratingsUpdated, watches: batch.watches,
            recommendations: batch.recommendations, rejectedByReason: batch.rejectedByReason,
            rejectedSample: batch.rejectedSample,
            positions: state.positions,
            ratings: table.count, users: table.users.count, movies: table.movies.count,
            unknownUsersShare: batch.unknownUsersShare, unknownMoviesShare: batch.unknownMoviesShare,
            ratingPSI: baseline.map { populationStabilityIndex(batch.ratingCounts, against: $0) } ?? 0,
            ratingShares: table.shares, rejectsFile: rejectsFile, notes: notes, interruption: read.interruption)
    }

    /// Checks that a Kafka source's brokers answer (before a pipeline changes anything); other
    /// sources are checked when read. Throws `.unavailable` when they do not.
    public static func checkReachable(_ source: MovieLogSource, timeout: Duration = .seconds(10)) throws {
        guard case .kafka(let brokers, _) = source else { return }
        let consumer = try KafkaConsumer(brokers: brokers, group: "recengine-check", timeout: timeout)
        try consumer.checkBrokers(timeout: timeout)
    }

    /// The mode of the files a run writes: 0600, less what the source's files deny (a 0400 log
    /// gives 0400 files). Standard input and Kafka (nil) give 0600.
    static func outputPermissions(source: mode_t?) -> mode_t {
        guard let source else { return 0o600 }
        // The owner keeps reading what it wrote, whatever odd mode the source has.
        return (0o600 & source) | 0o400
    }

    private func makeReader() -> any LogReader {
        switch source {
        case .files(let path): FileLogReader(path: path)
        case .standardInput: StandardInputLogReader()
        case .kafka(let brokers, let topic):
            KafkaLogReader(
                brokers: brokers, topic: topic, group: group, fromBeginning: mode == .historical,
                brokerTimeout: brokerTimeout)
        }
    }
}

/// The population stability index of `counts` (ratings 1 to 5) against reference shares:
/// Σ (actual − expected) · ln(actual / expected), shares floored at 0.0001. Below 0.1 is
/// usually read as stable, above 0.25 as a real shift. 0 for an empty batch.
public func populationStabilityIndex(_ counts: [Int], against reference: [Double]) -> Double {
    let total = counts.reduce(0, +)
    guard total > 0, reference.count == counts.count else { return 0 }
    let floor = 0.0001
    return zip(counts, reference).reduce(0) { sum, pair in
        let actual = max(Double(pair.0) / Double(total), floor)
        let expected = max(pair.1, floor)
        return sum + (actual - expected) * log(actual / expected)
    }
}

/// What one run read: counts, and the lines written to the segment's files as they come.
private struct Batch {
    /// Who and what the store had ratings of before the run.
    let knownUsers: Set<String>
    let knownMovies: Set<String>
    let segment: IngestStore.SegmentWriter
    /// Whether the sample quotes the rejected lines, or only says where they are.
    let quotesLines: Bool
    var lines = 0
    var ratingsRead = 0
    var ratingsNew = 0
    var ratingsUpdated = 0
    var watches = 0
    var recommendations = 0
    var rejectedByReason: [String: Int] = [:]
    var rejectedSample: [RejectedLine] = []
    var ratingCounts = [0, 0, 0, 0, 0]
    var ratingsByUnknownUsers = 0
    var ratingsOfUnknownMovies = 0

    init(knownUsers: Set<String>, knownMovies: Set<String>, segment: IngestStore.SegmentWriter, quotesLines: Bool) {
        self.knownUsers = knownUsers
        self.knownMovies = knownMovies
        self.segment = segment
        self.quotesLines = quotesLines
    }

    mutating func take(_ line: LogLine, into table: inout RatingTable) throws {
        lines += 1
        guard line.overlongLength == nil else {
            try reject(line, .lineTooLong)
            return
        }
        switch MovieLogLine.parse(line.text) {
        case .success(.rating(let time, let user, let movie, let rating)):
            ratingsRead += 1
            ratingCounts[rating - 1] += 1
            if !knownUsers.contains(user) { ratingsByUnknownUsers += 1 }
            if !knownMovies.contains(movie) { ratingsOfUnknownMovies += 1 }
            try segment.ratings.write("\(time),\(user),\(movie),\(rating)\n")
            switch table.apply(time: time, user: user, movie: movie, rating: rating) {
            case .new: ratingsNew += 1
            case .updated: ratingsUpdated += 1
            case .older: break
            }
        case .success(.watch(let time, let user, let movie, let minute)):
            watches += 1
            try segment.watches.write("\(time),\(user),\(movie),\(minute)\n")
        case .success(.recommendation):
            recommendations += 1
        case .failure(let reason):
            try reject(line, reason)
        }
    }

    /// Counts the line, writes it to the rejects file, and keeps it in the sample while there is room.
    private mutating func reject(_ line: LogLine, _ reason: MovieLogRejection) throws {
        rejectedByReason[reason.rawValue, default: 0] += 1
        let origin = "\(line.key)@\(line.offset)"
        try segment.rejects.write("\(origin)\t\(reason.rawValue)\t\(line.text)\n")
        if rejectedSample.count < IngestLimits.sampleLines {
            rejectedSample.append(
                RejectedLine(
                    origin: origin, reason: reason.rawValue, text: quotesLines ? Self.printable(line.text) : nil))
        }
    }

    /// The head of `text` with control characters escaped, so that a sample printed to a
    /// terminal cannot drive it.
    static func printable(_ text: Substring) -> String {
        var result = ""
        var count = 0
        for scalar in text.unicodeScalars {
            guard count < IngestLimits.sampleCharacters else {
                result += "…"
                break
            }
            count += 1
            if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) {
                result += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// 0 when the store was empty: a first or historical run has nothing to be unknown to.
    var unknownUsersShare: Double {
        knownUsers.isEmpty || ratingsRead == 0 ? 0 : Double(ratingsByUnknownUsers) / Double(ratingsRead)
    }
    var unknownMoviesShare: Double {
        knownMovies.isEmpty || ratingsRead == 0 ? 0 : Double(ratingsOfUnknownMovies) / Double(ratingsRead)
    }
}

/// The latest rating per user and movie, in first-seen order.
private struct RatingTable {
    enum Change { case new, updated, older }

    private var rows: [(time: String, user: String, movie: String, rating: Int)] = []
    private var index: [String: Int] = [:]
    private(set) var users = Set<String>()
    private(set) var movies = Set<String>()

    var count: Int { rows.count }

    /// Applies a rating; an equal time counts as later (the stream's order breaks ties).
    mutating func apply(time: String, user: String, movie: String, rating: Int) -> Change {
        let key = "\(user),\(movie)"
        if let row = index[key] {
            guard time >= rows[row].time else { return .older }
            rows[row] = (time, user, movie, rating)
            return .updated
        }
        index[key] = rows.count
        rows.append((time, user, movie, rating))
        users.insert(user)
        movies.insert(movie)
        return .new
    }

    /// Applies one line of a committed ratings segment.
    mutating func load(line: Substring) throws {
        guard !line.isEmpty else { return }
        let fields = line.split(separator: ",")
        guard fields.count == 4, let rating = Int(fields[3]), (1...5).contains(rating) else {
            throw RecEngineError(
                .fileSystem, "a committed ratings segment has a damaged line: \(Batch.printable(line))",
                hint: "rebuild the store with mode historical")
        }
        _ = apply(time: String(fields[0]), user: String(fields[1]), movie: String(fields[2]), rating: rating)
    }

    var shares: [Double] {
        var counts = [0, 0, 0, 0, 0]
        for row in rows { counts[row.rating - 1] += 1 }
        return counts.map { rows.isEmpty ? 0 : Double($0) / Double(rows.count) }
    }

    var ratings: Ratings {
        var ratings = Ratings(hasTimestamps: true)
        for row in rows {
            ratings.append(user: row.user, item: row.movie, rating: Float(row.rating), timestamp: row.time)
        }
        return ratings
    }
}
