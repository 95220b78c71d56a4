import Foundation
import StrictYAML
import HTTPTransport
import Traffic

/// Instant PromQL queries against Prometheus's HTTP API (`GET /api/v1/query`).
public struct PrometheusClient: Sendable {
    public var baseURL: String

    public init(baseURL: String) {
        self.baseURL = baseURL
    }

    /// What one query returned.
    public enum Sample: Sendable, Equatable {
        case value(Double)
        /// An empty result, or NaN (e.g. a rate divided by a rate of zero requests).
        case noData
    }

    public struct QueryError: Error, CustomStringConvertible, Sendable {
        public var message: String
        public var description: String { message }
    }

    /// Whether Prometheus answers its readiness endpoint.
    public func isReady() async -> Bool {
        (try? await HTTPClient.get("\(baseURL)/-/ready", timeout: .seconds(3)))?.status == 200
    }

    /// Runs an instant query; a result with several series is an error (aggregate it in PromQL).
    public func query(_ promql: String) async throws -> Sample {
        let url = "\(baseURL)/api/v1/query?query=\(HTTPClient.encodeQueryValue(promql))"
        let response: HTTPClient.Response
        do {
            response = try await HTTPClient.get(url, timeout: .seconds(10))
        } catch {
            throw QueryError(message: "Prometheus unreachable: \(error)")
        }
        return try Self.parse(response.body, status: response.status)
    }

    /// Runs an instant query and returns every series: its labels and value (NaN values left out).
    public func queryVector(_ promql: String) async throws -> [(labels: [String: String], value: Double)] {
        let url = "\(baseURL)/api/v1/query?query=\(HTTPClient.encodeQueryValue(promql))"
        let response: HTTPClient.Response
        do {
            response = try await HTTPClient.get(url, timeout: .seconds(10))
        } catch {
            throw QueryError(message: "Prometheus unreachable: \(error)")
        }
        guard let json = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any], json["status"] as? String == "success",
            let data = json["data"] as? [String: Any]
        else {
            throw QueryError(message: "Prometheus answered HTTP \(response.status) without a result")
        }
        guard data["resultType"] as? String == "vector" else {
            throw QueryError(message: "the query returned a \(data["resultType"] as? String ?? "missing") result; a histogram needs an instant vector by le")
        }
        return (data["result"] as? [[String: Any]] ?? []).compactMap { series in
            guard let pair = series["value"] as? [Any], pair.count == 2, let text = pair[1] as? String, let value = Double(text), !value.isNaN else { return nil }
            return (series["metric"] as? [String: String] ?? [:], value)
        }
    }

    static func parse(_ body: Data, status: Int) throws -> Sample {
        guard let json = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw QueryError(message: "Prometheus answered HTTP \(status) without a JSON body")
        }
        guard json["status"] as? String == "success", let data = json["data"] as? [String: Any] else {
            let kind = json["errorType"] as? String ?? "error"
            throw QueryError(message: "Prometheus answered HTTP \(status), \(kind): \(json["error"] as? String ?? "no message")")
        }
        func number(_ pair: Any?) throws -> Sample {
            guard let pair = pair as? [Any], pair.count == 2, let text = pair[1] as? String, let value = Double(text) else {
                throw QueryError(message: "Prometheus returned a sample that is not [time, \"value\"]")
            }
            return value.isNaN ? .noData : .value(value)
        }
        switch data["resultType"] as? String {
        case "scalar":
            return try number(data["result"])
        case "vector":
            let result = data["result"] as? [[String: Any]] ?? []
            if result.isEmpty { return .noData }
            guard result.count == 1 else {
                throw QueryError(message: "the query returned \(result.count) series; a gate needs one: aggregate it, e.g. sum(...)")
            }
            return try number(result[0]["value"])
        case let other:
            throw QueryError(message: "the query returned a \(other ?? "missing") result; a gate needs an instant vector or scalar")
        }
    }
}
