public import Foundation
import StrictYAML

/// One measurement of a PromQL gate, as recorded in provenance.
public struct GateMeasurement: Sendable, Codable, Equatable {
    /// success, failure, nodata (counted by the gate's policy), inconclusive or error.
    public var outcome: String
    public var gate: String
    public var query: String
    public var value: Double?
    public var condition: String
    public var at: Date
    public var error: String?

    public init(
        outcome: String, gate: String, query: String, value: Double?, condition: String, at: Date, error: String? = nil
    ) {
        self.outcome = outcome
        self.gate = gate
        self.query = query
        self.value = value
        self.condition = condition
        self.at = at
        self.error = error
    }
}
