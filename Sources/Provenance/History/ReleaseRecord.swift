public import Foundation
public import OrchestratorSupport
public import PipelineSchema
public import RecEngineContract
import StrictYAML

/// One line of the release history: what a run did, built from what, approved by which numbers.
///
/// Maps onto SLSA v1 provenance: `pipeline` and `overrides` are the build definition's external
/// parameters, stage `inputs` its resolved dependencies, stage `outputs` and `model` the subjects,
/// `builder` the builder id, and `releaseID`, `startedOn`, `finishedOn` the run metadata.
public struct ReleaseRecord: Sendable, Codable, Equatable {

    public init(
        releaseID: String, previousSHA256: String? = nil, startedOn: Date, finishedOn: Date?, invocation: Invocation,
        builder: Builder, source: Source, pipeline: PipelineReference, overrides: [String], dryRun: Bool,
        stages: [StageRecord], model: ModelReference?, deployment: DeploymentRecord? = nil, outcome: ReleaseOutcome,
        failure: String? = nil
    ) {
        self.releaseID = releaseID
        self.previousSHA256 = previousSHA256
        self.startedOn = startedOn
        self.finishedOn = finishedOn
        self.invocation = invocation
        self.builder = builder
        self.source = source
        self.pipeline = pipeline
        self.overrides = overrides
        self.dryRun = dryRun
        self.stages = stages
        self.model = model
        self.deployment = deployment
        self.outcome = outcome
        self.failure = failure
    }
    public static let schema = "orchestrate.release/v1"

    public struct Invocation: Sendable, Codable, Equatable {

        public init(trigger: String, user: String, host: String, command: [String]) {
            self.trigger = trigger
            self.user = user
            self.host = host
            self.command = command
        }
        /// manual, ci or schedule.
        public var trigger: String
        public var user: String
        public var host: String
        public var command: [String]
    }

    public struct Builder: Sendable, Codable, Equatable {

        public init(id: String, version: String) {
            self.id = id
            self.version = version
        }
        public var id: String
        public var version: String
    }

    public struct Source: Sendable, Codable, Equatable {

        public init(gitCommit: String?, gitDirty: Bool?) {
            self.gitCommit = gitCommit
            self.gitDirty = gitDirty
        }
        public var gitCommit: String?
        public var gitDirty: Bool?

        enum CodingKeys: String, CodingKey {
            case gitCommit = "git_commit"
            case gitDirty = "git_dirty"
        }
    }

    public struct PipelineReference: Sendable, Codable, Equatable {

        public init(name: String, path: String, sha256: String) {
            self.name = name
            self.path = path
            self.sha256 = sha256
        }
        public var name: String
        public var path: String
        public var sha256: String
    }

    public struct GateVerdict: Sendable, Codable, Equatable {
        public var metric: String
        public var condition: String
        public var value: Double?
        public var passed: Bool

        package init(metric: String, condition: String, value: Double? = nil, passed: Bool) {
            self.metric = metric
            self.condition = condition
            self.value = value
            self.passed = passed
        }
    }

    public struct StageRecord: Sendable, Codable, Equatable {
        public var status: StageStatus
        public var name: String
        public var uses: String?
        public var argv: [String]?
        public var parameters: [String: ParameterValue]?
        public var fingerprint: String?
        public var attempts: Int
        public var exitStatus: Int32?
        public var durationSeconds: Double
        public var inputs: [ArtifactDigest]
        public var outputs: [ArtifactDigest]
        public var metrics: [String: Double]
        public var gates: [GateVerdict]
        public var log: String?
        public var error: String?
        public var reason: String?
        /// What a movie log ingest read: counts, rejects by reason, the position reached.
        public var ingest: IngestReport? = nil
        /// How an evaluate stage measured its ranking metrics (with the split stage's parameters,
        /// the whole protocol).
        public var rankingProtocol: RankingProtocol? = nil
        /// What a tune stage chose and how it scored the candidates.
        public var tuning: Tuning? = nil

        enum CodingKeys: String, CodingKey {
            case status, name, uses, argv, parameters, fingerprint, attempts, inputs, outputs, metrics, gates, log,
                error, reason, ingest, tuning
            case rankingProtocol = "ranking_protocol"
            case exitStatus = "exit_status"
            case durationSeconds = "duration_seconds"
        }

