import DeploymentRuntimes
import Foundation
import OrchestratorSupport
import PipelineSchema
import Provenance
import StrictYAML
import Traffic

/// Converges a run that a killed controller left behind (its `run.json`), and records it: it
/// observes (reading only), `RecoveryPlan` decides, and `converge` carries out that plan, the one
/// `recover --dry-run` and `run --dry-run` print.
///
/// The commit point of a rollout is `current.json`: when it names the interrupted release, the
/// release had been promoted and recovery finishes it (traffic on it, the old colour stopped if
/// `stopOld`); otherwise traffic goes back to the live colour and every other colour stops. The
/// run's children (a stage, during-step hooks) are stopped with their process groups. An
/// unreadable `run.json` or `record.json` is moved aside, never lost, and recovery still
/// converges from `current.json`; an unreadable `current.json`, or a runtime whose engine does
/// not answer, stops it (nothing is guessed).
struct Recovery {
    var pipeline: Pipeline
    var store: StateStore
    var runtime: (any DeploymentRuntime)?
    var nginx: NginxController?
    var history: ReleaseHistory
    var progress: @Sendable (String) -> Void

    /// Whether a run was interrupted: `run.json` (or an orphaned `record.json`) exists.
    var isPending: Bool {
        FileManager.default.fileExists(atPath: store.runPath)
            || FileManager.default.fileExists(atPath: store.recordPath)
    }

    /// What recovery sees of the interrupted run, by reading only: its files, what runs, what
    /// nginx does, the run's processes, whether the history already holds it. nil when nothing
    /// is pending. The pending record comes whole with it (it is appended with what is done).
    ///
    /// - Throws: `OrchestratorError` `.unreadableState` when `current.json` cannot be read.
    func observe() async throws -> (observed: RecoveryObservation, pending: ReleaseRecord?)? {
        guard isPending else { return nil }
        let exists = { (path: String) in FileManager.default.fileExists(atPath: path) }
        var run: RecoveryObservation.File<RunState> = .absent
        if exists(store.runPath) { run = (try? store.run()).map { .read($0) } ?? .unreadable }
        var pending: ReleaseRecord?
        var record: RecoveryObservation.File<RecoveryObservation.PendingRecord> = .absent
        if exists(store.recordPath) {
            pending = try? store.pendingRecord()
            record =
                pending.map { .read(.init(releaseID: $0.releaseID, startedOn: $0.startedOn, outcome: $0.outcome)) }
                ?? .unreadable
        }
        var engine: RecoveryObservation.Engine?
        var live: LiveRelease?
        if let runtime {
            var instances: [String: ColorInstance] = [:]
            let answers = await runtime.canTellWhatRuns()
            if answers {
                for color in pipeline.deploy?.colors ?? [] {
                    if let instance = await runtime.instance(of: color) { instances[color] = instance }
                }
            }
            engine = .init(runtime: runtime.name, answers: answers, instances: instances)
        }
        // Nothing is decided when the engine does not answer: `current.json` is not read then.
        if engine?.answers != false { live = try store.live() }
        var trafficSwitch: RecoveryObservation.TrafficSwitch?
        if let nginx { trafficSwitch = await nginx.isServing() ? .serving : .stopped }
        let runState = run.value
        let releaseID = runState?.releaseID ?? pending?.releaseID
        // Its record, if the run wrote it, is among the last: read back to a minute before it started.
        var alreadyRecorded = false
        if let releaseID, let started = (runState?.startedOn ?? pending?.startedOn)?.addingTimeInterval(-60) {
            alreadyRecorded =
                try history.lastRecord(
                    startedOnOrAfter: started, where: { $0.releaseID == releaseID && $0.outcome != .running }) != nil
        }
        let observed = RecoveryObservation(
            runPath: store.runPath, recordPath: store.recordPath, run: run, record: record, live: live, engine: engine,
            trafficSwitch: trafficSwitch,
            colors: pipeline.deploy?.colors ?? [],
            processes: ProcessTable.processes(ofRunIn: store.folder, tracked: runState?.children ?? []),
            alreadyRecorded: alreadyRecorded)
        return (observed, pending)
    }

    /// What `converge` would do now (the plan `run --dry-run` and `recover --dry-run` print);
    /// nil when nothing is pending.
    func plan() async throws -> RecoveryPlan? {
        try await observe().flatMap { RecoveryPlan($0.observed) }
    }

