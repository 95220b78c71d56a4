import Foundation
import StrictYAML

/// The run in progress, saved before every action: its `RunState` (what recovery needs) and its
/// provenance record, each in its own file of the state folder. Every change goes through this
/// actor, so that concurrent children (hooks of one step) never lose each other's updates.
actor RunJournal {
    let store: StateStore
    private(set) var state: RunState
    private(set) var record: ReleaseRecord
    /// Applied to the record saved to disk (recovery appends that one to the history).
    let redaction: Redaction
    /// Told about the run as it goes (webhooks, the Pushgateway); they never wait for a peer.
    let observers: RunObservers

    init(store: StateStore, state: RunState, record: ReleaseRecord, redaction: Redaction = .none, observers: RunObservers = .none) {
        self.store = store
        self.state = state
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
        try store.savePendingRecord(redaction.redacted(record))
        try store.saveRun(state)
    }

    func update(_ change: (inout RunState) -> Void) throws {
        let before = state
        change(&state)
        try store.saveRun(state)
        if (before.phase, before.target, before.weight) != (state.phase, state.target, state.weight) { announce(.progress(state)) }
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
        try store.savePendingRecord(redaction.redacted(record))
    }

    /// Adds an event to the rollout section of the record.
    func event(_ kind: RolloutEvent.Kind, _ detail: String) throws {
        try updateRecord { record in
            record.rollout?.events.append(RolloutEvent(at: Date(), kind: kind, detail: detail))
        }
    }

    func track(_ process: TrackedProcess) throws {
        try update { $0.children.append(process) }
    }

    func untrack(role: String) throws {
        try update { $0.children.removeAll { $0.role == role } }
    }
}