        package init(
            status: StageStatus, name: String, uses: String? = nil, argv: [String]? = nil,
            parameters: [String: ParameterValue]? = nil, fingerprint: String? = nil, attempts: Int,
            exitStatus: Int32? = nil, durationSeconds: Double, inputs: [ArtifactDigest], outputs: [ArtifactDigest],
            metrics: [String: Double], gates: [GateVerdict], log: String? = nil, error: String? = nil,
            reason: String? = nil, ingest: IngestReport? = nil, rankingProtocol: RankingProtocol? = nil,
            tuning: Tuning? = nil
        ) {
            self.status = status
            self.name = name
            self.uses = uses
            self.argv = argv
            self.parameters = parameters
            self.fingerprint = fingerprint
            self.attempts = attempts
            self.exitStatus = exitStatus
            self.durationSeconds = durationSeconds
            self.inputs = inputs
            self.outputs = outputs
            self.metrics = metrics
            self.gates = gates
            self.log = log
            self.error = error
            self.reason = reason
            self.ingest = ingest
            self.rankingProtocol = rankingProtocol
            self.tuning = tuning
        }
    }

    /// A tune stage's choice: the parameters, their score, the space searched and the protocol
    /// that scored it (the choice is also the stage's output file, whose digest the record keeps;
    /// every trial is in the stage's JSON report beside its log).
    public struct Tuning: Sendable, Codable, Equatable {
        public var algorithm: String
        public var chosen: [String: Double]
        public var score: Double
        public var space: SearchSpace
        public var `protocol`: TuningProtocol
        /// Candidates tried, of `candidates`.
        public var trials: Int
        public var candidates: Int
        public var stoppedByBudget: Bool

        public init(_ report: TuningReport) {
            algorithm = report.algorithm
            chosen = report.chosen
            score = report.score
            space = report.space
            self.protocol = report.protocol
            trials = report.trials.count
            candidates = report.candidates
            stoppedByBudget = report.stoppedByBudget
        }

        enum CodingKeys: String, CodingKey {
            case algorithm, chosen, score, space, `protocol`, trials, candidates
            case stoppedByBudget = "stopped_by_budget"
        }

        /// The choice in one line, as the run's progress and `orchestrate explain` print it:
        /// `ease reg=300: ndcg_at_k 0.1234 on a temporal validation split, 4 trials of 4 candidates`.
        public var summary: String {
            let parameters = chosen.sorted { $0.key < $1.key }.map { "\($0.key)=\(formatMetric($0.value))" }.joined(
                separator: " ")
            let split =
                self.protocol.validation == "temporal" && self.protocol.lastN > 0
                ? "a temporal validation split (each user's last \(self.protocol.lastN))"
                : "a \(self.protocol.validation) validation split"
            return
                "\(algorithm) \(parameters): \(self.protocol.metric) \(formatMetric(score)) on \(split), \(trials) trials of \(candidates) candidates"
                + (stoppedByBudget ? " (the time budget ran out)" : "")
        }
    }

    public struct ModelReference: Sendable, Codable, Equatable {
        public var path: String
        public var sha256: String?
        public var version: String?

        package init(path: String, sha256: String? = nil, version: String? = nil) {
            self.path = path
            self.sha256 = sha256
            self.version = version
        }
    }

    /// Where the release went: the colour that serves it once promoted.
    public struct DeploymentRecord: Sendable, Codable, Equatable {
        public var runtime: String
        public var color: String
        public var modelSHA256: String?

        enum CodingKeys: String, CodingKey {
            case runtime, color
            case modelSHA256 = "model_sha256"
        }

        package init(runtime: String, color: String, modelSHA256: String? = nil) {
            self.runtime = runtime
            self.color = color
            self.modelSHA256 = modelSHA256
        }
    }

    /// What the rollout did: every traffic step with its gate measurements, every action.
    public struct RolloutRecord: Sendable, Codable, Equatable {
        public struct Step: Sendable, Codable, Equatable {
            public var weight: Int
            public var startedOn: Date
            public var finishedOn: Date?
            public var passed: Bool?
            public var measurements: [GateMeasurement]
            /// Every look of the judge at this step, and its decision.
            public var judge: [JudgeLook]? = nil
            public var judgeDecision: JudgeLook.Decision? = nil
            public var judgeRule: String? = nil

