import Foundation
import HTTPTransport

/// Prometheus's answer to an instant query (`GET /api/v1/query`), as a gate reads it: decoded into
/// values, each field as lenient as the answer may be (a field of another type reads as absent),
/// so that what the gate refuses, and the message it refuses with, is decided in one place
/// (`PrometheusClient.parse`), from types rather than from a tree of dictionaries. An answer that
/// names a key twice reads its first value (`JSONDecoder`; `JSONSerialization` read the last).
///
/// `{"status": "success", "data": {"resultType": "vector", "result": [{"metric": {...}, "value": [1.5, "2"]}]}}`
/// or `{"status": "error", "errorType": "bad_data", "error": "..."}`.
struct PrometheusAnswer: Decodable, Equatable {
    /// "success" or "error"; nil when absent or not a string.
    var status: String?
    /// nil when absent or not an object.
    var data: Result?
    /// Prometheus's error, when it says what went wrong (nil when absent or not a string).
    var errorType: String?
    var error: String?

    struct Result: Decodable, Equatable {
        /// "vector", "scalar", "matrix", "string"; nil when absent or not a string.
        var resultType: String?
        /// A scalar's sample (nil when the result is not `[time, "value"]`).
        var scalar: Sample?
        /// A vector's series: nil when `result` is absent, not an array, or holds anything but
        /// objects (read as no series).
        var series: [Series]?

        enum CodingKeys: String, CodingKey {
            case resultType, result
        }

        init(resultType: String?, scalar: Sample? = nil, series: [Series]? = nil) {
            self.resultType = resultType
            self.scalar = scalar
            self.series = series
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            resultType = container.lenient(String.self, forKey: .resultType)
            scalar = container.lenient(Sample.self, forKey: .result)
            series = container.lenient([Series].self, forKey: .result)
        }
    }

    /// One series of a vector: any object; its sample nil when `value` is not `[time, "value"]`.
    struct Series: Decodable, Equatable {
        var value: Sample?

        enum CodingKeys: String, CodingKey {
            case value
        }

        init(value: Sample?) {
            self.value = value
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            value = container.lenient(Sample.self, forKey: .value)
        }
    }

    /// `[time, "value"]`: two elements, the second a string (Prometheus writes values as text:
    /// "12", "NaN", "+Inf"); the time is not read.
    struct Sample: Decodable, Equatable {
        var text: String

        init(text: String) {
            self.text = text
        }

        init(from decoder: any Decoder) throws {
            var pair = try decoder.unkeyedContainer()
            guard pair.count == 2 else {
                throw DecodingError.dataCorruptedError(in: pair, debugDescription: "a sample is [time, \"value\"]")
            }
            if try !pair.decodeNil() { _ = try pair.decode(Skipped.self) }
            text = try pair.decode(String.self)
        }
    }

    /// Any JSON value, not read.
    private struct Skipped: Decodable {
        init(from decoder: any Decoder) throws {}
    }

    enum CodingKeys: String, CodingKey {
        case status, data, errorType, error
    }

    init(status: String?, data: Result? = nil, errorType: String? = nil, error: String? = nil) {
        self.status = status
        self.data = data
        self.errorType = errorType
        self.error = error
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        status = container.lenient(String.self, forKey: .status)
        data = container.lenient(Result.self, forKey: .data)
        errorType = container.lenient(String.self, forKey: .errorType)
        error = container.lenient(String.self, forKey: .error)
    }

    /// The answer in `body`; nil when it is not a JSON object, or holds a value JSON cannot
    /// carry (a number beyond a Double, a string that is not Unicode) anywhere, read or not.
    static func decode(_ body: Data) -> PrometheusAnswer? {
        JSONAnswer.decode(PrometheusAnswer.self, from: body)
    }
}
