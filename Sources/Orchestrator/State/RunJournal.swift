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

    init(store: StateStore, state: RunState, record: ReleaseRecord, redaction: Redaction = .none) {
        self.store = store
        self.state = state
        self.record = record
        self.redaction = redaction
    }

    /// Saves both files as they are now.
    func begin() throws {
        try store.savePendingRecord(redaction.redacted(record))
        try store.saveRun(state)
    }

    func update(_ change: (inout RunState) -> Void) throws {
        change(&state)
        try store.saveRun(state)
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
