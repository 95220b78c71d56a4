import DeploymentRuntimes
import Foundation
public import Provenance

/// What recovery will do with a run a killed controller left behind, decided once from what it
/// observed (`RecoveryObservation`): the same plan is printed (`run --dry-run`, `status`) and
/// carried out (`Recovery.converge`), so they cannot disagree.
///
/// The commit point of a rollout is `current.json`: when it names the interrupted release, the
/// release had been promoted and recovery finishes it (traffic on it, the old colour stopped if
/// `stopOld`); otherwise traffic goes back to the live colour and every other colour stops,
/// unless the live colour does not run (they carry the traffic then). The run's children are
/// stopped with their process groups. An unreadable `run.json` or `record.json` is moved aside,
/// never lost; a runtime whose engine does not answer stops it (nothing is guessed).
public struct RecoveryPlan: Sendable, Equatable, Codable {
    /// The interrupted release; nil when neither of its files could be read.
    public var releaseID: String?
    /// Where it was when its controller died; nil when `run.json` could not be read.
    public var phase: RunPhase?
    public var actions: [RecoveryAction]

    enum CodingKeys: String, CodingKey {
        case phase, actions
        case releaseID = "release_id"
    }

    /// The plan for what was observed; nil when no run is pending.
    init?(_ observed: RecoveryObservation) {
        guard observed.isPending else { return nil }
        releaseID = observed.releaseID
        phase = observed.runState?.phase
        if let engine = observed.engine, !engine.answers {
            // Nothing can be converged blind: the colours would look stopped and be recorded so.
            actions = [.refuse(runtime: engine.runtime)]
            return
        }
        var actions: [RecoveryAction] = []
        if case .unreadable = observed.run { actions.append(.moveAside(path: observed.runPath)) }
        if case .unreadable = observed.record { actions.append(.moveAside(path: observed.recordPath)) }
        if observed.alreadyRecorded {
            // The run had recorded itself and was stopped while cleaning up: nothing to converge.
            self.actions = actions + [.discardState]
            return
        }
        actions += observed.processes.map(RecoveryAction.stopProcess)
        let outcome: ReleaseOutcome
        if observed.runState?.phase == .stages {
            outcome = .interrupted
        } else if let run = observed.runState, let live = observed.live, live.releaseID == run.releaseID {
            // Promoted before the controller died: finish the promotion.
            if let engine = observed.engine {
                if engine.runs(live.color), observed.trafficSwitch != nil {
                    actions.append(.sendAllTraffic(color: live.color, because: .promotionSaved))
                }
                if run.stopOld, let old = run.live, old.color != live.color {
                    actions.append(.stopColour(color: old.color, because: .stopOld))
                }
            }
            outcome = .succeeded
        } else {
            if let engine = observed.engine {
                switch (observed.live, observed.trafficSwitch) {
                case (let live?, _?):
                    actions.append(
                        engine.runs(live.color)
                            ? .sendAllTraffic(color: live.color, because: .liveRelease(live.releaseID))
                            : .leaveTraffic(liveColor: live.color))
                case (nil, .serving?):
                    actions.append(.stopTrafficSwitch)
                default:
                    break
                }
                let others = observed.colors.filter { $0 != observed.live?.color }
                if let live = observed.live, !engine.runs(live.color) {
                    // The colours that carry the traffic because the live one is gone keep running.
                    if !others.isEmpty { actions.append(.keepRunning(colors: others, liveColor: live.color)) }
                } else {
                    // Stopped even when nothing of them serves: a colour whose instances were still
                    // starting when the controller died is no instance yet, but would run on, unrouted.
                    actions += others.map { .stopColour(color: $0, because: .notLive(running: engine.runs($0))) }
                }
            }
            outcome = .rolledBack
        }
        if observed.engine != nil { actions.append(.writeTargets) }
        if let ended = observed.endedOutcome {
            actions.append(.record(outcome: ended, ended: true))
        } else {
            actions.append(.record(outcome: outcome, ended: false))
        }
        self.actions = actions
    }

    /// The outcome the record will have; nil when nothing is recorded.
    public var outcome: ReleaseOutcome? {
        for action in actions { if case .record(let outcome, _) = action { return outcome } }
        return nil
    }

    /// What the plan's traffic and colours converge to, as the record's failure says.
    var converged: String {
        switch outcome {
        case .succeeded?: "the promoted release"
        case .rolledBack?: "the live release"
        default: "nothing deployed"
        }
    }

    /// The plan for people, one line per action.
    public var lines: [String] { actions.map { $0.description(releaseID: releaseID) } }
}

extension RunPlan.PlannedRecovery {
    /// The recovery plan as the run's plan prints it: one line per action.
    init(_ plan: RecoveryPlan) {
        self.init(releaseID: plan.releaseID, phase: plan.phase, actions: plan.lines)
    }
}

