import EngineAPI
import Foundation
public import OrchestratorSupport
public import StrictYAML

/// A validated pipeline: what `orchestrate run` does, resolved against its file and environment.
public struct Pipeline: Sendable {
    public static let currentVersion = 1
    public static let defaultHistory = "releases/release_history.jsonl"

    public var version: Int
    public var name: String
    /// Absolute path of the pipeline file.
    public var file: String
    /// SHA-256 of the pipeline file's bytes.
    public var sha256: String
    /// Absolute path of the provenance history (JSON lines).
    public var history: String
    public var stages: [Stage]
    public var deploy: DeploySpec?
    public var traffic: TrafficSpec?
    public var analysis: AnalysisSpec?
    public var rollback: RollbackSpec
    public var hooks: HooksSpec
    /// Webhooks told about the release as it happens.
    public var notify: NotifySpec? = nil
    /// Where the controller pushes its own metrics while it runs.
    public var metrics: MetricsSpec? = nil
    /// When a release may start (`policy.windows`); nil: at any time.
    public var policy: ReleasePolicy? = nil
    /// Gates a receiver answers (`webhooks:`), in the order listed.
    public var webhooks: [WebhookGate] = []
    /// The variables `secrets:` names: their values are never written nor printed.
    public var secrets: [String] = []
    /// The secret values this pipeline carries (see `Redaction`).
    public var redaction: Redaction = .none
}

/// One stage: a built-in that calls the RecEngine library, or a command.
public struct Stage: Sendable {
    public enum Action: Sendable, Equatable {
        /// A built-in with its typed parameters.
        case builtin(BuiltinParameters)
        /// An argument vector, run without a shell.
        case command([String])
    }

    public var name: String
    public var action: Action
    public var env: [String: String]
    /// Absolute paths this stage reads (built-ins add their own).
    public var inputs: [String]
    /// Absolute paths this stage writes (built-ins add their own).
    public var outputs: [String]
    /// A JSON file of numeric metrics the command writes (command stages only).
    public var metricsFile: String?
    public var timeout: PipelineDuration?
    /// Further attempts after a failure.
    public var retries: Int
    public var gate: [MetricThreshold]
    /// A command stage's container image: the argument vector runs in a one-off container.
    public var image: String? = nil

    /// The built-in's name, for plans and records (nil for a command).
    public var uses: String? { builtin?.rawValue }

    /// The built-in it runs (nil for a command).
    public var builtin: BuiltinStage? { parameters?.kind }

    /// The built-in's parameters (nil for a command).
    public var parameters: BuiltinParameters? {
        if case .builtin(let parameters) = action { return parameters }
        return nil
    }

    /// The command's argument vector (nil for a built-in).
    public var argv: [String]? {
        if case .command(let argv) = action { return argv }
        return nil
    }
}

/// A bound on a metric a stage reports, e.g. `rmse: {max: 0.95}`, or relative to what the last
/// promoted releases recorded: `ndcg_at_k: {history: {last: 5, maxDrop: 0.02}}`.
public struct MetricThreshold: Sendable, Equatable, Codable {
    public var metric: String
    public var min: Double?
    public var max: Double?
    /// A bound relative to the last promoted releases' values; the planner turns it into `min` or
    /// `max` and records the values it used in `reference`.
    public var history: HistoryBound? = nil
    /// The values the planner read for `history` (nil before planning, or when no promoted
    /// release recorded the metric yet).
    public var reference: HistoryReference? = nil

    public init(metric: String, min: Double? = nil, max: Double? = nil, history: HistoryBound? = nil) {
        self.metric = metric
        self.min = min
        self.max = max
        self.history = history
    }

    /// Whether `value` is within the bounds. A value that is not a finite number (NaN, +Inf,
    /// -Inf: a division by zero, an overflow) measured nothing and is never admitted, whatever
    /// the bounds: -Inf is not "at most 1", nor +Inf "at least 0.5".
    public func admits(_ value: Double) -> Bool {
        value.isFinite && (min.map { value >= $0 } ?? true) && (max.map { value <= $0 } ?? true)
    }