    /// Converges and records the interrupted run by carrying out its `RecoveryPlan`, the one
    /// `plan()` prints; returns the record appended, nil when nothing was pending (or the run had
    /// recorded itself).
    ///
    /// - Throws: `OrchestratorError` `.unreadableState` when `current.json` cannot be read,
    ///   `.unreachable` when the runtime's engine does not answer (nothing is changed then).
    func converge() async throws -> ReleaseRecord? {
        guard let observation = try await observe(), let plan = RecoveryPlan(observation.observed) else { return nil }
        let (observed, pending) = observation
        let began = Date()
        let run = observed.runState
        let phase = run?.phase
        let releaseID = plan.releaseID ?? "unknown-" + RunIdentity.releaseID()
        var notes: [String] = []
        var events: [RolloutEvent] = []
        var done: [String] = []
        func event(_ kind: RolloutEvent.Kind, _ detail: String) {
            events.append(RolloutEvent(at: Date(), kind: kind, detail: detail))
            done.append(detail)
            progress("recovery: \(detail)")
        }
        /// Puts all traffic on `color` as observed; converging waits for no disk write.
        func putAllTraffic(on color: String, _ detail: String) async throws {
            guard let nginx, let instance = observed.engine?.instances[color] else { return }
            let applied = try await nginx.apply(
                TrafficSplit(mode: mode, backends: [instance.backend(weight: 100)]), stateFile: .bestEffort)
            event(.shift, detail)
            if let note = applied.replacementNote { event(.recover, note) }
            if let unsaved = applied.unsaved { event(.shift, RolloutMachine.stateFileBehind(unsaved.message)) }
        }
        var announced = false
        func announce() {
            guard !announced else { return }
            announced = true
            if let ended = observed.endedOutcome {
                progress(
                    "recovery: release \(releaseID) ended \(ended.rawValue) but was not recorded (its controller could not write the history)"
                )
            } else {
                progress(
                    "recovery: release \(releaseID) was interrupted\(phase.map { " while \($0.rawValue)" } ?? "") (its controller, pid \(run.map { String($0.pid) } ?? "?"), is gone)"
                )
            }
        }
        var outcome: ReleaseOutcome = .rolledBack
        var ended = false
        for action in plan.actions {
            switch action {
            case .refuse(let runtime):
                // Nothing can be converged blind: the colours would look stopped and be recorded so.
                throw OrchestratorError(
                    .unreachable,
                    "the interrupted run cannot be recovered now: the \(runtime) runtime's engine does not answer, so what runs cannot be known; nothing was changed and the run is kept for recovery",
                    hint: "once the engine answers: orchestrate recover (nginx keeps the last split meanwhile)")
            case .moveAside(let path):
                let moved = try store.moveAside(path)
                notes.append(
                    path == store.runPath
                        ? "run.json was unreadable (kept as \(moved)): converged from current.json"
                        : "record.json was unreadable (kept as \(moved)): the record was rebuilt from run.json")
            case .discardState:
                // The run had recorded itself and was stopped while cleaning up: nothing to converge.
                try store.finishRun()
                return nil
            case .stopProcess(let child):
                announce()
                if await ProcessTable.stop(child) {
                    event(.stop, "stopped the \(child.role) (pid \(child.pid)) and its process group")
                }
            case .sendAllTraffic(let color, .promotionSaved):
                announce()
                try await putAllTraffic(on: color, "\(color) 100%: its promotion had been saved")
            case .sendAllTraffic(let color, .liveRelease(let release)):
                announce()
                try await putAllTraffic(on: color, "\(color) 100% (traffic restored to the live release \(release))")
            case .leaveTraffic(let color):
                announce()
                event(.shift, "the live colour \(color) is not running: traffic left as it was; run orchestrate status")
            case .stopTrafficSwitch:
                announce()
                await nginx?.stop()
                event(.shift, "nothing was live before: nginx stopped")
            case .stopColour(let color, let reason):
                announce()
                try await runtime?.stop(color: color)
                switch reason {
                case .stopOld: event(.stop, "\(color) stopped (traffic.stopOld)")
                case .notLive(running: true): event(.stop, "\(color) stopped")
                case .notLive(running: false): break
                }
            case .keepRunning:
                break
            case .writeTargets:
                if let runtime, let deploy = pipeline.deploy {
                    try? await ServingAdapter.writeTargets(
                        runtime: runtime, colors: deploy.colors, store: store, service: deploy.service)
                }
            case .record(let recorded, let hadEnded):
                announce()
                outcome = recorded
                ended = hadEnded
            }
        }
        // A webhook gate it waited for is named: nobody answers it any more.
        let waiting = run?.waiting.map { " (\($0))" } ?? ""
        var recoveryEvents: [RolloutEvent] = [
            RolloutEvent(
                at: began, kind: .recover,
                detail: ended
                    ? "recorded by recovery: it had ended (its controller, or an earlier recover, could not append it to the history)"
                    : "controller pid \(run.map { String($0.pid) } ?? "?") interrupted while \(phase?.rawValue ?? "unknown") at \(run?.weight ?? 0)%\(waiting)"
            )
        ]
        recoveryEvents += notes.map { RolloutEvent(at: began, kind: .recover, detail: $0) }
        var record = pending ?? Self.rebuiltRecord(releaseID: releaseID, pipeline: pipeline, run: run)
        if record.rollout == nil, let run, let target = run.target {
            record.rollout = .init(
                live: run.live?.color, target: target, mode: pipeline.traffic?.mode.rawValue ?? "none", steps: [],
                events: [])
        }
        record.rollout?.events += recoveryEvents + events
        if !ended {
            record.outcome = outcome
            if outcome == .succeeded, let live = observed.live {
                record.deployment = .init(
                    runtime: runtime?.name ?? "", color: live.color, modelSHA256: live.modelSHA256)
            } else {
                record.deployment = nil
            }
            record.failure =
                "the controller was interrupted while \(phase?.rawValue ?? "in an unknown phase")\(waiting); the next run converged to \(plan.converged)"
            record.finishedOn = Date()
            for index in record.stages.indices where record.stages[index].status == .running {
                record.stages[index].status = .interrupted
            }
        }
        let written: ReleaseRecord
        do {
            written = try history.append(record)
        } catch let error as OrchestratorError where error.code == .fileSystem || error.code == .diskFull {
            // Converged, not recorded: the finished record is kept (when the disk takes it) for
            // the next recover, which appends it with what it does then.
            try? store.savePendingRecord(record)
            throw Self.unrecorded(record, done: done, because: error, pipeline: pipeline, store: store)
        }
        if let repair = written.historyRepair { progress("recovery: \(repair.summary)") }
        try store.finishRun()
        progress("recovery: release \(releaseID) recorded as \(record.outcome.rawValue)")
        return written
    }

