/// An error from the orchestrator: what went wrong, where, what to do, and the exit code it maps to.
public struct OrchestratorError: Error, CustomStringConvertible, Sendable {
    /// The kind of failure; each maps to one documented exit code.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Sendable {
            case stageFailed = "stage-failed"
            case gateFailed = "gate-failed"
            case invalidInput = "invalid-input"
            case locked
            case unreachable
            case historyCorrupt = "history-corrupt"
            case fileSystem = "file-system"
            case unreadableState = "unreadable-state"
            case inconsistentState = "inconsistent-state"
            case unrecorded
            case diskFull = "disk-full"
            case policyRefused = "policy-refused"
        }

        private let value: Value

        private init(_ value: Value) {
            self.value = value
        }

        /// A stage failed (non-zero exit, timeout, an error in a built-in). Exit code 1.
        public static let stageFailed = Code(.stageFailed)
        /// A gate's threshold was not met. Exit code 1.
        public static let gateFailed = Code(.gateFailed)
        /// A malformed pipeline, a bad override, bad arguments. Exit code 2.
        public static let invalidInput = Code(.invalidInput)
        /// Another run holds the pipeline's lock. Exit code 3.
        public static let locked = Code(.locked)
        /// A required service is unreachable before any change was made. Exit code 4.
        public static let unreachable = Code(.unreachable)
        /// The release history failed verification. Exit code 1.
        public static let historyCorrupt = Code(.historyCorrupt)
        /// A file could not be read or written. Exit code 1.
        public static let fileSystem = Code(.fileSystem)
        /// A state file of the controller exists but cannot be read. Exit code 2: the run stops
        /// before any change rather than guess what is live.
        public static let unreadableState = Code(.unreadableState)
        /// The recorded live release is not what nginx and the runtime serve. Exit code 2.
        public static let inconsistentState = Code(.inconsistentState)
        /// Traffic and the colours were converged (all traffic on the approved colour, the others
        /// stopped) but the release could not be recorded (a full disk). Exit code 5: once there
        /// is space, `orchestrate recover` records it.
        public static let unrecorded = Code(.unrecorded)
        /// No space left on the device (ENOSPC, or a quota: EDQUOT) for a file the controller
        /// writes; nothing was half-written. Exit code 5.
        public static let diskFull = Code(.diskFull)
        /// The release policy refused the action before any change: outside the release windows,
        /// a pinned release, a model marked bad. Exit code 7.
        public static let policyRefused = Code(.policyRefused)

        public var description: String { value.rawValue }

        /// The process exit code for this kind of failure.
        public var exitCode: Int32 {
            switch value {
            case .stageFailed, .gateFailed, .historyCorrupt, .fileSystem: 1
            case .invalidInput, .unreadableState, .inconsistentState: 2
            case .locked: 3
            case .unreachable: 4
            case .unrecorded: 5
            case .diskFull: 5
            case .policyRefused: 7
            }
        }
    }

    public var code: Code
    public var message: String
    public var hint: String?
    /// The error this one reports (a transport failure, a file system error, an engine's answer),
    /// kept for programs and logs; the message already says what it means.
    public var cause: (any Error)?

    public init(_ code: Code, _ message: String, hint: String? = nil, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.hint = hint
        self.cause = cause
    }

    public var description: String {
        hint.map { "\(message)\n  hint: \($0)" } ?? message
    }
}

/// The documented exit codes of `orchestrate`.
public enum ExitStatus {
    public static let success: Int32 = 0
    /// A stage or gate failed, or the release was rolled back.
    public static let failed: Int32 = 1
    /// Invalid input or usage.
    public static let invalidInput: Int32 = 2
    /// Another run holds the lock.
    public static let locked: Int32 = 3
    /// A required service is unreachable before any change was made.
    public static let unreachable: Int32 = 4
    /// No space left on the device for a file the controller writes (nothing half-written), or
    /// traffic converged but the release could not be recorded for lack of space.
    public static let diskFull: Int32 = 5
    /// The release was rolled back as an invalid experiment: the split did not send each colour
    /// its intended share (sample ratio mismatch), so no verdict on the model could be trusted.
    public static let invalidExperiment: Int32 = 6
    /// The release policy refused the run before any change (outside the release windows, a
    /// pinned release live, a model marked bad), or a rollback to a model marked bad.
    public static let policyRefused: Int32 = 7

    /// The exit code of a run stopped by a signal (after it rolled back): 128 + the signal, as
    /// shells report it (130 for SIGINT, 143 for SIGTERM).
    public static func interrupted(by signal: Int32) -> Int32 { 128 + signal }
}
