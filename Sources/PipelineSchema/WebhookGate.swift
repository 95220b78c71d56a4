public import StrictYAML

/// `webhooks:`: gates a receiver answers, at the points Flagger defines. A 2xx answer is a yes;
/// what a receiver that cannot be reached means is `onUnreachable`.
public struct WebhookGate: Sendable, Equatable {
    /// Flagger's webhook types (all but `event`: `notify:` tells about a release as it happens).
    public enum Kind: String, Sendable, Equatable, CaseIterable, Codable {
        /// Before the deploy: the rollout waits until it answers 2xx.
        case confirmRollout = "confirm-rollout"
        /// Once before the first traffic step: a non-2xx answer fails the release before any traffic.
        case preRollout = "pre-rollout"
        /// Before each traffic step after the first: the rollout waits until it answers 2xx.
        case confirmTrafficIncrease = "confirm-traffic-increase"
        /// Before the promotion: the rollout waits until it answers 2xx.
        case confirmPromotion = "confirm-promotion"
        /// After the promotion or the rollback, best effort.
        case postRollout = "post-rollout"
        /// Asked during each step's hold: a 2xx answer aborts the rollout.
        case rollback

        /// Whether the rollout waits for a yes (asking every `interval`).
        public var isConfirm: Bool {
            self == .confirmRollout || self == .confirmTrafficIncrease || self == .confirmPromotion
        }

        /// What an unreachable receiver means when the pipeline does not say.
        public var defaultOnUnreachable: OnUnreachable {
            switch self {
            case .confirmRollout, .confirmTrafficIncrease, .confirmPromotion: .wait
            case .preRollout: .fail
            case .postRollout, .rollback: .pass
            }
        }
    }

    /// What a receiver that cannot be reached (no answer, a timeout) means.
    public enum OnUnreachable: String, Sendable, Equatable, CaseIterable, Codable {
        /// Ask again after `interval` (a confirm gate keeps waiting; a rollback webhook does not abort).
        case wait
        /// The release fails (rolled back when traffic moved).
        case fail
        /// As a yes (a confirm gate opens, a pre-rollout webhook passes, a rollback webhook does not abort).
        case pass
    }

    public var name: String
    public var kind: Kind
    /// A secret: never written to the history, a plan or a log.
    public var url: String
    /// Each attempt's time limit (default 10 s).
    public var timeout: PipelineDuration
    /// Further attempts after an answer that is not 2xx or none (default 0), 1 s apart.
    public var retries: Int
    /// How often a confirm or rollback webhook is asked (default 5 s).
    public var interval: PipelineDuration
    public var onUnreachable: OnUnreachable
    /// Sent as the body's `metadata`.
    public var metadata: [String: String]
    /// The key of the body's HMAC-SHA256, sent as `X-Orchestrate-Signature: sha256=HEX`.
    public var secret: String?

    public init(
        name: String, kind: Kind, url: String, timeout: PipelineDuration = .seconds(10), retries: Int = 0,
        interval: PipelineDuration = .seconds(5), onUnreachable: OnUnreachable? = nil,
        metadata: [String: String] = [:], secret: String? = nil
    ) {
        self.name = name
        self.kind = kind
        self.url = url
        self.timeout = timeout
        self.retries = retries
        self.interval = interval
        self.onUnreachable = onUnreachable ?? kind.defaultOnUnreachable
        self.metadata = metadata
        self.secret = secret
    }

    /// "confirm-promotion approve-100".
    public var label: String { "\(kind.rawValue) \(name)" }
}
