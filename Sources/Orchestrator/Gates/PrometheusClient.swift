import Foundation
import HTTPTransport
import StrictYAML
import Synchronization
import TextSafety
import Traffic

/// Instant PromQL queries against Prometheus's HTTP API (`GET /api/v1/query`).
///
/// Every answer is bounded: a gate's query answers one series (a few hundred bytes), so its
/// answer is read up to `gateAnswerLimit` and stops at the second series; the judge's queries
/// (a histogram by `le`, counts by unit) up to `vectorAnswerLimit`. An answer that never ends, or
/// a query that forgot its `sum(...)` and matches a million series, ends the query with an error
/// that says so, which the gate counts as an error (and fails after `consecutiveErrorLimit`).
public struct PrometheusClient: Sendable {
    public var baseURL: String

    public init(baseURL: String) {
        self.baseURL = baseURL
    }

    /// A gate's query: one series, or a scalar (documented in the README).
    static let gateAnswerLimit = HTTPClient.BodyLimit(
        1 << 20, for: "the answer to a gate's query",
        hint:
            "a gate's query returns one series of a few hundred bytes: aggregate it, e.g. sum(...), and try it in Prometheus's console"
    )
    /// A judge's query: a histogram's buckets, or counts per unit (documented in the README).
    static let vectorAnswerLimit = HTTPClient.BodyLimit(
        4 << 20, for: "the answer to a judge's query",
        hint:
            "the judge reads a histogram's buckets by le, or counts by its units label: aggregate the query to those labels, e.g. sum by (le) (...)"
    )
    static let readinessLimit = HTTPClient.BodyLimit(
        64 << 10, for: "Prometheus's readiness answer", hint: "is analysis.prometheus the address of Prometheus?")
    /// How long one query may take, the answer read whole.
    static let queryTimeout: Duration = .seconds(10)

    /// What one query returned.
    public enum Sample: Sendable, Equatable {
        /// A number (possibly infinite, which no gate admits).
        case value(Double)
        /// An empty result.
        case noData
        /// NaN, e.g. a rate divided by a rate of zero requests: no data, which never passes.
        case notANumber
    }

    public struct QueryError: Error, CustomStringConvertible, Sendable {
        public var message: String
        /// The transport failure behind the message, when there was one.
        public var cause: (any Error)?
        public var description: String { message }

        public init(message: String, cause: (any Error)? = nil) {
            self.message = message
            self.cause = cause
        }
    }

    /// Whether Prometheus answers its readiness endpoint.
    public func isReady() async -> Bool {
        (try? await HTTPClient.get("\(baseURL)/-/ready", limit: Self.readinessLimit, timeout: .seconds(3)))?.status
            == 200
    }

    /// Runs an instant query that must return one value; a result with several series is an
    /// error that says how many (aggregate it in PromQL). Reading stops at the second series.
    public func query(_ promql: String) async throws -> Sample {
        let scan = SeriesScan(stopAfter: 1)
        let response = try await get(promql, limit: Self.gateAnswerLimit) { scan.take($0) }
        if scan.series > 1 {
            let count = try? await countSeries(promql)
            throw QueryError(
                message:
                    "the query returned \(count.map { "\($0)" } ?? "more than one") series; a gate needs one: wrap it in sum(...)"
            )
        }
        return try Self.parse(scan.body, status: response.status)
    }

    /// How many series `promql` returns, asked of Prometheus (`count(...)`), so that an answer
    /// of a million series need not be read to say how many it holds.
    func countSeries(_ promql: String) async throws -> Int {
        let scan = SeriesScan(stopAfter: 1)
        let response = try await get("count((\(promql)))", limit: Self.gateAnswerLimit) { scan.take($0) }
        guard case .value(let count) = try Self.parse(scan.body, status: response.status), count.isFinite, count >= 0
        else {
            throw QueryError(message: "no count")
        }
        return Int(count)
    }

    /// The most series a judge's query may return: a histogram has tens of buckets, counts by
    /// unit a few hundred groups (documented in the README).
    static let vectorSeriesLimit = 10_000

