import DeploymentRuntimes
public import Foundation
import OrchestratorSupport
import PipelineSchema
public import Provenance
import StrictYAML
import UnixSignals

extension ReleaseController {
    /// A run in progress as `orchestrate status --watch` shows it, read from the state files the
    /// controller writes before every action (`run.json`, `record.json`).
    public struct RolloutView: Sendable, Encodable, Equatable {
        public struct Weight: Sendable, Encodable, Equatable {
            public var color: String
            public var percent: Int
        }

        public var service: String
        public var releaseID: String
        public var phase: RunPhase
        /// The stage running, during `stages`.
        public var stage: String?
        public var target: String?
        public var live: String?
        public var weights: [Weight]
        /// The traffic step in force, from 1, and how many the plan has.
        public var step: Int?
        public var steps: Int?
        /// The latest measurement of each gate in the step in force.
        public var gates: [GateMeasurement]
        /// The rollout's last events, oldest first.
        public var events: [RolloutEvent]
        public var controllerPID: Int32
        public var controllerRunning: Bool
        public var startedOn: Date
        /// The webhook gate the rollout waits for ("waiting for confirm-promotion approve-100").
        public var waiting: String? = nil

        enum CodingKeys: String, CodingKey {
            case service, phase, stage, target, live, weights, step, steps, gates, events, waiting
            case releaseID = "release_id"
            case controllerPID = "controller_pid"
            case controllerRunning = "controller_running"
            case startedOn = "started_on"
        }
    }

    /// What `watch` reports at each look.
    public enum WatchFrame: Sendable {
        /// No run in progress: waiting for one.
        case waiting
        case running(RolloutView)
        /// The watched run ended: its record in the history.
        case finished(ReleaseRecord)
        /// The controller of the watched run is gone without a record (killed): `orchestrate
        /// recover` converges it.
        case gone(RolloutView)
    }

    /// The run in progress (nil when there is none, or its state cannot be read yet).
    public func rolloutView() -> RolloutView? {
        guard let run = (try? store.run()) ?? nil else { return nil }
        let record = (try? store.pendingRecord()) ?? nil
        let plannedSteps = record?.plan?.rollout?.steps ?? []
        var weights: [RolloutView.Weight] = []
        var step: Int?
        if let target = run.target, run.phase != .stages, run.phase != .deploying || run.weight > 0 {
            if let live = run.live?.color, run.weight < 100 {
                weights.append(.init(color: live, percent: 100 - run.weight))
            }
            weights.append(.init(color: target, percent: run.weight))
            if run.phase == .shifting || run.phase == .holding {
                step = plannedSteps.firstIndex { $0.newWeight == run.weight }.map { $0 + 1 }
            }
        } else if let live = run.live?.color {
            weights.append(.init(color: live, percent: 100))
        }
        return RolloutView(
            service: pipeline.deploy?.service ?? pipeline.name, releaseID: run.releaseID, phase: run.phase,
            stage: run.stage, target: run.target,
            live: run.live?.color, weights: weights, step: step, steps: plannedSteps.isEmpty ? nil : plannedSteps.count,
            gates: (run.gates ?? []).sorted { $0.gate < $1.gate },
            events: Array((record?.rollout?.events ?? []).suffix(5)), controllerPID: run.pid,
            controllerRunning: kill(run.pid, 0) == 0 && ProcessTable.startTime(of: run.pid) != nil,
            startedOn: run.startedOn, waiting: run.waiting)
    }

    /// Looks at the run in progress every `interval` (waiting for one when there is none) and
    /// hands each look to `show`, until the run ends; SIGINT or SIGTERM stop the watching (never
    /// the run).
    ///
    /// - Returns: the exit code: 0 the release succeeded, 1 it was rolled back, failed or
    ///   interrupted, or its controller is gone without a record; 130/143 the watch itself was
    ///   stopped by SIGINT/SIGTERM.
    public func watch(
        every interval: Duration = .seconds(1), show: @escaping @Sendable (WatchFrame) -> Void
    ) async throws -> Int32 {
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        return try await withThrowingTaskGroup(of: Int32.self) { group in
            group.addTask {
                for await signal in signals { return ExitStatus.interrupted(by: signal.rawValue) }
                return ExitStatus.failed
            }
            group.addTask { try await watchLoop(every: interval, show: show) }
            defer { group.cancelAll() }
            return try await group.next() ?? ExitStatus.failed
        }
    }

