import Foundation
import HTTPTransport
import PipelineSchema
import Provenance
import Synchronization

/// The controller's own state in Prometheus: at every change of a run (phase, weight, a gate
/// measured, the outcome) the whole state is pushed to a Pushgateway group
/// (`/metrics/job/JOB/service/SERVICE`, replaced by each push), through the outbox: only the
/// newest state waits to be sent, and a failed push never fails the rollout.
///
/// A Pushgateway rather than an endpoint served by the controller: the controller is a batch job
/// (it exits when the release ends), so an endpoint would vanish with the outcome unscraped,
/// while the Pushgateway keeps the last state (`idle`, the weights in force, the outcome) for
/// Prometheus until the next run.
final class MetricsPusher: RunObserver {
    static let destination = "metrics pushgateway"
    static let phases = RunPhase.allCases.map(\.rawValue) + ["idle"]

    struct Snapshot: Sendable {
        var release: String?
        var startedAt: Date?
        var phase = "idle"
        var target: String?
        var live: String?
        /// Percent of traffic on each colour.
        var weights: [String: Int] = [:]
        var step = 0
        var gates: [String: GateMeasurement] = [:]
        /// Records of the history by action and outcome (this run's added once it ends).
        var tally: [String: [String: Int]] = [:]
    }

    let spec: MetricsSpec
    let outbox: Outbox
    let service: String
    let colors: [String]
    let gates: [PromQLGate]
    private let snapshot: Mutex<Snapshot>

    convenience init(
        spec: MetricsSpec, outbox: Outbox, service: String, colors: [String], gates: [PromQLGate],
        records: [ReleaseRecord], live: LiveRelease?
    ) {
        var tally = Tally()
        records.forEach { tally.count($0) }
        self.init(spec: spec, outbox: outbox, service: service, colors: colors, gates: gates, tally: tally, live: live)
    }

    /// - Parameter tally: the history's records by action and outcome (`Tally.of(history)`).
    init(
        spec: MetricsSpec, outbox: Outbox, service: String, colors: [String], gates: [PromQLGate], tally: Tally,
        live: LiveRelease?
    ) {
        self.spec = spec
        self.outbox = outbox
        self.service = service
        self.colors = colors
        self.gates = gates
        var initial = Snapshot()
        initial.tally = tally.counts
        initial.live = live?.color
        if let live { initial.weights[live.color] = 100 }
        snapshot = Mutex(initial)
    }

    static func destinations(_ spec: MetricsSpec) -> [Outbox.Destination] {
        [
            Outbox.Destination(
                name: destination, timeout: .seconds(5), retries: 2, backoff: .milliseconds(500), latestOnly: true)
        ]
    }

    func observe(_ event: RunEvent) {
        let changed: Snapshot? = snapshot.withLock { state in
            switch event.kind {
            case .started(let live):
                state.release = event.releaseID
                state.startedAt = event.at
                state.phase = "stages"
                state.live = live
                state.gates = [:]
                state.step = 0
            case .progress(let run):
                if run.phase == .shifting
                    && (state.phase != run.phase.rawValue || state.weights[run.target ?? ""] != run.weight)
                {
                    state.step += 1
                }
                state.phase = run.phase.rawValue
                state.target = run.target
                state.live = run.live?.color
                if let target = run.target, run.phase != .stages {
                    state.weights = [:]
                    state.weights[target] = run.weight
                    if let live = run.live?.color { state.weights[live] = 100 - run.weight }
                }
            case .measured(let measurement):
                state.gates[measurement.gate] = measurement
            case .promoted(let color, _):
                state.weights = [color: 100]
            case .recovered(let record), .finished(let record):
                state.tally[(record.action ?? .release).rawValue, default: [:]][record.outcome.rawValue, default: 0] +=
                    1
                guard case .finished = event.kind else { break }
                state.phase = "idle"
                if record.outcome == .succeeded, let color = record.deployment?.color ?? state.target {
                    state.weights = [color: 100]
                    state.live = color
                } else if let live = state.live {
                    state.weights = [live: 100]
                }
            case .stepPassed, .gateFailed, .rolledBack, .gateWaiting, .gateAnswered:
                return nil
            }
            return state
        }
        guard let changed else { return }
        outbox.send(
            Outbox.Request(
                method: "PUT",
                url:
                    "\(spec.pushgateway)/metrics/job/\(Self.pathSegment(spec.job))/service/\(Self.pathSegment(service))",
                headers: ["Content-Type: text/plain; version=0.0.4"], body: Data(render(changed).utf8),
                what: "the controller's state (\(changed.phase))"),
            to: Self.destination)
    }