    var mode: TrafficSplit.Mode { pipeline.traffic?.mode == .weighted ? .weighted : .sticky }

    /// The error of a release whose traffic and colours were converged but whose record could not
    /// be appended: what was done, what was not recorded, what to run once there is space.
    static func unrecorded(
        _ record: ReleaseRecord, done: [String], because error: OrchestratorError, pipeline: Pipeline, store: StateStore
    )
        -> OrchestratorError
    {
        let actions = done.isEmpty ? "" : ": " + done.joined(separator: "; ")
        return OrchestratorError(
            .unrecorded,
            "release \(record.releaseID) ended \(record.outcome.rawValue)\(actions). It is NOT recorded in the history: \(error.message.prefix { $0 != "\n" }). "
                + "Its state stays in \(store.folder) for recovery.",
            hint:
                "free space on the disk holding \(pipeline.history), then run `orchestrate recover \(pipeline.file)`: it appends the record "
                + "(the next `orchestrate run` does it first too); traffic and colours need nothing more")
    }

    /// What the end of a rollout did to traffic and colours, from its record: the traffic and
    /// stop events since it began to roll back, was promoted, or was stopped.
    static func lastActions(of record: ReleaseRecord) -> [String] {
        let events = record.rollout?.events ?? []
        let start =
            events.lastIndex { [.rollback, .interrupt, .abort, .promote].contains($0.kind) } ?? events.startIndex
        return events[start...].filter { $0.kind == .shift || $0.kind == .stop }.map(\.detail)
    }

    /// A record for an interrupted run whose own record was lost.
    static func rebuiltRecord(releaseID: String, pipeline: Pipeline, run: RunState?) -> ReleaseRecord {
        ReleaseRecord(
            releaseID: releaseID, startedOn: run?.startedOn ?? Date(), finishedOn: nil,
            invocation: .init(trigger: "unknown", user: RunIdentity.user, host: RunIdentity.host, command: []),
            builder: .init(id: "orchestrate", version: RunIdentity.version),
            source: .init(gitCommit: nil, gitDirty: nil),
            pipeline: .init(name: pipeline.name, path: pipeline.file, sha256: pipeline.sha256), overrides: [],
            dryRun: false, stages: [], model: nil,
            outcome: .running)
    }
}