    private func watchLoop(every interval: Duration, show: @Sendable (WatchFrame) -> Void) async throws -> Int32 {
        var watched: RolloutView?
        var looksWithoutRecord = 0
        while true {
            try Task.checkCancellation()
            let view = rolloutView()
            if let previous = watched, view?.releaseID != previous.releaseID {
                // The watched run ended (its record is appended before run.json is removed).
                if let record = try history.lastRecord(
                    startedOnOrAfter: previous.startedOn.addingTimeInterval(-60),
                    where: { $0.releaseID == previous.releaseID })
                {
                    show(.finished(record))
                    return record.outcome == .succeeded ? ExitStatus.success : ExitStatus.failed
                }
                looksWithoutRecord += 1
                if looksWithoutRecord >= 5 {
                    show(.gone(previous))
                    return ExitStatus.failed
                }
            } else if let view {
                watched = view
                show(.running(view))
                if !view.controllerRunning {
                    show(.gone(view))
                    return ExitStatus.failed
                }
            } else {
                show(.waiting)
            }
            try await Task.sleep(for: interval)
        }
    }
}

extension ReleaseController.RolloutView {
    /// Argo Rollouts' words for the phase, with its symbol.
    public var status: String {
        if let waiting { return "॥ Paused (\(waiting): orchestrate approve, or abort)" }
        return switch phase {
        case .stages: "◌ Progressing (stages)"
        case .deploying: "◌ Progressing (deploying)"
        case .shifting: "◌ Progressing"
        case .holding: "॥ Paused (holding: orchestrate abort or promote)"
        case .rollingBack: "✖ Degraded (rolling back)"
        case .draining: "✔ Healthy (promoted; draining the old colour)"
        }
    }

    /// The view for a terminal, redrawn whole at each look.
    public func lines(now: Date = Date()) -> [String] {
        var lines = [
            "Name:        \(service)",
            "Release:     \(releaseID)  (controller pid \(controllerPID)\(controllerRunning ? "" : ", GONE"), started \(Self.age(startedOn, now)) ago)",
            "Status:      \(status)",
        ]
        if let stage, phase == .stages { lines.append("Stage:       \(stage)") }
        if let step, let steps { lines.append("Step:        \(step)/\(steps)") }
        lines.append("Live:        \(live ?? "none")")
        if let target { lines.append("New:         \(target)") }
        lines.append(
            "Weights:     "
                + (weights.isEmpty ? "-" : weights.map { "\($0.color) \($0.percent)%" }.joined(separator: "  ")))
        if !gates.isEmpty {
            lines.append("")
            lines.append("Gates\(step.map { " (step \($0))" } ?? ""):")
            let rows =
                [["NAME", "CONDITION", "VALUE", "OUTCOME", "AGE"]]
                + gates.map {
                    [
                        $0.gate, $0.condition, $0.value.map(formatMetric) ?? ($0.error ?? "-"), $0.outcome,
                        Self.age($0.at, now),
                    ]
                }
            lines += Self.table(rows).map { "  " + $0 }
        }
        if !events.isEmpty {
            lines.append("")
            lines.append("Events:")
            lines += events.map {
                "  \(Self.clock($0.at))  \($0.kind.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) \($0.detail)"
            }
        }
        return lines
    }

    /// The view as one line, for output that is not a terminal (printed when it changes).
    public var line: String {
        var parts = ["release \(releaseID)", phase.rawValue]
        if let waiting { parts.append(waiting) }
        if let stage, phase == .stages { parts.append("stage \(stage)") }
        if let step, let steps { parts.append("step \(step)/\(steps)") }
        if !weights.isEmpty { parts.append(weights.map { "\($0.color) \($0.percent)%" }.joined(separator: " ")) }
        if !gates.isEmpty {
            parts.append(
                "gates "
                    + gates.map { "\($0.gate)=\($0.value.map(formatMetric) ?? "-") \($0.outcome)" }.joined(
                        separator: ", "))
        }
        return parts.joined(separator: "  ")
    }

    static func age(_ date: Date, _ now: Date) -> String {
        let seconds = max(0, Int(now.timeIntervalSince(date)))
        return seconds < 120 ? "\(seconds)s" : seconds < 7200 ? "\(seconds / 60)m" : "\(seconds / 3600)h"
    }

    static func clock(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withTime, .withColonSeparatorInTime]
        return formatter.string(from: date)
    }

    static func table(_ rows: [[String]]) -> [String] {
        let widths = (0..<(rows.first?.count ?? 0)).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }
            .joined(separator: "  ")
        }
    }
}