            enum CodingKeys: String, CodingKey {
                case weight, passed, measurements, judge
                case judgeDecision = "judge_decision"
                case judgeRule = "judge_rule"
                case startedOn = "started_on"
                case finishedOn = "finished_on"
            }

            package init(
                weight: Int, startedOn: Date, finishedOn: Date? = nil, passed: Bool? = nil,
                measurements: [GateMeasurement], judge: [JudgeLook]? = nil, judgeDecision: JudgeLook.Decision? = nil,
                judgeRule: String? = nil
            ) {
                self.weight = weight
                self.startedOn = startedOn
                self.finishedOn = finishedOn
                self.passed = passed
                self.measurements = measurements
                self.judge = judge
                self.judgeDecision = judgeDecision
                self.judgeRule = judgeRule
            }
        }

        /// How a webhook gate was answered (by its receiver, or by hand), in the order answered.
        public struct GateAnswer: Sendable, Codable, Equatable {
            /// "confirm-promotion approve-100".
            public var gate: String
            /// Where it acted: "before the deploy", "before step 2", "during step 1", "before the promotion".
            public var point: String
            /// The traffic step it came before (or during, a rollback webhook), counted from 1; nil
            /// before the deploy and before the promotion.
            public var step: Int?
            /// "yes (HTTP 200)", "approved", "no (HTTP 403): the release failed", ...
            public var answer: String
            /// `receiver` (the webhook answered), or who answered by hand (`orchestrate approve --by`,
            /// `$USER` by default).
            public var by: String
            public var at: Date

            package init(gate: String, point: String, step: Int?, answer: String, by: String, at: Date) {
                self.gate = gate
                self.point = point
                self.step = step
                self.answer = answer
                self.by = by
                self.at = at
            }
        }

        public var live: String?
        public var target: String
        public var mode: String
        public var steps: [Step]
        public var events: [RolloutEvent]
        /// The shadow stage before the first step (nil: none ran).
        public var shadow: ShadowComparison? = nil
        /// The webhook gates' decisive answers (nil: no gate was answered, and records written before).
        public var gateAnswers: [GateAnswer]? = nil

        enum CodingKeys: String, CodingKey {
            case live, target, mode, steps, events, shadow
            case gateAnswers = "gate_answers"
        }

        package init(
            live: String? = nil, target: String, mode: String, steps: [Step], events: [RolloutEvent],
            shadow: ShadowComparison? = nil
        ) {
            self.live = live
            self.target = target
            self.mode = mode
            self.steps = steps
            self.events = events
            self.shadow = shadow
        }
    }

    public var schema: String = ReleaseRecord.schema
    public var action: ReleaseAction? = .release
    public var releaseID: String
    /// SHA-256 of the previous line of the history file, nil for the first: editing or removing any
    /// earlier line breaks the chain.
    public var previousSHA256: String?
    public var startedOn: Date
    public var finishedOn: Date?
    public var invocation: Invocation
    public var builder: Builder
    public var source: Source
    public var pipeline: PipelineReference
    public var overrides: [String]
    public var dryRun: Bool
    public var stages: [StageRecord]
    public var model: ModelReference?
    public var deployment: DeploymentRecord?
    public var rollout: RolloutRecord?
    public var outcome: ReleaseOutcome
    public var failure: String?
    /// The plan the run carried out (`orchestrate run --dry-run` prints the same plan).
    public var plan: RunPlan?
    /// The key that signed this record (the line is then a DSSE envelope around it); nil for an
    /// unsigned record.
    public var signer: Signer?
    /// The torn last line of the history that this record's append replaced (kept aside), if any.
    public var historyRepair: HistoryRepair?
    /// What an operator changed in the release policy (`pin`, `unpin`, `mark-bad`).
    public var policyChange: PolicyChange? = nil
    /// Why the release policy refused this run (a closed window, a pin, a model marked bad).
    public var refusedByPolicy: String? = nil

