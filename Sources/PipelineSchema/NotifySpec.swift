public import StrictYAML

/// `notify:`: webhooks told about a release as it happens. Sent off the rollout's path: a
/// receiver that is down or slow never delays nor fails a rollout.
public struct NotifySpec: Sendable, Equatable {
    /// Each attempt's time limit (default 5 s).
    public var timeout: PipelineDuration
    /// Further attempts after a failed one (default 3), 1 s apart, then 2 s, 4 s, ...
    public var retries: Int
    public var webhooks: [Webhook]

    public init(timeout: PipelineDuration = .seconds(5), retries: Int = 3, webhooks: [Webhook] = []) {
        self.timeout = timeout
        self.retries = retries
        self.webhooks = webhooks
    }

    /// One receiver. Its URL and header values are secrets: they come from the environment
    /// (`url: ${SLACK_WEBHOOK_URL}`), and are never written to the history, a plan or a log.
    public struct Webhook: Sendable, Equatable {
        public var name: String
        public var format: Format
        public var url: String
        public var headers: [String: String]
        public var events: [NotifyEvent]

        public init(
            name: String, format: Format, url: String, headers: [String: String] = [:],
            events: [NotifyEvent] = NotifyEvent.allCases
        ) {
            self.name = name
            self.format = format
            self.url = url
            self.headers = headers
            self.events = events
        }
    }

    /// The body sent: a generic JSON object, or Slack's incoming-webhook message (`text` and
    /// `blocks`, which Mattermost, Rocket.Chat and Discord's `/slack` endpoint also read).
    public enum Format: String, Sendable, Equatable, CaseIterable, Codable {
        case json, slack
    }
}

/// What a webhook can be told about.
public enum NotifyEvent: String, Sendable, Codable, CaseIterable {
    /// The run began (before its stages).
    case started
    /// A traffic step passed its gates.
    case stepPassed = "step_passed"
    /// A gate (or the judge) failed a step, with the measured values.
    case gateFailed = "gate_failed"
    /// Traffic went back to the live colour (a failed gate or health check, an abort, a signal).
    case rolledBack = "rolled_back"
    /// The new colour is live.
    case promoted
    /// A run a killed controller left behind was converged and recorded.
    case recovered
    /// The run failed before any traffic moved (a stage, its gate, the deploy).
    case failed
    /// A confirm webhook gate did not answer yes: the rollout waits for it (with the command that
    /// answers it by hand).
    case gateWaiting = "gate_waiting"
    /// A confirm webhook gate the rollout waited for was answered (by its receiver, or by whom).
    case gateAnswered = "gate_answered"
}

/// `metrics:`: the controller's own state pushed to a Prometheus Pushgateway while it runs.
public struct MetricsSpec: Sendable, Equatable {
    /// The Pushgateway's base URL, e.g. `http://127.0.0.1:9091`.
    public var pushgateway: String
    /// The `job` label of the pushed group (default `orchestrate`); the group is also labelled
    /// with the service.
    public var job: String

    public init(pushgateway: String, job: String = "orchestrate") {
        self.pushgateway = pushgateway
        self.job = job
    }
}

/// What the plan shows of `notify:` and `metrics:`: names, formats and events, never a URL.
public struct PlannedObservers: Sendable, Codable, Equatable {
    public struct Notification: Sendable, Codable, Equatable {
        public var name: String
        public var format: NotifySpec.Format
        public var events: [NotifyEvent]

        package init(name: String, format: NotifySpec.Format, events: [NotifyEvent]) {
            self.name = name
            self.format = format
            self.events = events
        }
    }

    public var notifications: [Notification]
    public var timeout: PipelineDuration?
    public var retries: Int?
    public var pushgateway: String?

    package init(notifications: [Notification], timeout: PipelineDuration?, retries: Int?, pushgateway: String?) {
        self.notifications = notifications
        self.timeout = timeout
        self.retries = retries
        self.pushgateway = pushgateway
    }
}