    /// Runs an instant query and returns every series: its labels and value. A value that is not
    /// a finite number (NaN, ±Inf) is an error: the judge reads counts, and a count is finite.
    /// Reading stops after `vectorSeriesLimit` series.
    public func queryVector(_ promql: String) async throws -> [(labels: [String: String], value: Double)] {
        try await queryVector(promql, at: nil)
    }

    /// The same, evaluated at `time` (nil: now).
    func queryVector(_ promql: String, at time: Date?) async throws -> [(labels: [String: String], value: Double)] {
        let scan = SeriesScan(stopAfter: Self.vectorSeriesLimit)
        let response = try await get(promql, at: time, limit: Self.vectorAnswerLimit) { scan.take($0) }
        if scan.series > Self.vectorSeriesLimit {
            throw QueryError(
                message:
                    "the query returned more than \(Self.vectorSeriesLimit) series; the judge reads a histogram's buckets by le, or counts by its units label: "
                    + "aggregate it to those labels, e.g. sum by (le) (...)")
        }
        // Decoded into plain values: a tree of Foundation objects would take ten times the answer's size.
        guard let answer = try? JSONDecoder().decode(VectorAnswer.self, from: scan.body), answer.status == "success",
            let data = answer.data
        else {
            throw Self.failure(scan.body, status: response.status)
        }
        guard let result = data.result else {
            throw QueryError(
                message:
                    "the query returned a \(Self.echo(data.resultType)) result; a histogram needs an instant vector by le"
            )
        }
        return try result.map { series in
            guard let value = Double(series.value), value.isFinite else {
                throw QueryError(message: "the query returned \(Self.echo(series.value)), not a finite count")
            }
            return (series.metric, value)
        }
    }

    /// GET a query; the body goes to `take` as it arrives (which may end the transfer).
    private func get(
        _ promql: String, at time: Date? = nil, limit: HTTPClient.BodyLimit, take: @escaping @Sendable (Data) -> Bool
    ) async throws
        -> HTTPClient.Response
    {
        let instant = time.map { String(format: "&time=%.3f", $0.timeIntervalSince1970) } ?? ""
        let url = "\(baseURL)/api/v1/query?query=\(HTTPClient.encodeQueryValue(promql))\(instant)"
        do {
            return try await HTTPClient.send(
                HTTPClient.Request(url: url, timeout: Self.queryTimeout, limit: limit), onData: take)
        } catch let error as HTTPClient.TransportError where error.code == .answerTooLarge {
            throw QueryError(
                message:
                    "Prometheus's answer is larger than \(limit.size), the limit for \(limit.purpose): reading stopped there\n  hint: \(limit.hint)"
            )
        } catch let error as HTTPClient.TransportError where error.code == .timedOut {
            throw QueryError(message: "Prometheus did not answer in time: \(error)", cause: error)
        } catch let error as HTTPClient.TransportError {
            throw QueryError(message: "Prometheus unreachable: \(error)", cause: error)
        }
    }

    static func parse(_ body: Data, status: Int) throws -> Sample {
        guard let answer = PrometheusAnswer.decode(body), answer.status == "success", let data = answer.data else {
            throw failure(body, status: status)
        }
        func number(_ sample: PrometheusAnswer.Sample?) throws -> Sample {
            guard let sample, let value = Double(sample.text) else {
                throw QueryError(message: "Prometheus returned a sample that is not [time, \"value\"]")
            }
            return value.isNaN ? .notANumber : .value(value)
        }
        switch data.resultType {
        case "scalar":
            return try number(data.scalar)
        case "vector":
            let series = data.series ?? []
            if series.isEmpty { return .noData }
            guard series.count == 1 else {
                throw QueryError(
                    message: "the query returned \(series.count) series; a gate needs one: wrap it in sum(...)")
            }
            return try number(series[0].value)
        case let other:
            throw QueryError(
                message:
                    "the query returned a \(echo(other ?? "missing")) result; a gate needs an instant vector or scalar")
        }
    }