    /// An operator's change to the release policy: a release pinned (no release replaces it until
    /// unpinned), or a model marked bad (never deployed again, rollbacks to it refused).
    public struct PolicyChange: Sendable, Codable, Equatable {
        /// The pinned (or unpinned) release; for a bad mark, the release that built the model, if known.
        public var release: String?
        public var modelSHA256: String?
        public var reason: String?

        public init(release: String?, modelSHA256: String?, reason: String?) {
            self.release = release
            self.modelSHA256 = modelSHA256
            self.reason = reason
        }

        enum CodingKeys: String, CodingKey {
            case release, reason
            case modelSHA256 = "model_sha256"
        }
    }

    /// The public half of the key that signed a record, so that anyone can see which key did.
    public struct Signer: Sendable, Codable, Equatable {
        /// `ReleasePublicKey.keyID`.
        public var keyID: String
        /// The base64 of the raw Ed25519 public key.
        public var publicKey: String

        enum CodingKeys: String, CodingKey {
            case keyID = "keyid"
            case publicKey = "public_key"
        }
    }

    enum CodingKeys: String, CodingKey {
        case schema, action, invocation, builder, source, pipeline, overrides, stages, model, deployment, rollout,
            outcome, failure, plan, signer
        case releaseID = "release_id"
        case previousSHA256 = "previous_sha256"
        case startedOn = "started_on"
        case finishedOn = "finished_on"
        case dryRun = "dry_run"
        case historyRepair = "history_repair"
        case policyChange = "policy_change"
        case refusedByPolicy = "refused_by_policy"
    }

    /// The record as one JSON line (no newline): stable key order, so the chain hash is reproducible.
    public func jsonLine() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        encoder.nonConformingFloatEncodingStrategy = NonFiniteNumbers.encoding
        return try encoder.encode(self)
    }

    public static func decode(_ line: Data) throws -> ReleaseRecord {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        decoder.nonConformingFloatDecodingStrategy = NonFiniteNumbers.decoding
        return try decoder.decode(ReleaseRecord.self, from: line)
    }
}

/// How a run ended.
public enum ReleaseOutcome: String, Sendable, Codable, Equatable {
    case succeeded
    case failed
    /// A gate or health check failed, or an operator aborted: traffic went back to the live colour.
    case rolledBack = "rolled_back"
    /// Stopped by SIGTERM or SIGINT: traffic went back to the live colour before it exited.
    case interrupted
    /// A dry run's record.
    case planned
    /// Still running (the pending record in the state folder).
    case running
}

/// What a stage did in a run.
public enum StageStatus: String, Sendable, Codable, Equatable {
    case succeeded
    case failed
    /// Reused: inputs and parameters unchanged since a successful run, outputs intact.
    case cached
    /// Left out with `--skip`.
    case skipped
    /// Not reached (an earlier stage failed, or a required service is unreachable).
    case notRun = "not_run"
    /// In a dry run's record.
    case planned
    case running
    /// Stopped by SIGTERM or SIGINT.
    case interrupted
}

/// What kind of run a history record describes.
public enum ReleaseAction: String, Sendable, Codable, Equatable {
    /// `orchestrate run`.
    case release
    /// `orchestrate rollback`.
    case rollback
    /// `orchestrate repair`: the recorded state rewritten from what serves.
    case repair
    /// Written by earlier versions for a release converged after an interruption.
    case recovery
    /// `orchestrate pin`: no release replaces the pinned one until `unpin`.
    case pin
    /// `orchestrate unpin`.
    case unpin
    /// `orchestrate mark-bad`: the model is never deployed again.
    case markBad = "mark_bad"
}

/// One thing the rollout did, in order.
public struct RolloutEvent: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable, Equatable {
        case plan, deploy, healthy, shift, hook, abort, promote, hold, rollback, stop, recover, interrupt, reuse, drain,
            shadow, webhook
    }

    public var at: Date
    public var kind: Kind
    public var detail: String

    public init(at: Date, kind: Kind, detail: String) {
        self.at = at
        self.kind = kind
        self.detail = detail
    }
}

/// A metric as people read it: a whole number without decimals, anything else to 4 places.
package func formatMetric(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e12 ? String(Int(value)) : String(format: "%.4f", value)
}
