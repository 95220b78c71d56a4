import Foundation
import StrictYAML
import Traffic
import OrchestratorSupport
import PipelineSchema

/// Converges a run that a killed controller left behind (its `run.json`), and records it.
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
        FileManager.default.fileExists(atPath: store.runPath) || FileManager.default.fileExists(atPath: store.recordPath)
    }

    /// What `converge` would do, for the plan; nil when nothing is pending.
    func describe() throws -> RunPlan.PlannedRecovery? {
        guard isPending else { return nil }
        let run = try? store.run()
        let live = try store.live()
        var actions: [String] = []
        if run == nil && FileManager.default.fileExists(atPath: store.runPath) {
            actions.append("move the unreadable \(store.runPath) aside")
        }
        for child in ProcessTable.processes(ofRunIn: store.folder, tracked: run?.children ?? []) {
            actions.append("stop the \(child.role) (pid \(child.pid)) with its process group")
        }
        if let run, run.phase == .stages {
            actions.append("nothing was deployed: record release \(run.releaseID) as interrupted")
        } else if let run, live?.releaseID == run.releaseID, let target = run.target {
            actions.append("its promotion was saved: all traffic on \(target)")
            if run.stopOld, let old = run.live { actions.append("stop \(old.color) (traffic.stopOld)") }
        } else {
            if let live {
                actions.append("all traffic back on \(live.color) (release \(live.releaseID))")
            } else if nginx != nil {
                actions.append("nothing was live before: stop nginx")
            }
            for color in pipeline.deploy?.colors ?? [] where color != live?.color {
                actions.append("stop \(color) if it runs")
            }
        }
        actions.append("append the interrupted release to the history")
        return RunPlan.PlannedRecovery(releaseID: run?.releaseID, phase: run?.phase, actions: actions)
    }

    /// Converges and records the interrupted run; returns the record appended, nil when nothing
    /// was pending.
    ///
    /// - Throws: `OrchestratorError` `.unreadableState` when `current.json` cannot be read.
    func converge() async throws -> ReleaseRecord? {
        guard isPending else { return nil }
        if let runtime, !(await runtime.canTellWhatRuns()) {
            // Nothing can be converged blind: the colours would look stopped and be recorded so.
            throw OrchestratorError(
                .unreachable,
                "the interrupted run cannot be recovered now: the \(runtime.name) runtime's engine does not answer, so what runs cannot be known; nothing was changed and the run is kept for recovery",
                hint: "once the engine answers: orchestrate recover (nginx keeps the last split meanwhile)")
        }
        let live = try store.live()
        var notes: [String] = []
        var run: RunState?
        do {
            run = try store.run()
        } catch {
            let moved = try store.moveAside(store.runPath)
            notes.append("run.json was unreadable (kept as \(moved)): converged from current.json")
        }
        var pending: ReleaseRecord?
        do {
            pending = try store.pendingRecord()
        } catch {
            let moved = try store.moveAside(store.recordPath)
            notes.append("record.json was unreadable (kept as \(moved)): the record was rebuilt from run.json")
        }
        let releaseID = run?.releaseID ?? pending?.releaseID ?? "unknown-" + RunIdentity.releaseID()
        // Its record, if the run wrote it, is among the last: read back to a minute before it started.
        let started = (run?.startedOn ?? pending?.startedOn)?.addingTimeInterval(-60)
        if let started, try history.lastRecord(startedOnOrAfter: started, where: { $0.releaseID == releaseID && $0.outcome != .running }) != nil {
            // The run had recorded itself and was stopped while cleaning up: nothing to converge.
            try store.finishRun()
            return nil
        }
        let phase = run?.phase
        // A record already finished was ended by its controller (or an earlier recover) that could
        // not append it (a full disk): its account stands, and what is done now is added to it.
        let finished = pending.map { $0.outcome != .running } ?? false
        if finished {
            progress("recovery: release \(releaseID) ended \(pending?.outcome.rawValue ?? "") but was not recorded (its controller could not write the history)")
        } else {
            progress("recovery: release \(releaseID) was interrupted\(phase.map { " while \($0.rawValue)" } ?? "") (its controller, pid \(run.map { String($0.pid) } ?? "?"), is gone)")
        }
        var events: [RolloutEvent] = [
            RolloutEvent(
                at: Date(), kind: .recover,
                detail: finished
                    ? "recorded by recovery: it had ended (its controller, or an earlier recover, could not append it to the history)"
                    : "controller pid \(run.map { String($0.pid) } ?? "?") interrupted while \(phase?.rawValue ?? "unknown") at \(run?.weight ?? 0)%")
        ]
        for note in notes { events.append(RolloutEvent(at: Date(), kind: .recover, detail: note)) }
        var done: [String] = []
        func event(_ kind: RolloutEvent.Kind, _ detail: String) {
            events.append(RolloutEvent(at: Date(), kind: kind, detail: detail))
            done.append(detail)
            progress("recovery: \(detail)")
        }
        for child in ProcessTable.processes(ofRunIn: store.folder, tracked: run?.children ?? []) where await ProcessTable.stop(child) {
            event(.stop, "stopped the \(child.role) (pid \(child.pid)) and its process group")
        }
        /// Puts all traffic on `instance`; converging waits for no disk write.
        func putAllTraffic(on instance: ColorInstance, via nginx: NginxController, _ detail: String) async throws {
            let applied = try await nginx.apply(TrafficSplit(mode: mode, backends: [instance.backend(weight: 100)]), stateFile: .bestEffort)
            event(.shift, detail)
            if let note = applied.replacementNote { event(.recover, note) }
            if let unsaved = applied.unsaved {
                event(.shift, RolloutExecutor.stateFileBehind(unsaved))
            }
        }

        let outcome: ReleaseOutcome
        var deployment: ReleaseRecord.DeploymentRecord?
        if phase == .stages {
            outcome = .interrupted
        } else if let run, let live, live.releaseID == run.releaseID {
            // Promoted before the controller died: finish the promotion.
            if let runtime, let instance = await runtime.instance(of: live.color), let nginx {
                try await putAllTraffic(on: instance, via: nginx, "\(live.color) 100%: its promotion had been saved")
            }
            if let runtime, run.stopOld, let old = run.live, old.color != live.color {
                try await runtime.stop(color: old.color)
                event(.stop, "\(old.color) stopped (traffic.stopOld)")
            }
            outcome = .succeeded
            deployment = .init(runtime: runtime?.name ?? "", color: live.color, modelSHA256: live.modelSHA256)
        } else {
            if let runtime, let nginx {
                if let live {
                    if let instance = await runtime.instance(of: live.color) {
                        try await putAllTraffic(on: instance, via: nginx, "\(live.color) 100% (traffic restored to the live release \(live.releaseID))")
                    } else {
                        event(.shift, "the live colour \(live.color) is not running: traffic left as it was; run orchestrate status")
                    }
                } else if await nginx.isServing() {
                    await nginx.stop()
                    event(.shift, "nothing was live before: nginx stopped")
                }
            }
            if let runtime {
                var keepRunning = false
                if let live { keepRunning = await runtime.instance(of: live.color) == nil }
                for color in pipeline.deploy?.colors ?? [] where color != live?.color {
                    // A colour that carries the traffic because the live one is gone keeps running.
                    if keepRunning { continue }
                    // Stopped even when nothing of it serves: a colour whose instances were still
                    // starting when the controller died (a swarm service, a container) is no
                    // instance yet, but would run on, unrouted.
                    let serving = await runtime.instance(of: color) != nil
                    try await runtime.stop(color: color)
                    if serving { event(.stop, "\(color) stopped") }
                }
            }
            outcome = .rolledBack
        }
        if let runtime, let deploy = pipeline.deploy {
            try? await RolloutExecutor.writeTargets(runtime: runtime, colors: deploy.colors, store: store, service: deploy.service)
        }
        var record = pending ?? Self.rebuiltRecord(releaseID: releaseID, pipeline: pipeline, run: run)
        if record.rollout == nil, let run, let target = run.target {
            record.rollout = .init(live: run.live?.color, target: target, mode: pipeline.traffic?.mode.rawValue ?? "none", steps: [], events: [])
        }
        record.rollout?.events += events
        if !finished {
            record.outcome = outcome
            record.deployment = deployment
            let converged = outcome == .succeeded ? "the promoted release" : outcome == .rolledBack ? "the live release" : "nothing deployed"
            record.failure = "the controller was interrupted while \(phase?.rawValue ?? "in an unknown phase"); the next run converged to \(converged)"
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
    static func unrecorded(_ record: ReleaseRecord, done: [String], because error: OrchestratorError, pipeline: Pipeline, store: StateStore)
        -> OrchestratorError
    {
        let actions = done.isEmpty ? "" : ": " + done.joined(separator: "; ")
        return OrchestratorError(
            .unrecorded,
            "release \(record.releaseID) ended \(record.outcome.rawValue)\(actions). It is NOT recorded in the history: \(error.message.prefix { $0 != "\n" }). "
                + "Its state stays in \(store.folder) for recovery.",
            hint: "free space on the disk holding \(pipeline.history), then run `orchestrate recover \(pipeline.file)`: it appends the record "
                + "(the next `orchestrate run` does it first too); traffic and colours need nothing more")
    }

    /// What the end of a rollout did to traffic and colours, from its record: the traffic and
    /// stop events since it began to roll back, was promoted, or was stopped.
    static func lastActions(of record: ReleaseRecord) -> [String] {
        let events = record.rollout?.events ?? []
        let start = events.lastIndex { [.rollback, .interrupt, .abort, .promote].contains($0.kind) } ?? events.startIndex
        return events[start...].filter { $0.kind == .shift || $0.kind == .stop }.map(\.detail)
    }

    /// A record for an interrupted run whose own record was lost.
    static func rebuiltRecord(releaseID: String, pipeline: Pipeline, run: RunState?) -> ReleaseRecord {
        ReleaseRecord(
            releaseID: releaseID, startedOn: run?.startedOn ?? Date(), finishedOn: nil,
            invocation: .init(trigger: "unknown", user: RunIdentity.user, host: RunIdentity.host, command: []),
            builder: .init(id: "orchestrate", version: RunIdentity.version), source: .init(gitCommit: nil, gitDirty: nil),
            pipeline: .init(name: pipeline.name, path: pipeline.file, sha256: pipeline.sha256), overrides: [], dryRun: false, stages: [], model: nil,
            outcome: .running)
    }
}
