import Foundation
import StrictYAML
import Testing

@testable import Orchestrator
@testable import PipelineSchema
@testable import Provenance

/// How a PromQL gate counts its measurements during a step (what `StepAnalysis` decided inside
/// its query loop): plain values, no Prometheus.
@Suite struct GateTallyTests {
    static func gate(
        count: Int = 3, failureLimit: Int = 0, consecutiveErrorLimit: Int = 1,
        onNoData: PromQLGate.NoDataPolicy = .fail, min: Double? = nil,
        max: Double? = 0.05
    ) -> GateTally {
        GateTally(
            gate: PromQLGate(
                name: "error-rate", query: "q", min: min, max: max, interval: .seconds(5), count: count,
                initialDelay: .seconds(0), failureLimit: failureLimit,
                consecutiveErrorLimit: consecutiveErrorLimit, onNoData: onNoData), query: "q")
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var tally: GateTally
        var samples: [RolloutMachine.GateSample]
        var deadlinePassed = false
        var outcomes: [String]
        var verdict: GateTally.Verdict
        var testDescription: String { name }
    }

    static let date = Date(timeIntervalSince1970: 0)

    @Test(arguments: [
        Case(
            name: "count conclusive measurements pass", tally: gate(),
            samples: [.value(0), .value(0.01), .value(0.05)],
            outcomes: ["success", "success", "success"], verdict: .passed),
        Case(
            name: "one failure over a limit of 0 fails at once", tally: gate(), samples: [.value(0.2)],
            outcomes: ["failure"],
            verdict: .failed("gate error-rate: 0.2000 is not <= 0.05 (query: q)")),
        Case(
            name: "a failure within the limit goes on", tally: gate(failureLimit: 1),
            samples: [.value(0.2), .value(0), .value(0)],
            outcomes: ["failure", "success", "success"], verdict: .passed),
        Case(
            name: "the last measurement failing past the limit fails", tally: gate(count: 2, failureLimit: 1),
            samples: [.value(1), .value(1)],
            outcomes: ["failure", "failure"], verdict: .failed("gate error-rate: 1 is not <= 0.05 (query: q)")),
        Case(
            name: "query errors within the limit are not conclusive", tally: gate(count: 1),
            samples: [.error("refused"), .value(0)],
            outcomes: ["error", "success"], verdict: .passed),
        Case(
            name: "query errors past the limit fail", tally: gate(), samples: [.error("refused"), .error("refused")],
            outcomes: ["error", "error"],
            verdict: .failed("gate error-rate: 2 query errors in a row: refused")),
        Case(
            name: "an answer resets the errors in a row", tally: gate(count: 2),
            samples: [.error("a"), .value(0), .error("b"), .value(0)],
            outcomes: ["error", "success", "error", "success"], verdict: .passed),
        Case(
            name: "no data fails under onNoData: fail", tally: gate(), samples: [.noData], outcomes: ["failure"],
            verdict: .failed("gate error-rate: no data is not <= 0.05 (query: q)")),
        Case(
            name: "no data passes under onNoData: pass", tally: gate(count: 1, onNoData: .pass), samples: [.noData],
            outcomes: ["success"], verdict: .passed),
        Case(
            name: "no data waits under onNoData: inconclusive", tally: gate(count: 1, onNoData: .inconclusive),
            samples: [.noData, .noData],
            outcomes: ["inconclusive", "inconclusive"], verdict: .measuring),
        Case(
            name: "no data past the deadline fails", tally: gate(count: 1, onNoData: .inconclusive), samples: [.noData],
            deadlinePassed: true,
            outcomes: ["inconclusive"],
            verdict: .failed("gate error-rate: no data until the step's deadline (query: q)")),
        Case(
            name: "NaN never passes, even under onNoData: pass", tally: gate(count: 1, onNoData: .pass),
            samples: [.notANumber], outcomes: ["inconclusive"],
            verdict: .measuring),
        Case(
            name: "NaN fails under onNoData: fail", tally: gate(count: 1), samples: [.notANumber],
            outcomes: ["failure"],
            verdict: .failed("gate error-rate: no data is not <= 0.05 (query: q)")),
        Case(
            name: "+Inf fails a min", tally: gate(count: 1, min: 0.5, max: nil), samples: [.value(.infinity)],
            outcomes: ["failure"],
            verdict: .failed("gate error-rate: the query returned inf, not a finite number (query: q)")),
        Case(
            name: "-Inf fails a max", tally: gate(count: 1), samples: [.value(-.infinity)], outcomes: ["failure"],
            verdict: .failed("gate error-rate: the query returned -inf, not a finite number (query: q)")),
    ])
    func aGateCountsItsMeasurementsByItsPolicy(_ example: Case) {
        var tally = example.tally
        var outcomes: [String] = []
        for sample in example.samples where tally.verdict == .measuring {
            outcomes.append(tally.record(sample, at: Self.date, deadlinePassed: example.deadlinePassed).outcome)
        }
        #expect(outcomes == example.outcomes)
        #expect(tally.verdict == example.verdict)
    }

    @Test func aMeasurementCarriesWhatTheRecordShows() {
        var tally = Self.gate()
        let measurement = tally.record(.value(.nan), at: Self.date, deadlinePassed: false)
        #expect(measurement.outcome == "failure" && measurement.value?.isNaN == true)
        #expect(
            measurement.error == "not a finite number" && measurement.condition == "<= 0.05" && measurement.query == "q"
                && measurement.at == Self.date)
    }

    @Test func theInconclusiveDeadlineIsTwiceTheLongerOfTheWaitAndTheGatesTime() {
        let gate = Self.gate(count: 4).gate
        #expect(GateTally.inconclusiveDeadline(wait: .seconds(10), gates: [gate]) == .seconds(40))
        #expect(GateTally.inconclusiveDeadline(wait: .seconds(30), gates: [gate]) == .seconds(60))
        #expect(GateTally.inconclusiveDeadline(wait: .seconds(30), gates: []) == .seconds(60))
    }
}
