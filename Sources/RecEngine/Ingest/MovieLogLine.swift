public import RecEngineContract

/// One line of the movie log stream (the Kafka topic `movielog`), parsed.
///
/// ```
/// <time>,<userid>,recommendation request <host>:<port>, status <code>, result: <movie>, ..., <N> ms
/// <time>,<userid>,GET /data/m/<movieid>/<minute>.mpg
/// <time>,<userid>,GET /rate/<movieid>=<rating>
/// ```
public enum MovieLogLine: Sendable, Equatable {
    /// An explicit rating, 1 to 5.
    case rating(time: String, user: String, movie: String, rating: Int)
    /// One watched minute of a movie.
    case watch(time: String, user: String, movie: String, minute: Int)
    /// A recommendation the service answered.
    case recommendation(time: String, user: String, status: Int, movies: [String], milliseconds: Int)

    /// Why a line was rejected; counted by reason and written to the rejects file (the reasons
    /// `IngestReport` counts).
    public typealias Rejection = MovieLogRejection

    /// Largest user id accepted; ids beyond it are treated as corrupt.
    public static let maximumUserID = 10_000_000

    /// Parses one line (without its newline).
    public static func parse(_ line: Substring) -> Result<MovieLogLine, Rejection> {
        if line.isEmpty { return .failure(.truncated) }
        if line.first?.isWhitespace == true || line.last?.isWhitespace == true || line.contains("  ")
            || line.contains(", ,")
        {
            return .failure(.extraSpaces)
        }
        let parts = line.split(separator: ",", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[2].isEmpty else { return .failure(.truncated) }
        let (time, user, rest) = (parts[0], parts[1], parts[2])
        guard isTime(time) else { return .failure(.badTime) }
        guard !user.contains(" ") else { return .failure(.extraSpaces) }
        guard let userNumber = Int(user), userNumber >= 0, userNumber <= maximumUserID, user.allSatisfy(\.isASCII)
        else {
            return .failure(.badUser)
        }
        if rest.hasPrefix("GET /rate/") {
            let body = rest.dropFirst("GET /rate/".count)
            guard let equals = body.lastIndex(of: "=") else { return .failure(.truncated) }
            let movie = body[..<equals]
            let value = body[body.index(after: equals)...]
            guard isMovie(movie) else { return .failure(.badMovie) }
            guard let rating = Int(value), value.allSatisfy(\.isNumber) else {
                return .failure(value.isEmpty ? .truncated : .badRating)
            }
            guard (1...5).contains(rating) else { return .failure(.ratingOutOfRange) }
            return .success(.rating(time: String(time), user: String(user), movie: String(movie), rating: rating))
        }
        if rest.hasPrefix("GET /data/m/") {
            let body = rest.dropFirst("GET /data/m/".count)
            guard body.hasSuffix(".mpg"), let slash = body.lastIndex(of: "/") else { return .failure(.truncated) }
            let movie = body[..<slash]
            let minuteText = body[body.index(after: slash)...].dropLast(".mpg".count)
            guard isMovie(movie) else { return .failure(.badMovie) }
            guard let minute = Int(minuteText), minute >= 0, minuteText.allSatisfy(\.isNumber) else {
                return .failure(.badMinute)
            }
            return .success(.watch(time: String(time), user: String(user), movie: String(movie), minute: minute))
        }
        if rest.hasPrefix("recommendation request ") {
            return parseRecommendation(rest, time: time, user: user)
        }
        return .failure(.unknownKind)
    }

    private static func parseRecommendation(
        _ rest: Substring, time: Substring, user: Substring
    ) -> Result<MovieLogLine, Rejection> {
        // recommendation request <host>:<port>, status <code>, result: <m1>, <m2>, ..., <N> ms
        let fields = rest.split(separator: ", ", omittingEmptySubsequences: false)
        guard fields.count >= 4, let last = fields.last, last.hasSuffix(" ms") else { return .failure(.truncated) }
        guard fields[1].hasPrefix("status "), let status = Int(fields[1].dropFirst("status ".count)) else {
            return .failure(.badRecommendation)
        }
        guard fields[2].hasPrefix("result: ") else { return .failure(.badRecommendation) }
        guard let milliseconds = Int(last.dropLast(" ms".count)), milliseconds >= 0 else {
            return .failure(.badRecommendation)
        }
        let movies = [fields[2].dropFirst("result: ".count)] + fields[3..<(fields.count - 1)]
        guard movies.allSatisfy(isMovie) else { return .failure(.badMovie) }
        return .success(
            .recommendation(
                time: String(time), user: String(user), status: status, movies: movies.map(String.init),
                milliseconds: milliseconds))
    }

    /// `2022-03-18T05:53:29`, optionally with a fraction of a second.
    static func isTime(_ text: Substring) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count >= 19 else { return false }
        let digitPositions = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
        let separators: [(Int, UInt8)] = [
            (4, UInt8(ascii: "-")), (7, UInt8(ascii: "-")), (10, UInt8(ascii: "T")), (13, UInt8(ascii: ":")),
            (16, UInt8(ascii: ":")),
        ]
        guard digitPositions.allSatisfy({ bytes[$0] >= UInt8(ascii: "0") && bytes[$0] <= UInt8(ascii: "9") }),
            separators.allSatisfy({ bytes[$0.0] == $0.1 })
        else { return false }
        if bytes.count == 19 { return true }
        return bytes[19] == UInt8(ascii: ".") && bytes.count > 20
            && bytes[20...].allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    /// Movie ids look like `the+incredibles+2004`: lowercase letters, digits and `+._-:'&!`.
    static func isMovie(_ text: Substring) -> Bool {
        !text.isEmpty && text.count <= 200
            && text.utf8.allSatisfy { byte in
                (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                    || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                    || "+._-:'&!".utf8.contains(byte)
            }
    }
}
