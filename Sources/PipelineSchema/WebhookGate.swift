import Foundation
import OrchestratorSupport
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
    /// Its user info, query and token-like path segments are secrets (never written to the
    /// history, a plan or a log); the rest is shown (`displayURL`). A URL taken from a variable listed in `secrets:` (or named
    /// like a secret) is hidden whole.
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

    /// The URL as the plan shows it: its user info, every query value and every token-like path
    /// segment replaced by `[redacted]` (`https://[redacted]@gate.example/approve?token=[redacted]`,
    /// `https://hooks.example/services/T0001/[redacted]`).
    public var displayURL: String {
        guard let components = URLComponents(string: url), let scheme = components.scheme,
            let host = components.percentEncodedHost
        else { return "[redacted]" }
        var text = scheme + "://"
        if components.percentEncodedUser != nil || components.percentEncodedPassword != nil { text += "[redacted]@" }
        let path = components.percentEncodedPath.split(separator: "/", omittingEmptySubsequences: false)
            .map { Self.isTokenLike($0) ? "[redacted]" : String($0) }.joined(separator: "/")
        text += host + (components.port.map { ":\($0)" } ?? "") + path
        if let items = components.percentEncodedQueryItems, !items.isEmpty {
            text += "?" + items.map { $0.value == nil ? $0.name : "\($0.name)=[redacted]" }.joined(separator: "&")
        }
        return text
    }

    /// The parts of the URL that are secrets, as written: its user info (not a user name alone beside
    /// a password), its password, its query and fragment whole, the value of each query item named
    /// like a secret (`token`, `api_key`, `password`, `sig`, `auth`...), and each token-like path
    /// segment (receivers such as Slack's put their key in the path).
    public var secretURLParts: [String] {
        guard let components = URLComponents(string: url) else { return [url] }
        let user = components.percentEncodedUser
        let password = components.percentEncodedPassword
        let named = (components.percentEncodedQueryItems ?? []).filter { item in
            let name = item.name.lowercased()
            return Redaction.isSecretName(name)
                || ["sig", "auth", "code", "pass", "credential"].contains {
                    name.contains($0)
                }
        }.compactMap(\.value)
        // A user alone is a token (`https://TOKEN@host`); beside a password, the password is the secret.
        let pathTokens = components.percentEncodedPath.split(separator: "/").filter(Self.isTokenLike).map(String.init)
        return
            ([user.map { user in password.map { "\(user):\($0)" } ?? user }, password] + named.map(Optional.some)
            + [components.percentEncodedQuery, components.percentEncodedFragment])
            .compactMap { $0 }.filter { !$0.isEmpty } + pathTokens
    }

    /// A path segment that looks like a key rather than a name: 16 characters or more with letters
    /// and digits, or 32 or more of anything (`approve`, `v2` and `T0001` are names).
    static func isTokenLike(_ segment: Substring) -> Bool {
        segment.count >= 32
            || (segment.count >= 16 && segment.contains(where: \.isLetter) && segment.contains(where: \.isNumber))
    }
}