    public var condition: String {
        // A bound computed from history is shown to 6 significant digits, as its reference values are.
        func show(_ value: Double) -> String {
            history == nil ? formatNumber(value) : HistoryBound.show(value)
        }
        var text = [min.map { ">= \(show($0))" }, max.map { "<= \(show($0))" }].compactMap { $0 }
            .joined(separator: " and ")
        if let history {
            let relation = history.describe(reference)
            text = text.isEmpty ? relation : "\(text) (\(relation))"
        }
        return text
    }
}

/// "Not below the median of the last 5 promoted releases by more than 2 %": a quantile of what the
/// last `last` promoted releases recorded for the same stage's metric, and how far the new value
/// may fall below it (`maxDrop`) or rise above it (`maxRise`), as a fraction of it.
public struct HistoryBound: Sendable, Equatable, Codable {
    public var last: Int
    /// 0.5: the median.
    public var quantile: Double
    public var maxDrop: Double?
    public var maxRise: Double?

    public init(last: Int, quantile: Double = 0.5, maxDrop: Double? = nil, maxRise: Double? = nil) {
        self.last = last
        self.quantile = quantile
        self.maxDrop = maxDrop
        self.maxRise = maxRise
    }

    var statistic: String {
        quantile == 0.5 ? "the median" : "the \(formatNumber(quantile * 100))th percentile"
    }

    func describe(_ reference: HistoryReference?) -> String {
        let change =
            maxDrop.map { "not below \(statistic) by more than \(formatNumber($0 * 100)) %" }
            ?? "not above \(statistic) by more than \(formatNumber((maxRise ?? 0) * 100)) %"
        guard let reference else { return "\(change) of the last \(last) promoted releases: none recorded it yet" }
        return
            "\(change) of the last \(reference.values.count) promoted releases: \(Self.show(reference.value)) of \(reference.values.map(Self.show).joined(separator: ", "))"
    }

    static func show(_ value: Double) -> String {
        String(format: "%.6g", value)
    }

    /// The bound from the reference value: below it by at most `maxDrop` of its size, or above it
    /// by at most `maxRise`.
    public func bound(from reference: Double) -> (min: Double?, max: Double?) {
        (maxDrop.map { reference - abs(reference) * $0 }, maxRise.map { reference + abs(reference) * $0 })
    }

    /// The `quantile` of `values` with linear interpolation between order statistics (numpy's
    /// default method, and R's type 7); nil without values.
    public static func quantile(_ values: [Double], _ q: Double) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let position = q * Double(sorted.count - 1)
        let below = Int(position.rounded(.down))
        let above = Swift.min(below + 1, sorted.count - 1)
        return sorted[below] + (sorted[above] - sorted[below]) * (position - Double(below))
    }
}

/// What the planner read for a `HistoryBound`: each promoted release's value, newest first, and
/// the quantile taken of them.
public struct HistoryReference: Sendable, Equatable, Codable {
    public var releases: [String]
    public var values: [Double]
    public var value: Double

    public init(releases: [String], values: [Double], value: Double) {
        self.releases = releases
        self.values = values
        self.value = value
    }
}

/// A built-in stage parameter's value, as `with:` gives it and plans and records write it.
public enum ParameterValue: Sendable, Equatable, Codable, CustomStringConvertible {
    case string(String)
    case integer(Int)
    case number(Double)