    /// The Prometheus text exposition of a snapshot.
    func render(_ state: Snapshot) -> String {
        var out = ""
        typealias Sample = ([(String, String)], Double)
        func family(_ name: String, _ type: String, _ help: String, _ samples: [Sample]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (labels, value) in samples {
                let text = labels.map { "\($0.0)=\"\(Self.escaped($0.1))\"" }.joined(separator: ",")
                out += "\(name)\(text.isEmpty ? "" : "{\(text)}") \(Self.number(value))\n"
            }
        }
        family(
            "orchestrate_rollout_weight_percent", "gauge", "Percent of users the controller sends to each colour.",
            colors.map { color -> Sample in ([("color", color)], Double(state.weights[color] ?? 0)) })
        family(
            "orchestrate_rollout_phase", "gauge",
            "1 for the phase the controller is in (idle between runs), 0 for the others.",
            Self.phases.map { phase -> Sample in ([("phase", phase)], phase == state.phase ? 1 : 0) })
        family(
            "orchestrate_rollout_step", "gauge", "The traffic step in force, from 1 (0 before the first).",
            [([], Double(state.step))])
        if let release = state.release, let started = state.startedAt {
            family(
                "orchestrate_release_started_timestamp_seconds", "gauge",
                "When the last release began (for annotations).",
                [
                    (
                        [("release", release), ("target", state.target ?? ""), ("live", state.live ?? "")],
                        started.timeIntervalSince1970
                    )
                ])
        }
        let measured = state.gates.values.sorted { $0.gate < $1.gate }
        family(
            "orchestrate_gate_value", "gauge", "The last value of each PromQL gate, measured on the new colour.",
            measured.compactMap { m -> Sample? in
                m.value.map { ([("gate", m.gate), ("color", state.target ?? "")], $0) }
            })
        family(
            "orchestrate_gate_passed", "gauge",
            "1 when the last measurement of the gate passed, 0 when it failed, had no data or an error.",
            measured.map { m -> Sample in ([("gate", m.gate)], m.outcome == "success" ? 1 : 0) })
        family(
            "orchestrate_gate_bound", "gauge", "Each gate's bounds (min, max).",
            gates.flatMap { gate -> [Sample] in
                var samples: [Sample] = []
                if let min = gate.min { samples.append(([("gate", gate.name), ("bound", "min")], min)) }
                if let max = gate.max { samples.append(([("gate", gate.name), ("bound", "max")], max)) }
                return samples
            })
        family(
            "orchestrate_releases_total", "counter",
            "Records in the release history by action (release, rollback, repair) and outcome (succeeded, rolled_back, ...).",
            state.tally.sorted { $0.key < $1.key }.flatMap { action, outcomes -> [Sample] in
                outcomes.sorted { $0.key < $1.key }.map { outcome -> Sample in
                    ([("action", action), ("outcome", outcome.key)], Double(outcome.value))
                }
            })
        return out
    }

    static func escaped(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }

    static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        return value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }

    static func pathSegment(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }
}

extension MetricsPusher {
    /// Releases by action and outcome, dry runs left out.
    struct Tally {
        var counts: [String: [String: Int]] = [:]

        mutating func count(_ record: ReleaseRecord) {
            guard record.outcome != .planned else { return }
            counts[(record.action ?? .release).rawValue, default: [:]][record.outcome.rawValue, default: 0] += 1
        }

        /// The tally of a whole history, read a record at a time.
        static func of(_ history: ReleaseHistory) throws -> Tally {
            var tally = Tally()
            try history.forEachLine { line in
                if let record = line.record { tally.count(record) }
                return true
            }
            return tally
        }
    }
}