    /// What an answer that is not a result says: Prometheus's error, or the start of whatever
    /// else answered (a proxy's page), escaped and cut.
    static func failure(_ body: Data, status: Int) -> QueryError {
        if let answer = PrometheusAnswer.decode(body), let error = answer.error {
            return QueryError(
                message: "Prometheus answered HTTP \(status), \(echo(answer.errorType ?? "error")): \(echo(error))")
        }
        let start =
            body.isEmpty
            ? "an empty body" : "\"\(echo(String(decoding: body.prefix(OutsideText.messageLimit), as: UTF8.self)))\""
        return QueryError(message: "Prometheus answered HTTP \(status) without a result: \(start)")
    }

    /// Text of Prometheus's answer as a message keeps it: escaped, and cut.
    static func echo(_ text: String) -> String {
        OutsideText.bounded(text, limit: OutsideText.messageLimit)
    }
}

/// Collects a query's answer as it arrives and counts its series: in Prometheus's JSON every
/// series of a vector is an object with a key `"metric"` whose value is an object, which cannot
/// occur inside a JSON string (its quotes would be escaped) nor as a label (label values are
/// strings). Spaces around the colon are allowed, as a proxy may reformat the answer.
private final class SeriesScan: Sendable {
    private struct State {
        var body = Data()
        var series = 0
        /// Where the search for the next series goes on.
        var scanned = 0
    }

    private static let key = Data(#""metric""#.utf8)
    private let state = Mutex(State())
    private let seriesLimit: Int

    /// - Parameter seriesLimit: the transfer ends once more series than this began.
    init(stopAfter seriesLimit: Int) {
        self.seriesLimit = seriesLimit
    }

    var body: Data { state.withLock { $0.body } }
    var series: Int { state.withLock { $0.series } }

    /// Appends a chunk; false (end the transfer) once more series than the limit began.
    func take(_ chunk: Data) -> Bool {
        state.withLock { state in
            state.body.append(chunk)
            let bytes = state.body
            scan: while let found = bytes.range(of: Self.key, in: (bytes.startIndex + state.scanned)..<bytes.endIndex) {
                // `"metric"`, spaces, a colon, spaces, then `{`: a series.
                var index = found.upperBound
                var sawColon = false
                while index < bytes.endIndex {
                    switch bytes[index] {
                    case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"):
                        index += 1
                    case UInt8(ascii: ":") where !sawColon:
                        sawColon = true
                        index += 1
                    case UInt8(ascii: "{") where sawColon:
                        state.series += 1
                        state.scanned = index + 1 - bytes.startIndex
                        continue scan
                    default:
                        state.scanned = found.upperBound - bytes.startIndex
                        continue scan
                    }
                }
                // The rest has not arrived yet: look at this key again with the next chunk.
                state.scanned = found.lowerBound - bytes.startIndex
                break
            }
            if bytes.range(of: Self.key, in: (bytes.startIndex + state.scanned)..<bytes.endIndex) == nil {
                // A key may straddle this chunk and the next: search again from just before the end.
                state.scanned = max(state.scanned, bytes.count - (Self.key.count - 1))
            }
            return state.series <= seriesLimit
        }
    }
}

/// Prometheus's answer to an instant query, as far as the judge reads it: `result` holds the
/// series of a vector, and is nil for any other type.
private struct VectorAnswer: Decodable {
    struct Result: Decodable {
        var resultType: String
        var result: [Series]?

        enum CodingKeys: String, CodingKey {
            case resultType, result
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            resultType = try container.decode(String.self, forKey: .resultType)
            result = resultType == "vector" ? try container.decodeIfPresent([Series].self, forKey: .result) ?? [] : nil
        }
    }

    struct Series: Decodable {
        var metric: [String: String]
        /// The sample's value as Prometheus writes it ("12", "NaN", "+Inf").
        var value: String

        enum CodingKeys: String, CodingKey {
            case metric, value
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            metric = try container.decodeIfPresent([String: String].self, forKey: .metric) ?? [:]
            var pair = try container.nestedUnkeyedContainer(forKey: .value)
            _ = try pair.decode(Double.self)
            value = try pair.decode(String.self)
        }
    }

    var status: String
    var data: Result?
}
