import Foundation
import PipelineSchema
import Provenance
import StrictYAML

/// One PromQL gate's measurements during a step, counted by its policy: `count` conclusive
/// measurements pass it, more than `failureLimit` failed ones or more than
/// `consecutiveErrorLimit` query errors in a row fail it, and no data under `onNoData:
/// inconclusive` fails it once the step's inconclusive deadline has passed. Pure: the samples come
/// from the executor's queries.
struct GateTally: Sendable, Equatable {
    let gate: PromQLGate
    /// The query as sent (placeholders filled in), for the record and the failure.
    let query: String
    private(set) var conclusive = 0
    private(set) var failures = 0
    private(set) var consecutiveErrors = 0
    private(set) var verdict: Verdict = .measuring

    enum Verdict: Sendable, Equatable {
        /// Another measurement is due after `gate.interval`.
        case measuring
        case passed
        /// Why, with the query.
        case failed(String)
    }

    init(gate: PromQLGate, query: String) {
        self.gate = gate
        self.query = query
    }

    var condition: MetricThreshold {
        var condition = MetricThreshold(metric: gate.name, min: gate.min, max: gate.max, history: gate.history)
        condition.reference = gate.reference
        return condition
    }

    /// Counts one sample; returns its measurement as recorded.
    ///
    /// - Parameter deadlinePassed: whether the step's inconclusive deadline has passed.
    mutating func record(_ sample: RolloutMachine.GateSample, at time: Date, deadlinePassed: Bool) -> GateMeasurement {
        let condition = self.condition
        var measurement = GateMeasurement(
            outcome: "success", gate: gate.name, query: query, value: nil, condition: condition.condition, at: time)
        switch sample {
        case .value(let value):
            measurement.value = value
            measurement.outcome = condition.admits(value) ? "success" : "failure"
            if !value.isFinite { measurement.error = "not a finite number" }
            consecutiveErrors = 0
        case .noData:
            switch gate.onNoData {
            case .pass: measurement.outcome = "success"
            case .fail: measurement.outcome = "failure"
            case .inconclusive: measurement.outcome = "inconclusive"
            }
            measurement.error = "no data"
            consecutiveErrors = 0
        case .notANumber:
            // No data, as an empty result, but a value that is not a number never passes: under
            // `onNoData: pass` it waits for a number (and fails at the step's deadline without one).
            switch gate.onNoData {
            case .fail: measurement.outcome = "failure"
            case .pass, .inconclusive: measurement.outcome = "inconclusive"
            }
            measurement.error = "NaN: no data, which never passes"
            consecutiveErrors = 0
        case .error(let error):
            measurement.outcome = "error"
            measurement.error = error
            consecutiveErrors += 1
        }
        switch measurement.outcome {
        case "success":
            conclusive += 1
        case "failure":
            conclusive += 1
            failures += 1
            if failures > gate.failureLimit {
                let reason =
                    switch measurement.value {
                    case let value? where !value.isFinite:
                        "the query returned \(formatMetric(value)), not a finite number"
                    case let value?: "\(formatMetric(value)) is not \(condition.condition)"
                    case nil: "no data is not \(condition.condition)"
                    }
                verdict = .failed("gate \(gate.name): \(reason) (query: \(query))")
                return measurement
            }
        case "error" where consecutiveErrors > gate.consecutiveErrorLimit:
            verdict = .failed(
                "gate \(gate.name): \(consecutiveErrors) query errors in a row: \(measurement.error ?? "")")
            return measurement
        default:
            break
        }
        if measurement.outcome == "inconclusive" && deadlinePassed {
            verdict = .failed("gate \(gate.name): no data until the step's deadline (query: \(query))")
        } else if conclusive >= gate.count {
            verdict = .passed
        }
        return measurement
    }

    /// How long a step may stay inconclusive (no data under `onNoData: inconclusive`) before its
    /// gate fails: twice the longer of the step's wait and the time its measurements need, so a
    /// slow first scrape is waited for but an unattended step never hangs.
    static func inconclusiveDeadline(wait: Duration, gates: [PromQLGate]) -> Duration {
        let measuring = gates.map { $0.initialDelay.duration + $0.interval.duration * $0.count }.max() ?? .zero
        return max(wait, measuring) * 2
    }
}
