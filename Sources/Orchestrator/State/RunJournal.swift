import DeploymentRuntimes
import Foundation
import OrchestratorSupport
import Provenance
import StrictYAML

/// The run in progress, saved before every action: its `RunState` (what recovery needs) and its
/// provenance record, each in its own file of the state folder. Every change goes through this
/// actor, so that concurrent children (hooks of one step) never lose each other's updates.
///
/// A change is made in memory first, then saved: when a save fails (a full disk), the record the
/// controller appends to the history still holds everything, and the failure is kept
/// (`saveFailure`) so that the rollout stops moving traffic forward and rolls back.
actor RunJournal {
    let store: StateStore
    let releaseID: String
    private(set) var state: RunState
    private(set) var record: ReleaseRecord
    /// The first save that failed, kept from then on: the files on disk are behind the run, so
    /// a controller killed now could not be converged from them.
    private(set) var saveFailure: OrchestratorError?
    /// Applied to the record saved to disk (recovery appends that one to the history).
    let redaction: Redaction
    /// Told about the run as it goes (webhooks, the Pushgateway); they never wait for a peer.
    let observers: RunObservers

    init(
        store: StateStore, state: RunState, record: ReleaseRecord, redaction: Redaction = .none,
        observers: RunObservers = .none
    ) {
        self.store = store
        self.state = state
        self.releaseID = state.releaseID
        self.record = record
        self.redaction = redaction
        self.observers = observers
    }

    /// Tells the observers about the run.
    func announce(_ kind: RunEvent.Kind) {
        observers.observe(RunEvent(releaseID: state.releaseID, at: Date(), kind: kind))
    }

    /// Saves both files as they are now.
    func begin() throws {
        try saving { try store.savePendingRecord(redaction.redacted(record)) }
        try saving { try store.saveRun(state) }
    }

    func update(_ change: (inout RunState) -> Void) throws {
        let before = state
        change(&state)
        if (before.phase, before.target, before.weight) != (state.phase, state.target, state.weight) {
            announce(.progress(state))
        }
        try saving { try store.saveRun(state) }
    }

    /// Throws the first save that failed, if any: called before traffic moves forward.
    func requireSaved() throws {
        if let saveFailure { throw saveFailure }
    }

    private func saving(_ save: () throws -> Void) throws {
        do {
            try save()
        } catch {
            let failure =
                error as? OrchestratorError
                ?? OrchestratorError(.fileSystem, "cannot save the controller's state: \(error)", cause: error)
            if saveFailure == nil { saveFailure = failure }
            throw failure
        }
    }

    /// The latest measurement of a gate in the step in force, kept in `run.json` for
    /// `orchestrate status --watch`.
    func measured(_ measurement: GateMeasurement) throws {
        var gates = state.gates ?? []
        gates.removeAll { $0.gate == measurement.gate }
        gates.append(measurement)
        try update { $0.gates = gates }
        announce(.measured(measurement))
    }

    func updateRecord(_ change: (inout ReleaseRecord) -> Void) throws {
        change(&record)
        try saving { try store.savePendingRecord(redaction.redacted(record)) }
    }

    /// Adds an event to the rollout section of the record.
    ///
    /// - Parameter at: when it happened, when that was before it is journalled (traffic put back
    ///   first, recorded after).
    func event(_ kind: RolloutEvent.Kind, _ detail: String, at time: Date = Date()) throws {
        try updateRecord { record in
            record.rollout?.events.append(RolloutEvent(at: time, kind: kind, detail: detail))
        }
    }

    /// The environment of a child the run starts (`role`: `stage train`, `during-step hook 0
    /// load.sh`): marked so that recovery finds it even without `run.json` (`ProcessTable`).
    nonisolated func childEnvironment(role: String) -> [String: String] {
        ProcessTable.marker(stateFolder: store.folder, releaseID: releaseID, role: role)
    }

    func track(_ process: TrackedProcess) throws {
        try update { $0.children.append(process) }
    }

    func untrack(role: String) throws {
        try update { $0.children.removeAll { $0.role == role } }
    }
}
