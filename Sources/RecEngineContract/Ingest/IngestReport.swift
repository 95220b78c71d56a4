/// What one ingest run read and wrote; the orchestrator records it in the release's provenance.
public struct IngestReport: Sendable, Codable, Equatable {
    public var source: String
    public var mode: IngestMode
    /// The store's generation after the run.
    public var generation: Int
    /// Lines (or messages) read, valid or not.
    public var lines: Int
    public var ratingsRead: Int
    /// Ratings of a user and movie not rated before.
    public var ratingsNew: Int
    /// Later ratings of a user and movie rated before (the latest wins).
    public var ratingsUpdated: Int
    public var watches: Int
    public var recommendations: Int
    public var rejectedByReason: [String: Int]
    /// The first rejected lines (at most `IngestLimits.sampleLines`, each cut and with control
    /// characters escaped; quoted only from a source anyone may read); every one is in the
    /// rejects file. Nil in reports written before it.
    public var rejectedSample: [RejectedLine]?
    /// Where each source key was read up to (byte offsets, or the next Kafka offset).
    public var positions: [String: Int64]
    /// In the ratings file written: ratings, users and movies.
    public var ratings: Int
    public var users: Int
    public var movies: Int
    /// Of the ratings read, the share by users (movies) the store had no rating of; 0 when the
    /// store had no data before the run (a first or historical run has no reference).
    public var unknownUsersShare: Double
    public var unknownMoviesShare: Double
    /// The shift of the read ratings' distribution against the reference.
    public var ratingPSI: Double
    /// The shares of ratings 1 to 5 in the ratings file written.
    public var ratingShares: [Double]
    /// This run's rejected lines in the store; nil when nothing was read.
    public var rejectsFile: String?
    public var notes: [String]
    /// Set when the source failed part way; what was read before it is committed.
    public var interruption: String?

    public var rejected: Int { rejectedByReason.values.reduce(0, +) }

    public init(
        source: String, mode: IngestMode, generation: Int, lines: Int, ratingsRead: Int, ratingsNew: Int,
        ratingsUpdated: Int, watches: Int, recommendations: Int, rejectedByReason: [String: Int],
        rejectedSample: [RejectedLine]? = nil, positions: [String: Int64], ratings: Int, users: Int, movies: Int,
        unknownUsersShare: Double, unknownMoviesShare: Double, ratingPSI: Double, ratingShares: [Double],
        rejectsFile: String? = nil, notes: [String], interruption: String? = nil
    ) {
        self.source = source
        self.mode = mode
        self.generation = generation
        self.lines = lines
        self.ratingsRead = ratingsRead
        self.ratingsNew = ratingsNew
        self.ratingsUpdated = ratingsUpdated
        self.watches = watches
        self.recommendations = recommendations
        self.rejectedByReason = rejectedByReason
        self.rejectedSample = rejectedSample
        self.positions = positions
        self.ratings = ratings
        self.users = users
        self.movies = movies
        self.unknownUsersShare = unknownUsersShare
        self.unknownMoviesShare = unknownMoviesShare
        self.ratingPSI = ratingPSI
        self.ratingShares = ratingShares
        self.rejectsFile = rejectsFile
        self.notes = notes
        self.interruption = interruption
    }

    enum CodingKeys: String, CodingKey {
        case source, mode, generation, lines, watches, recommendations, positions, ratings, users, movies, notes,
            interruption
        case ratingsRead = "ratings_read"
        case ratingsNew = "ratings_new"
        case ratingsUpdated = "ratings_updated"
        case rejectedByReason = "rejected_by_reason"
        case rejectedSample = "rejected_sample"
        case unknownUsersShare = "unknown_users_share"
        case unknownMoviesShare = "unknown_movies_share"
        case ratingPSI = "rating_psi"
        case ratingShares = "rating_shares"
        case rejectsFile = "rejects_file"
    }

    /// The figures as metrics that gates may bound.
    public var metrics: [String: Double] {
        var metrics: [String: Double] = [
            "lines": Double(lines), "ratings_read": Double(ratingsRead), "ratings_new": Double(ratingsNew),
            "ratings_updated": Double(ratingsUpdated), "watches": Double(watches),
            "recommendations": Double(recommendations),
            "rejected": Double(rejected), "rejected_share": lines == 0 ? 0 : Double(rejected) / Double(lines),
            "ratings": Double(ratings), "users": Double(users), "items": Double(movies),
            "unknown_users_share": unknownUsersShare, "unknown_movies_share": unknownMoviesShare,
            "rating_psi": ratingPSI,
        ]
        for reason in MovieLogRejection.allCases {
            metrics["rejected_\(reason.rawValue)"] = Double(rejectedByReason[reason.rawValue] ?? 0)
        }
        for (index, share) in ratingShares.enumerated() {
            metrics["rating_share_\(index + 1)"] = share
        }
        return metrics
    }

    /// The metric names a movie log ingest reports.
    public static let metricNames: [String] =
        [
            "lines", "ratings_read", "ratings_new", "ratings_updated", "watches", "recommendations", "rejected",
            "rejected_share",
            "ratings", "users", "items", "unknown_users_share", "unknown_movies_share", "rating_psi",
        ] + MovieLogRejection.allCases.map { "rejected_\($0.rawValue)" } + (1...5).map { "rating_share_\($0)" }
}

/// A rejected line as the report shows it.
public struct RejectedLine: Sendable, Codable, Equatable {
    /// `SOURCE@OFFSET`, as in the rejects file.
    public var origin: String
    public var reason: String
    /// The line's head, control characters escaped; nil when the source is not readable by
    /// everyone (the line is then only in the rejects file, which is as private as the source).
    public var text: String?
    public init(origin: String, reason: String, text: String? = nil) {
        self.origin = origin
        self.reason = reason
        self.text = text
    }
}

/// Why a line of the movie log was rejected; counted by reason (`IngestReport.rejectedByReason`)
/// and written to the rejects file.
public enum MovieLogRejection: String, Error, Sendable, CaseIterable, Codable {
    case truncated
    case extraSpaces = "extra_spaces"
    case badTime = "bad_time"
    case badUser = "bad_user"
    case badMovie = "bad_movie"
    case badRating = "bad_rating"
    case ratingOutOfRange = "rating_out_of_range"
    case badMinute = "bad_minute"
    case badRecommendation = "bad_recommendation"
    case unknownKind = "unknown_kind"
    /// Longer than `IngestLimits.maximumLineBytes`: not parsed; its head is kept.
    case lineTooLong = "line_too_long"
}