    public var description: String {
        switch self {
        case .string(let value): value
        case .integer(let value): String(value)
        case .number(let value): formatNumber(value)
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Int.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else {
            self = .string(try container.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        }
    }
}

/// Where and how the release is deployed.
public struct DeploySpec: Sendable, Codable, Equatable {
    public var runtime: String
    public var service: String
    public var colors: [String]
    /// The model directory to deploy (default: the `model` output of the `train` stage).
    public var model: String?
    public var health: HealthCheckSpec
    /// Extra arguments for the server (`recengine serve`), e.g. `[--fault-rate, "0.2"]` in a drill.
    public var args: [String] = []
    /// The engine and compose file of `runtime: docker`.
    public var docker: DockerSpec?
    /// The swarm of `runtime: swarm`.
    public var swarm: SwarmSpec?
}

/// `deploy.swarm`: the manager to drive, every node's engine (to build the model image on), and
/// how each colour's service runs.
public struct SwarmSpec: Sendable, Codable, Equatable {
    /// How tasks publish the colour's port.
    public enum PublishMode: String, Sendable, Codable, CaseIterable {
        /// On the node that runs the task only (at most one task per node and port); works on
        /// every kernel.
        case host
        /// Swarm's routing mesh: every node answers for every task (needs IPVS in the kernel).
        case ingress
        /// The routing mesh where it works, found out at the first deploy on a swarm (and kept
        /// in the state folder); host-mode publishing where it does not.
        case auto
    }

    /// The manager's engine, `unix:///PATH` or `tcp://HOST:PORT`; nil: `DOCKER_HOST`.
    public var host: String?
    /// Every node's engine (the manager's too); nil: the manager's only (a one-node swarm).
    public var engines: [String]?
    /// TLS client files for every engine (the docker CLI's rules apply when nil).
    public var certificates: String?
    public var insecure: Bool?
    /// The server's image, on every node (`orchestrate image import recengine`).
    public var image: String
    public var replicas: Int
    /// The fewest healthy tasks the new colour may have during a step: below it, the release
    /// rolls back; at or above it, it continues on the nodes that remain.
    public var minHealthyReplicas: Int
    /// The published port of each colour.
    public var ports: [String: Int]
    /// Placement constraints, e.g. `node.labels.zone != edge`.
    public var constraints: [String]
    /// Placement preferences: spread the tasks over the values of these node labels, e.g.
    /// `node.labels.zone`.
    public var spread: [String]
    /// At most this many tasks of a colour on one node (1 under host-mode publishing).
    public var maxReplicasPerNode: Int?
    public var publish: PublishMode
}

/// `deploy.docker`: where the engine is and which compose file describes the colours and the
/// load balancer.
public struct DockerSpec: Sendable, Codable, Equatable {
    /// `unix:///PATH` or `tcp://HOST:PORT`; nil: `DOCKER_HOST`, else `/var/run/docker.sock`.
    public var host: String?
    /// A folder with `ca.pem`, `cert.pem`, `key.pem`: TLS to the engine, verified; nil: the
    /// docker CLI's rules (`DOCKER_TLS_VERIFY`, `DOCKER_TLS`, `DOCKER_CERT_PATH`).
    public var certificates: String?
    /// The compose file: a service per colour and `lb`.
    public var compose: String
    /// Plain HTTP to a tcp engine that is not on loopback is allowed (a network you trust);
    /// nil or false: refused.
    public var insecure: Bool?
}

public struct HealthCheckSpec: Sendable, Codable, Equatable {
    public var path: String
    public var timeout: PipelineDuration
}

/// How traffic moves from the live colour to the new one.
public struct TrafficSpec: Sendable, Codable, Equatable {
    public enum Mode: String, Sendable, Codable, CaseIterable {
        /// Each user id hashes to one colour (Sources/Traffic/Resources/traffic.lua): one user sees one model, and
        /// keeps the new one while its weight grows.
        case sticky
        /// A weighted random choice per request.
        case weighted
    }

    /// The nginx configuration file the controller writes.
    public var nginxConfig: String
    /// The port nginx listens on.
    public var listen: Int
    public var mode: Mode
    /// Percent of traffic on the new colour at each step, increasing, ending at 100.
    public var steps: [Int]
    /// How long each step is held and measured.
    public var wait: PipelineDuration
    /// Stop the old colour after a successful rollout.
    public var stopOld: Bool
    /// How long the old colour keeps running after the last step, so nginx can drain it.
    public var drain: PipelineDuration
    /// A sampled share of users sees both colours' lists interleaved at every step below 100 %
    /// (and at a first step of 0 %, the interleaving step); nil: none does.
    public var interleave: InterleaveSpec? = nil
    /// The shadow stage before the first step: the new colour's answers compared with the live
    /// ones on live traffic, before any user sees it; nil: none.
    public var shadow: ShadowSpec? = nil

    enum CodingKeys: String, CodingKey {
        case nginxConfig = "nginx_config"
        case listen, mode, steps, wait
        case stopOld = "stop_old"
        case drain, interleave, shadow
    }
}

/// `traffic.shadow`: before the first weighted step, a sampled share of the live `/recommend`
/// requests is also sent to the new colour (in nginx, Sources/Traffic/Resources/shadow.lua, once
/// the live answer has been sent); both lists are compared, and the gates decide whether the
/// rollout goes on. No user is answered by the new colour during the stage.
public struct ShadowSpec: Sendable, Codable, Equatable {
    /// Percent of the live `/recommend` requests also sent to the new colour, 1 to 100.
    public var share: Int
    /// The longest the stage runs: it decides on what it compared by then.
    public var duration: PipelineDuration
    /// The comparisons the stage needs: it ends as soon as they are in, and fails when fewer came
    /// within `duration` (nil: it runs for `duration` and needs at least one).
    public var requests: Int?
    public var gates: ShadowGates

    public init(share: Int, duration: PipelineDuration, requests: Int? = nil, gates: ShadowGates) {
        self.share = share
        self.duration = duration
        self.requests = requests
        self.gates = gates
    }

    /// The comparisons needed before the stage can pass.
    public var minimumComparisons: Int { requests ?? 1 }
}

/// The shadow stage's gates; each is optional, at least one is given.
public struct ShadowGates: Sendable, Codable, Equatable {
    /// The lowest mean rank-biased overlap (p = 0.9) of the new lists with the live ones, 0 to 1.
    public var rboMin: Double?
    /// The lowest mean overlap@k, 0 to 1.
    public var overlapMin: Double?
    /// The highest p95 latency of the new colour over the live one's.
    public var p95LatencyRatioMax: Double?
    /// The highest share of shadow requests that failed, 0 to 1.
    public var errorsMax: Double?
    /// The lowest catalogue coverage of the new colour over the shadowed requests (the distinct
    /// movies it recommended) as a ratio of the live colour's: 0.5 fails a candidate that covered
    /// less than half of what live covered for the same requests.
    public var coverageMin: Double?
    /// The highest popularity concentration of the new colour (the share of its recommendations
    /// taken by its 10 most recommended movies) as a ratio of the live colour's: 1.5 fails a
    /// candidate that piles half as much again onto its favourites (a popularity collapse).
    public var popularityMax: Double?

    public init(
        rboMin: Double? = nil, overlapMin: Double? = nil, p95LatencyRatioMax: Double? = nil, errorsMax: Double? = nil,
        coverageMin: Double? = nil, popularityMax: Double? = nil
    ) {
        self.rboMin = rboMin
        self.overlapMin = overlapMin
        self.p95LatencyRatioMax = p95LatencyRatioMax
        self.errorsMax = errorsMax
        self.coverageMin = coverageMin
        self.popularityMax = popularityMax
    }

    public var isEmpty: Bool {
        rboMin == nil && overlapMin == nil && p95LatencyRatioMax == nil && errorsMax == nil && coverageMin == nil
            && popularityMax == nil
    }
}

/// `traffic.interleave`: team-draft interleaving in nginx (Sources/Traffic/Resources/interleave.lua)
/// for a sampled share of users, judged by a judge metric of kind `interleaving`.
public struct InterleaveSpec: Sendable, Codable, Equatable {
    /// Percent of users sampled (by a hash of the release id and the user id), 1 to 100.
    public var share: Int
    /// How long after a movie was placed an event on it is credited to its team.
    public var window: PipelineDuration
}

/// Prometheus and the PromQL gates checked at every step.
public struct AnalysisSpec: Sendable, Codable, Equatable {
    public var prometheus: String
    public var gates: [PromQLGate]
    /// The statistical comparison of the new colour with the live one, at every step.
    public var judge: JudgeSpec?
}

/// `analysis.judge`: the new colour against the live one over the same window, metric by metric,
/// with always-valid confidence intervals (looked at every `interval`, valid however often), a
/// per-metric verdict (Pass, High, Low, NoData), and a weighted score with Kayenta's semantics
/// (100 × passed / counted) against `marginal` and `pass`.
public struct JudgeSpec: Sendable, Codable, Equatable {
    public enum Inconclusive: String, Sendable, Codable, CaseIterable {
        /// The step fails (rolls back).
        case fail
        /// Traffic is held where it is until `orchestrate promote` or `abort`.
        case hold
    }

    public struct Metric: Sendable, Codable, Equatable {
        public enum Kind: Sendable, Codable, Equatable {
            /// Successes over trials, each a PromQL counter expression with `{{color}}`.
            case proportion(successes: String, trials: String)
            /// A histogram's cumulative buckets (`sum by (le) (..._bucket{color="{{color}}"})`),
            /// compared at each quantile: the share of the new colour's requests above the live
            /// colour's quantile, against the live colour's own share.
            case histogram(buckets: String, quantiles: [Double])
            /// The users of `traffic.interleave` who preferred the new colour (more of their
            /// conversions on movies its team placed) against those who preferred the live one,
            /// counted by nginx: a sign test of the new colour's share of them against 1/2.
            case interleaving
        }

        public enum Direction: String, Sendable, Codable, CaseIterable {
            /// A rise is a regression (errors, latency).
            case increase
            /// A fall is a regression (engagement).
            case decrease
        }

        public enum NoData: String, Sendable, Codable, CaseIterable {
            /// NoData is not counted in the score (Kayenta).
            case ignore
            case fail
            case pass
        }

        public var name: String
        public var kind: Kind
        /// Which way is bad.
        public var bad: Direction
        /// The regression that matters: relative to the live colour (0.1: 10 % worse), or with
        /// `absolute`, in the metric's own unit (0.02: two points of error rate).
        public var effect: Double
        public var absolute: Bool
        /// The expected rate, for the plan's power figures (proportions; a histogram's is the share above each quantile).
        public var baseline: Double?
        /// A regression of this metric fails the step whatever the score.
        public var critical: Bool
        public var weight: Double
        public var onNoData: NoData
        /// Trials each colour needs before the metric is judged at all.
        public var minTrials: Int
        /// Trials per request, for the plan's power figures (engagement: recommended movies per request).
        public var trialsPerRequest: Double = 1
        /// A label whose values are independent groups (`user_bucket`: users hashed into buckets):
        /// the proportion's variance is then measured between the groups, not assumed binomial,
        /// because one user's recommendations are not independent of each other.
        public var units: String? = nil
        /// CUPED: the window before each step whose rate of each group of `units`, on the live
        /// colour, is the covariate that takes the users' own differences out of the comparison.
        public var cuped: PipelineDuration? = nil
        /// For a histogram: the smallest slowdown that can count as a regression, in the
        /// histogram's unit (seconds for latency). The new colour's answers are counted above live's
        /// quantile plus this floor (rounded up to a bucket bound), so that a tail a fraction of a
        /// millisecond slower, which no user notices, is not a regression. The decoder sets 0.005
        /// (5 ms) when a pipeline gives none; nil (a record written before the floor) is 0.
        public var floor: Double? = nil
        /// A histogram's floor when the pipeline gives none: 5 ms of latency.
        public static let defaultFloor = 0.005

        enum CodingKeys: String, CodingKey {
            case name, kind, bad, effect, absolute, baseline, critical, weight, floor
            case onNoData = "on_no_data"
            case minTrials = "min_trials"
            case trialsPerRequest = "trials_per_request"
            case units, cuped
        }
    }

    public var metrics: [Metric]
    /// 1 − alpha of every interval.
    public var confidence: Double
    /// How often the judge looks.
    public var interval: PipelineDuration
    /// How long a step may be extended while the judge has not decided.
    public var maxWait: PipelineDuration
    public var onInconclusive: Inconclusive
    /// Score thresholds: below `marginal` fails, from `pass` passes, between is inconclusive.
    public var marginal: Double
    public var pass: Double
    /// Requests per second through nginx, for the plan's power figures when Prometheus cannot say.
    public var expectedRate: Double?
    /// PromQL for the requests per second the service gets now (the plan asks Prometheus when it
    /// answers, else uses `expectedRate`), e.g. `sum(rate(recengine_http_requests_total[5m]))`.
    public var rateQuery: String? = nil
    /// The sample ratio check of every judged step (nil: none).
    public var sampleRatio: SampleRatio? = nil
    /// `allowUndecidedCritical: true`: a step whose critical metric is still undecided at
    /// `maxWait` may pass on the other metrics' score (the verdict then says so); without it
    /// (nil or false) such a step ends inconclusive.
    public var allowUndecidedCritical: Bool? = nil
    /// Users who reach the service per minute, for the plan's power figures of the metrics
    /// measured between groups of users (`units`): their units are users, not requests.
    public var usersPerMinute: Double? = nil

    /// Whether a step may pass with its critical metric undecided at `maxWait`.
    public var allowsUndecidedCritical: Bool { allowUndecidedCritical ?? false }

    /// The sample ratio check: each colour's share of users (and of requests) since the step
    /// started against the share the step gives it, by a chi-squared goodness of fit (by groups of
    /// users: z² against F(1, g − 1)). A split
    /// that does not send the intended share (a balancer, a cache or a client that skews it)
    /// biases every comparison, so a mismatch ends the step as an invalid experiment.
    public struct SampleRatio: Sendable, Codable, Equatable {
        /// PromQL with `{{color}}`: a counter of the users (units) each colour served.
        public var users: String?
        /// PromQL with `{{color}}`: a counter of the requests each colour answered.
        public var requests: String?
        /// A label whose values are independent groups of users (`user_bucket`): a count read by
        /// that label is tested with its variance measured between the groups, because one
        /// user's requests (or sessions) do not fall on a colour independently of each other.
        public var units: String?
        /// A mismatch when the test's p-value is below this (0.001).
        public var pValue: Double
        /// How far behind Prometheus's samples may be (a few scrape intervals): a query over
        /// `{{window}}` counts from this long after the step started to this long before now, so
        /// that neither colour's window holds traffic from before the step or misses its last
        /// scrape. nil in plans written before: 5s.
        public var settle: PipelineDuration? = nil

        public init(
            users: String? = nil, requests: String? = nil, units: String? = nil, pValue: Double = 0.001,
            settle: PipelineDuration? = nil
        ) {
            self.users = users
            self.requests = requests
            self.units = units
            self.pValue = pValue
            self.settle = settle
        }

        /// `settle`, 5s by default.
        public var settleTime: PipelineDuration { settle ?? .seconds(5) }

        enum CodingKeys: String, CodingKey {
            case users, requests, units, settle
            case pValue = "p_value"
        }
    }

    enum CodingKeys: String, CodingKey {
        case metrics, confidence, interval, marginal, pass
        case maxWait = "max_wait"
        case onInconclusive = "on_inconclusive"
        case expectedRate = "expected_rate"
        case rateQuery = "rate_query"
        case sampleRatio = "sample_ratio"
        case allowUndecidedCritical = "allow_undecided_critical"
        case usersPerMinute = "users_per_minute"
    }
}

public struct PromQLGate: Sendable, Codable, Equatable {
    public enum NoDataPolicy: String, Sendable, Codable, CaseIterable {
        case fail, pass, inconclusive
    }

    public var name: String
    /// PromQL with `{{color}}`, `{{live}}` and `{{release}}` placeholders.
    public var query: String
    public var min: Double?
    public var max: Double?
    public var interval: PipelineDuration
    /// Measurements per step.
    public var count: Int
    public var initialDelay: PipelineDuration
    /// Failed measurements tolerated per step (the gate fails when failures exceed it).
    public var failureLimit: Int
    /// Consecutive query or connection errors tolerated.
    public var consecutiveErrorLimit: Int
    public var onNoData: NoDataPolicy
    /// A bound relative to what the last promoted releases measured with this gate; the planner
    /// turns it into `min` or `max` and records the values it used in `reference`.
    public var history: HistoryBound? = nil
    public var reference: HistoryReference? = nil

    enum CodingKeys: String, CodingKey {
        case name, query, min, max, interval, count, history, reference
        case initialDelay = "initial_delay"
        case failureLimit = "failure_limit"
        case consecutiveErrorLimit = "consecutive_error_limit"
        case onNoData = "on_no_data"
    }

    /// The query as it will be sent, placeholders filled in.
    public func resolvedQuery(color: String, live: String, release: String) -> String {
        query.replacingOccurrences(of: "{{color}}", with: color)
            .replacingOccurrences(of: "{{live}}", with: live)
            .replacingOccurrences(of: "{{release}}", with: release)
    }
}

public struct RollbackSpec: Sendable, Codable, Equatable {
    /// Roll back by itself when a gate or health check fails.
    public var automatic: Bool
    /// Stop the new colour after rolling back.
    public var stopNew: Bool

    enum CodingKeys: String, CodingKey {
        case automatic
        case stopNew = "stop_new"
    }
}

/// Argument vectors run at points of the rollout.
public struct HooksSpec: Sendable, Codable, Equatable {
    public var preRollout: [[String]] = []
    /// Started at each traffic step and stopped when the step ends (e.g. a load generator).
    public var duringStep: [[String]] = []
    public var postRollout: [[String]] = []
    public var onRollback: [[String]] = []

    enum CodingKeys: String, CodingKey {
        case preRollout = "pre_rollout"
        case duringStep = "during_step"
        case postRollout = "post_rollout"
        case onRollback = "on_rollback"
    }
}

package func formatNumber(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
}

extension JudgeSpec.Metric {
    /// A metric judged from counts given from outside (`orchestrate judge-counts`, for
    /// Benchmarks/sensitivity), with no query behind it.
    package init(
        replaying name: String, kind: Kind, bad: Direction, effect: Double, absolute: Bool, units: String? = nil,
        cuped: PipelineDuration? = nil
    ) {
        self.init(
            name: name, kind: kind, bad: bad, effect: effect, absolute: absolute, baseline: nil, critical: true,
            weight: 1, onNoData: .fail, minTrials: 0)
        self.units = units
        self.cuped = cuped
    }
}

extension JudgeSpec {
    /// A judge of counts given from outside (`orchestrate judge-counts`): its metrics at `confidence`.
    package init(replaying metrics: [Metric], confidence: Double, sampleRatio: SampleRatio? = nil) {
        self.init(
            metrics: metrics, confidence: confidence, interval: .seconds(1), maxWait: .seconds(60),
            onInconclusive: .fail, marginal: 50, pass: 75, expectedRate: nil)
        self.sampleRatio = sampleRatio
    }
}
