import DeploymentRuntimes
import Foundation
import OrchestratorSupport
import Provenance

/// The run's journal and `current.json` as the rollout's effects use them. Every write is best
/// effort here: a failed save is kept by the journal (`saveFailure`), which the machine is told
/// of and acts on (no traffic moves forward after one; a rollback never waits for a disk write).
struct RunJournalPort: RolloutJournal {
    let journal: RunJournal
    let store: StateStore
    /// What `run.json` names when the rollout begins.
    let live: LiveRelease?
    let target: String
    let stopOld: Bool
    /// The runtime's name, for the record's deployment.
    let runtime: String

    func save(_ change: RolloutMachine.RunStateChange) async {
        let (live, target, stopOld) = (self.live, self.target, self.stopOld)
        try? await journal.update { state in
            if let phase = change.phase { state.phase = phase }
            if change.beginsRollout {
                state.live = live
                state.target = target
                state.stopOld = stopOld
            }
            if let weight = change.weight { state.weight = weight }
            if change.clearsGates { state.gates = nil }
            if let waiting = change.waiting { state.waiting = waiting }
            if change.clearsWaiting { state.waiting = nil }
        }
    }

    func record(_ kind: RolloutEvent.Kind, _ detail: String, at time: Date) async {
        try? await journal.event(kind, detail, at: time)
    }

    func recordRollout(live: String?, target: String, mode: String) async {
        try? await journal.updateRecord {
            $0.rollout = .init(live: live, target: target, mode: mode, steps: [], events: [])
        }
    }

    func recordShadow(_ comparison: ShadowComparison) async {
        try? await journal.updateRecord { $0.rollout?.shadow = comparison }
    }

    func recordStep(_ step: ReleaseRecord.RolloutRecord.Step) async {
        try? await journal.updateRecord { $0.rollout?.steps.append(step) }
    }

    func recordGateAnswer(_ answer: ReleaseRecord.RolloutRecord.GateAnswer) async {
        try? await journal.updateRecord { record in
            guard var rollout = record.rollout else { return }
            rollout.gateAnswers = (rollout.gateAnswers ?? []) + [answer]
            record.rollout = rollout
        }
    }

    func recordDeployment(color: String, modelSHA256: String) async {
        let runtime = self.runtime
        try? await journal.updateRecord {
            $0.deployment = .init(runtime: runtime, color: color, modelSHA256: modelSHA256)
        }
    }

    func clearDeployment() async {
        try? await journal.updateRecord { $0.deployment = nil }
    }

    func saveMeasurement(_ measurement: GateMeasurement) async {
        try? await journal.measured(measurement)
    }

    func saveFailure() async -> String? {
        await journal.saveFailure?.message
    }

    func commit(_ live: LiveRelease) async throws {
        try store.setLive(live)
    }
}

/// The run's observers (webhooks, the Pushgateway, through the journal) and its progress for people.
struct RunNotifierPort: RolloutNotifier {
    let journal: RunJournal
    let report: @Sendable (RolloutProgress) -> Void

    func announce(_ announcement: RolloutMachine.Announcement) async {
        switch announcement {
        case .stepPassed(let step, let steps, let weight, let measurements, let note):
            await journal.announce(
                .stepPassed(step: step, steps: steps, weight: weight, measurements: measurements, note: note))
        case .gateFailed(let weight, let failure, let measurements):
            await journal.announce(.gateFailed(weight: weight, failure: failure, measurements: measurements))
        case .rolledBack(let reason, let interrupted):
            await journal.announce(.rolledBack(reason: reason, interrupted: interrupted))
        case .promoted(let color, let modelVersion):
            await journal.announce(.promoted(color: color, modelVersion: modelVersion))
        case .gateWaiting(let gate, let point, let step, let weight):
            await journal.announce(.gateWaiting(gate: gate, point: point, step: step, weight: weight))
        case .gateAnswered(let gate, let point, let step, let answer, let by):
            await journal.announce(.gateAnswered(gate: gate, point: point, step: step, answer: answer, by: by))
        }
    }

    func progress(_ progress: RolloutProgress) {
        report(progress)
    }
}

/// The pipeline's hooks, each a tracked child (stopped with its process group when the run ends
/// or is recovered).
struct HookPort: HookRunner {
    let journal: RunJournal
    let workingDirectory: String
    let logsFolder: String

    func run(_ hook: RolloutMachine.Hook, _ argv: [String]) async -> Bool {
        let (label, number): (String, Int) =
            switch hook {
            case .preRollout: ("pre-rollout", 0)
            case .duringStep(_, let number): ("during-step", number)
            case .postRollout: ("post-rollout", 0)
            case .onRollback: ("on-rollback", 0)
            }
        let name = argv.first.map { URL(fileURLWithPath: $0).lastPathComponent } ?? "hook"
        let role = "\(label) hook \(number) \(name)"
        let journal = self.journal
        do {
            let outcome = try await CommandRunner.run(
                argv, environment: journal.childEnvironment(role: role), workingDirectory: workingDirectory,
                logPath: "\(logsFolder)/hooks/\(label)-\(name).log",
                timeout: nil, grace: .seconds(2),
                onStart: { pid in try? await journal.track(ProcessTable.track(pid, role: role)) })
            try? await journal.untrack(role: role)
            return outcome.exitStatus == 0
        } catch {
            try? await journal.untrack(role: role)
            return Task.isCancelled
        }
    }
}

/// `orchestrate abort|promote` (the state folder's request file) and the run's interruption.
struct RunControlPort: RolloutControl {
    let store: StateStore
    let interruption: Interruption

    func takeRequest() -> ControlRequest? { store.takeControl() }
    func takeAttributedRequest() -> (request: ControlRequest, by: String?)? { store.takeAttributedControl() }
    var signal: Int32? { interruption.signal }
    func waitForSignal() async { await interruption.wait() }
}

/// The system's clock.
struct SystemClock: RolloutClock {
    func now() -> Date { Date() }
    func sleep(for duration: Duration) async throws { try await Task.sleep(for: duration) }
}
