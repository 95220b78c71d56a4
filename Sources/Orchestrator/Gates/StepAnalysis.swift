public import Foundation
import StrictYAML
import PipelineSchema

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

    public init(outcome: String, gate: String, query: String, value: Double?, condition: String, at: Date, error: String? = nil) {
        self.outcome = outcome
        self.gate = gate
        self.query = query
        self.value = value
        self.condition = condition
        self.at = at
        self.error = error
    }
}

/// The verdict on one traffic step.
public struct StepVerdict: Sendable {
    public var passed: Bool
    public var measurements: [GateMeasurement]
    /// The gate and reason when `passed` is false.
    public var failure: String?
}

/// Measures every PromQL gate of the pipeline for one step, concurrently, following each gate's
/// `initialDelay`, `interval`, `count`, `failureLimit`, `consecutiveErrorLimit` and `onNoData`.
struct StepAnalysis {
    var prometheus: PrometheusClient
    var gates: [PromQLGate]
    var color: String
    var live: String
    var release: String
    /// Inconclusive gates (no data under `onNoData: inconclusive`) give up at this point.
    var deadline: ContinuousClock.Instant
    var report: @Sendable (GateMeasurement) async -> Void

    func run() async -> StepVerdict {
        await withTaskGroup(of: (Bool, [GateMeasurement], String?).self) { group in
            for gate in gates {
                group.addTask { await measure(gate) }
            }
            var measurements: [GateMeasurement] = []
            var failure: String?
            for await (passed, gateMeasurements, reason) in group {
                measurements += gateMeasurements
                if !passed && failure == nil {
                    failure = reason
                    group.cancelAll()
                }
            }
            return StepVerdict(passed: failure == nil, measurements: measurements.sorted { $0.at < $1.at }, failure: failure)
        }
    }

    private func measure(_ gate: PromQLGate) async -> (Bool, [GateMeasurement], String?) {
        let query = gate.resolvedQuery(color: color, live: live, release: release)
        let condition = MetricThreshold(metric: gate.name, min: gate.min, max: gate.max)
        var measurements: [GateMeasurement] = []
        var conclusive = 0
        var failures = 0
        var consecutiveErrors = 0
        do {
            try await Task.sleep(for: gate.initialDelay.duration)
            while conclusive < gate.count {
                var measurement = GateMeasurement(
                    outcome: "success", gate: gate.name, query: query, value: nil, condition: condition.condition, at: Date())
                do {
                    switch try await prometheus.query(query) {
                    case .value(let value):
                        measurement.value = value
                        measurement.outcome = condition.admits(value) ? "success" : "failure"
                        if !value.isFinite { measurement.error = "not a finite number" }
                    case .noData:
                        switch gate.onNoData {
                        case .pass: measurement.outcome = "success"
                        case .fail: measurement.outcome = "failure"
                        case .inconclusive: measurement.outcome = "inconclusive"
                        }
                        measurement.error = "no data"
                    case .notANumber:
                        // No data, as an empty result, but a value that is not a number never
                        // passes: under `onNoData: pass` it waits for a number (and fails at the
                        // step's deadline without one).
                        switch gate.onNoData {
                        case .fail: measurement.outcome = "failure"
                        case .pass, .inconclusive: measurement.outcome = "inconclusive"
                        }
                        measurement.error = "NaN: no data, which never passes"
                    }
                    consecutiveErrors = 0
                } catch {
                    measurement.outcome = "error"
                    measurement.error = "\(error)"
                    consecutiveErrors += 1
                }
                measurements.append(measurement)
                await report(measurement)
                switch measurement.outcome {
                case "success":
                    conclusive += 1
                case "failure":
                    conclusive += 1
                    failures += 1
                    if failures > gate.failureLimit {
                        let reason =
                            switch measurement.value {
                            case let value? where !value.isFinite: "the query returned \(formatMetric(value)), not a finite number"
                            case let value?: "\(formatMetric(value)) is not \(condition.condition)"
                            case nil: "no data is not \(condition.condition)"
                            }
                        return (false, measurements, "gate \(gate.name): \(reason) (query: \(query))")
                    }
                case "error" where consecutiveErrors > gate.consecutiveErrorLimit:
                    return (false, measurements, "gate \(gate.name): \(consecutiveErrors) query errors in a row: \(measurement.error ?? "")")
                default:
                    break
                }
                if measurement.outcome == "inconclusive" && ContinuousClock.now >= deadline {
                    return (false, measurements, "gate \(gate.name): no data until the step's deadline (query: \(query))")
                }
                if conclusive < gate.count {
                    try await Task.sleep(for: gate.interval.duration)
                }
            }
        } catch {
            return (true, measurements, nil)  // cancelled: another gate decided the step
        }
        return (true, measurements, nil)
    }
}
