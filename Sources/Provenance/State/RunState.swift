public import Foundation
import StrictYAML

/// The release that serves: `current.json`. Written once, at the moment a release is promoted
/// (the commit point of a rollout), and by `rollback`.
public struct LiveRelease: Sendable, Codable, Equatable {
    public var color: String
    public var releaseID: String
    public var modelSHA256: String
    public var modelVersion: String

    public init(color: String, releaseID: String, modelSHA256: String, modelVersion: String) {
        self.color = color
        self.releaseID = releaseID
        self.modelSHA256 = modelSHA256
        self.modelVersion = modelVersion
    }

    enum CodingKeys: String, CodingKey {
        case color
        case releaseID = "release_id"
        case modelSHA256 = "model_sha256"
        case modelVersion = "model_version"
    }
}

/// Where a run is. Saved before every action, so that whoever finds the run interrupted knows
/// what may be half done.
public enum RunPhase: String, Sendable, Codable, CaseIterable {
    /// Running the pipeline's stages; nothing deployed yet.
    case stages
    /// Starting the new colour and checking its health; no traffic on it yet.
    case deploying
    /// Traffic is split; a step is held and measured.
    case shifting
    /// A gate failed under `rollback.automatic: false`: traffic is held until `abort` or `promote`.
    case holding
    /// Putting traffic back on the live colour, then stopping the new one.
    case rollingBack = "rolling_back"
    /// Promoted (`current.json` names the release): post-rollout hooks, then the old colour drains.
    case draining
}

/// A child process the run started (a stage, a hook) and must not outlive it: recovery stops
/// its process group when it is still there.
public struct TrackedProcess: Sendable, Codable, Equatable {
    public var pid: Int32
    /// The kernel's start time of the process (`/proc/PID/stat`), so that a recycled pid is never
    /// mistaken for it.
    public var startTime: UInt64
    /// What it is, e.g. `stage train`, `during-step hook load.sh`.
    public var role: String

    public init(pid: Int32, startTime: UInt64, role: String) {
        self.pid = pid
        self.startTime = startTime
        self.role = role
    }

    enum CodingKeys: String, CodingKey {
        case pid, role
        case startTime = "start_time"
    }
}

/// The recovery state of the run in progress: `run.json`. The provenance record being built is
/// kept apart (`record.json`), so that either file can be lost without losing the other.
public struct RunState: Sendable, Codable, Equatable {
    public var releaseID: String
    public var pid: Int32
    public var startedOn: Date
    public var phase: RunPhase
    /// The stage running, during `.stages`.
    public var stage: String?
    /// The release that was live when the rollout began; what an interrupted rollout returns to.
    public var live: LiveRelease?
    /// The colour receiving the release, once the rollout began.
    public var target: String?
    /// Percent of traffic on the target.
    public var weight: Int
    /// Whether the old colour is stopped once the release is promoted (`traffic.stopOld`).
    public var stopOld: Bool
    public var children: [TrackedProcess]
    /// The latest measurement of each gate in the step in force (for `status --watch`).
    public var gates: [GateMeasurement]? = nil
    /// The webhook gate the rollout waits for ("waiting for confirm-promotion approve-100").
    public var waiting: String? = nil

    public init(
        releaseID: String, pid: Int32, startedOn: Date, phase: RunPhase, stage: String? = nil, live: LiveRelease? = nil,
        target: String? = nil,
        weight: Int = 0, stopOld: Bool = false, children: [TrackedProcess] = []
    ) {
        self.releaseID = releaseID
        self.pid = pid
        self.startedOn = startedOn
        self.phase = phase
        self.stage = stage
        self.live = live
        self.target = target
        self.weight = weight
        self.stopOld = stopOld
        self.children = children
    }

    enum CodingKeys: String, CodingKey {
        case pid, phase, stage, live, target, weight, children, gates, waiting
        case releaseID = "release_id"
        case startedOn = "started_on"
        case stopOld = "stop_old"
    }
}

/// A request to a rollout in progress, from another process (`orchestrate abort|promote`).
public enum ControlRequest: String, Sendable, Codable {
    case abort
    /// Answers the webhook gate the rollout waits for, by hand.
    case approve
    case promote
    case promoteFull = "promote-full"
}
