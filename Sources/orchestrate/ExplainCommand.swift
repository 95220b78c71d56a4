import ArgumentParser
import CommandLineSupport
import Foundation
import Orchestrator
import OrchestratorSupport
import Provenance
import TextSafety

/// `orchestrate explain`: why a release was promoted or rolled back, step by step.
struct ExplainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract:
            "Why a release was promoted or rolled back: every step, gate measurement and judge look, with the rule that decided."
    )

    @Argument(help: "The release id (orchestrate history lists them); --last for the newest.") var release: String?
    @Flag(help: "The newest release.") var last = false
    @OptionGroup var source: HistoryOptions
    @Option(help: "text or json.") var output: OutputFormat = .text

    struct Explanation: Encodable {
        var release: String
        var outcome: String
        var failure: String?
        /// What each tune stage chose, by stage name.
        var tuning: [String: ReleaseRecord.Tuning]
        /// The shadow stage before the first step, when one ran.
        var shadow: ShadowComparison?
        var steps: [ReleaseRecord.RolloutRecord.Step]
    }

    func validate() throws {
        if (release == nil) == !last { throw ValidationError("name a release, or give --last") }
    }

    func run() async throws {
        let history = try source.resolve()
        guard let record = try history.lastRecord(where: { last ? $0.rollout != nil : $0.releaseID == release }) else {
            throw OrchestratorError(
                .invalidInput,
                last
                    ? "no release with a rollout in \(history.path)"
                    : "release \(release ?? "") is not in \(history.path)",
                hint: "orchestrate history lists the releases")
        }
        let steps = record.rollout?.steps ?? []
        let tuned = record.stages.compactMap { stage in stage.tuning.map { (stage.name, $0) } }
        if output == .json {
            try printJSON(
                Explanation(
                    release: record.releaseID, outcome: record.outcome.rawValue, failure: record.failure,
                    tuning: Dictionary(tuned, uniquingKeysWith: { _, last in last }), shadow: record.rollout?.shadow,
                    steps: steps))
            return
        }
        print("release \(record.releaseID): \(record.outcome.rawValue)\(record.failure.map { " — \($0)" } ?? "")")
        // The model released is the one its tune stage chose: say which, and how it was chosen.
        for (stage, tuning) in tuned {
            print(
                "tuned by stage \(stage) (\(record.stages.first { $0.name == stage }?.status.rawValue ?? "")): chose \(tuning.summary)"
            )
        }
        if let rollout = record.rollout {
            print("live \(rollout.live ?? "none"), new \(rollout.target), \(rollout.mode) split")
            if let shadow = rollout.shadow {
                print("")
                // Users' ids and movie ids are outside text: printed as the record keeps them, bounded.
                shadow.lines(target: rollout.target, live: rollout.live ?? "live").forEach {
                    print(OutsideText.bounded($0, limit: 2000))
                }
            }
        }
        for (index, step) in steps.enumerated() {
            let seconds =
                step.finishedOn.map { String(format: "%.1f s", $0.timeIntervalSince(step.startedOn)) } ?? "unfinished"
            let verdict = step.passed.map { $0 ? "passed" : "FAILED" } ?? "not decided"
            print("\nstep \(index + 1): \(rollout(record)) \(step.weight)%, held \(seconds): \(verdict)")
            for measurement in step.measurements {
                let value = measurement.value.map { String(format: "%.4g", $0) } ?? measurement.error ?? "-"
                print("  gate \(measurement.gate) \(measurement.condition): \(value) \(measurement.outcome)")
            }
            guard let looks = step.judge, let final = looks.last else { continue }
            print(
                "  judge: \(looks.count) look(s); \(step.judgeDecision?.rawValue ?? "undecided"): \(step.judgeRule ?? "")"
            )
            // The split's health at the last look that could check it.
            for check in looks.last(where: { !($0.sampleRatio ?? []).isEmpty })?.sampleRatio ?? [] {
                print("  sample ratio \(check.mismatch ? "MISMATCH" : "ok"): \(check.summary)")
            }
            var rows = [["metric", "verdict", "new", "live", "difference", "interval", "margin"]]
            var rules: [String] = []
            for metric in final.metrics {
                for comparison in metric.comparisons {
                    let name = metric.metric + (comparison.quantile.map { " >p\(Int(($0 * 100).rounded()))" } ?? "")
                    let cells = [
                        name + (metric.critical ? "*" : ""), metric.classification.rawValue,
                        String(format: "%.0f/%.0f", comparison.newSuccesses, comparison.newTrials),
                        String(format: "%.0f/%.0f", comparison.liveSuccesses, comparison.liveTrials),
                        String(format: "%+.4f", comparison.difference),
                        String(format: "[%+.4f, %+.4f]", comparison.lower, comparison.upper),
                        String(format: "%.4f", comparison.margin),
                    ]
                    rows.append(cells)
                }
                rules.append("\(metric.metric): \(metric.rule)")
            }
            tableLines(rows).forEach { print("    " + $0) }
            rules.forEach { print("    " + $0) }
        }
    }

    func rollout(_ record: ReleaseRecord) -> String { record.rollout?.target ?? "new" }
}
