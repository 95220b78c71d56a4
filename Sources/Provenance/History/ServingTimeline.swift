public import Foundation

/// What served when, from the history's records: every change of the traffic split (a rollout
/// step, a promotion, a rollback, a recovery, a repair), with the release, model and weight of
/// each colour that took traffic from then on. Answers `orchestrate history --at TIME`.
public struct ServingTimeline: Sendable {
    /// One colour taking traffic.
    public struct Serving: Sendable, Codable, Equatable {
        public var color: String
        public var weight: Int
        /// The release whose model the colour serves; nil when the history does not say (it
        /// starts after that colour was deployed).
        public var releaseID: String?
        public var modelSHA256: String?
        public var modelVersion: String?

        enum CodingKeys: String, CodingKey {
            case color, weight
            case releaseID = "release_id"
            case modelSHA256 = "model_sha256"
            case modelVersion = "model_version"
        }
    }

    /// The split from `at` on.
    public struct Change: Sendable, Codable, Equatable {
        public var at: Date
        /// The record whose event changed it.
        public var recordID: String
        public var action: String
        public var detail: String
        /// The colours with traffic, largest weight first; empty: nothing served.
        public var serving: [Serving]

        enum CodingKeys: String, CodingKey {
            case at, action, detail, serving
            case recordID = "record_id"
        }
    }

    /// Every change, oldest first; only the one in force at `horizon` when there is one.
    public var changes: [Change] {
        recorded.enumerated().sorted { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }.map(\.element)
    }
    /// When the first record started; nil for an empty history.
    public private(set) var firstRecord: Date?

    /// The changes in the order they were recorded.
    private var recorded: [Change] = []
    /// Keep only the change in force at this time (for `--at`): memory stays the same however
    /// long the history.
    private let horizon: Date?
    private var weights: [String: Int] = [:]
    private var models: [String: (releaseID: String?, sha256: String?, version: String?)] = [:]
    /// The newest release that deployed each model digest so far.
    private var releaseByModel: [String: String] = [:]

    /// - Parameter records: the history's records, oldest first.
    public init(records: [ReleaseRecord]) {
        self.init()
        records.forEach { add($0) }
    }

    /// An empty timeline, to `add` records to one at a time, oldest first.
    ///
    /// - Parameter horizon: when given, only the change in force then is kept.
    public init(keepingOnlyTheChangeAt horizon: Date? = nil) {
        self.horizon = horizon
    }

    /// Follows one more record (the next newer one).
    public mutating func add(_ record: ReleaseRecord) {
        firstRecord = min(firstRecord ?? record.startedOn, record.startedOn)
        defer {
            if (record.action ?? .release) == .release, let sha256 = record.deployment?.modelSHA256 {
                releaseByModel[sha256] = record.releaseID
            }
        }
        guard !record.dryRun, let rollout = record.rollout else { return }
        let action = (record.action ?? .release)
        let sha256 = record.model?.sha256 ?? record.deployment?.modelSHA256
        // A rollback or a repair serves a model some earlier release built: name that release.
        let builtBy: String? = action == .release ? record.releaseID : sha256.flatMap { releaseByModel[$0] }
        var shifted = false
        for event in rollout.events {
            guard let split = event.shiftedWeights else { continue }
            shifted = true
            if split.isEmpty || split.reduce(0, { $0 + $1.weight }) == 100 { weights = [:] }
            for (color, weight) in split {
                weights[color] = weight
                // The colour released to serves this record's model from its first shift on.
                if color == rollout.target && (action != .release || record.model != nil) {
                    models[color] = (builtBy, sha256, record.model?.version)
                }
            }
            keep(
                Self.change(
                    at: event.at, record: record, action: action, detail: event.detail, weights: weights, models: models
                ))
        }
        // A repair records what it adopted, not a shift: the colour it names takes all traffic.
        if !shifted, action == .repair, let deployment = record.deployment {
            weights = [deployment.color: 100]
            models[deployment.color] = (builtBy, deployment.modelSHA256, record.model?.version)
            keep(
                Self.change(
                    at: record.finishedOn ?? record.startedOn, record: record, action: action,
                    detail: "repair: \(deployment.color) 100%",
                    weights: weights, models: models))
        }
    }

    private mutating func keep(_ change: Change) {
        guard let horizon else {
            recorded.append(change)
            return
        }
        // The one in force at the horizon: the latest at or before it, the later recorded on a tie.
        guard change.at <= horizon else { return }
        if let kept = recorded.first, kept.at > change.at { return }
        recorded = [change]
    }

    private static func change(
        at: Date, record: ReleaseRecord, action: ReleaseAction, detail: String, weights: [String: Int],
        models: [String: (releaseID: String?, sha256: String?, version: String?)]
    ) -> Change {
        let serving = weights.filter { $0.value > 0 }.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map {
            color, weight in
            Serving(
                color: color, weight: weight, releaseID: models[color]?.releaseID, modelSHA256: models[color]?.sha256,
                modelVersion: models[color]?.version)
        }
        return Change(at: at, recordID: record.releaseID, action: action.rawValue, detail: detail, serving: serving)
    }

    /// The split in force at `date`: the last change at or before it; nil when none was yet.
    public func change(at date: Date) -> Change? {
        changes.last { $0.at <= date }
    }
}