/// One thing recovery does.
public enum RecoveryAction: Sendable, Equatable, Codable {
    /// The runtime cannot say what runs: nothing is changed, the run is kept for later.
    case refuse(runtime: String)
    /// A state file that cannot be read is renamed aside (`NAME.unreadable-TIME`).
    case moveAside(path: String)
    /// The run had recorded itself: its state is removed, nothing else.
    case discardState
    case stopProcess(TrackedProcess)
    case sendAllTraffic(color: String, because: TrafficReason)
    /// The live colour does not run: traffic stays where it is (`orchestrate status` says where).
    case leaveTraffic(liveColor: String)
    /// Nothing was live before: nginx stops.
    case stopTrafficSwitch
    case stopColour(color: String, because: StopReason)
    /// The live colour does not run, so the others carry the traffic and keep running.
    case keepRunning(colors: [String], liveColor: String)
    /// Prometheus' targets of the colours that run.
    case writeTargets
    /// The release is appended to the history with this outcome; `ended` when its controller
    /// (or an earlier recover) had ended it but could not append it.
    case record(outcome: ReleaseOutcome, ended: Bool)

    public enum TrafficReason: Sendable, Equatable, Codable {
        /// `current.json` names the interrupted release: its promotion stands.
        case promotionSaved
        /// Back to the release that was live before.
        case liveRelease(String)
    }

    public enum StopReason: Sendable, Equatable, Codable {
        /// `traffic.stopOld`, after a promotion.
        case stopOld
        /// Not the live colour; `running` when an instance of it was seen.
        case notLive(running: Bool)
    }

    func description(releaseID: String?) -> String {
        switch self {
        case .refuse(let runtime):
            "nothing: the \(runtime) runtime's engine does not answer, so what runs cannot be known; the run is kept for recovery"
        case .moveAside(let path): "move the unreadable \(path) aside"
        case .discardState: "it had recorded itself before its controller died: remove its state, nothing to converge"
        case .stopProcess(let process): "stop the \(process.role) (pid \(process.pid)) with its process group"
        case .sendAllTraffic(let color, .promotionSaved): "its promotion was saved: all traffic on \(color)"
        case .sendAllTraffic(let color, .liveRelease(let release)): "all traffic back on \(color) (release \(release))"
        case .leaveTraffic(let color):
            "the live colour \(color) is not running: leave traffic as it is (orchestrate status shows where it goes)"
        case .stopTrafficSwitch: "nothing was live before: stop nginx"
        case .stopColour(let color, .stopOld): "stop \(color) (traffic.stopOld)"
        case .stopColour(let color, .notLive(let running)):
            running ? "stop \(color)" : "stop \(color) if anything of it still starts"
        case .keepRunning(let colors, let live):
            "keep \(colors.joined(separator: ", ")) running: \(live), the live colour, is not running"
        case .writeTargets: "write Prometheus' targets of the colours that run"
        case .record(let outcome, true):
            "append the record of release \(releaseID ?? "?"), which ended \(outcome.rawValue) but could not be appended"
        case .record(.interrupted, false):
            "nothing was deployed: append release \(releaseID ?? "?") to the history as interrupted"
        case .record(let outcome, false): "append the interrupted release to the history as \(outcome.rawValue)"
        }
    }
}

/// What recovery sees of a run a killed controller left behind: its files, what runs, what
/// nginx does, the run's processes. Gathered by reading only; `RecoveryPlan` decides from it.
struct RecoveryObservation: Sendable, Equatable {
    /// A state file: absent, present but unreadable, or read.
    enum File<Value: Sendable & Equatable>: Sendable, Equatable {
        case absent
        case unreadable
        case read(Value)

        var value: Value? {
            if case .read(let value) = self { return value }
            return nil
        }
    }

    /// What the pending record (`record.json`) says of itself.
    struct PendingRecord: Sendable, Equatable {
        var releaseID: String
        var startedOn: Date
        var outcome: ReleaseOutcome
    }

    /// The runtime, when the pipeline deploys.
    struct Engine: Sendable, Equatable {
        var runtime: String
        /// Whether it can say what runs (its engine or swarm manager answers).
        var answers: Bool
        /// The instance of each colour that runs.
        var instances: [String: ColorInstance]

        func runs(_ color: String) -> Bool { instances[color] != nil }
    }

    enum TrafficSwitch: Sendable, Equatable {
        /// nginx (or workers a killed master left) serves.
        case serving
        case stopped
    }

    var runPath: String
    var recordPath: String
    var run: File<RunState>
    var record: File<PendingRecord>
    /// `current.json` (not read when the engine does not answer: nothing is decided then).
    var live: LiveRelease?
    var engine: Engine?
    /// nil when the pipeline has no traffic section.
    var trafficSwitch: TrafficSwitch?
    /// The pipeline's colours.
    var colors: [String]
    /// The run's processes still there (tracked in `run.json`, or found by their marker).
    var processes: [TrackedProcess]
    /// The history already holds the run's finished record.
    var alreadyRecorded: Bool

    var isPending: Bool { run != .absent || record != .absent }
    var runState: RunState? { run.value }
    var releaseID: String? { runState?.releaseID ?? record.value?.releaseID }

    /// The outcome of a record its controller (or an earlier recover) ended but could not append.
    var endedOutcome: ReleaseOutcome? {
        guard let outcome = record.value?.outcome, outcome != .running else { return nil }
        return outcome
    }
}
