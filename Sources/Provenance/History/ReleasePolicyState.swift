public import Foundation

/// The release policy operators set by hand, as the history records it: the pinned release
/// (`orchestrate pin`, until `unpin`) and the models marked bad (`orchestrate mark-bad`).
/// Each change is a signed record like every other, so the policy has the history's provenance.
public struct ReleasePolicyState: Sendable, Codable, Equatable {
    public struct Pin: Sendable, Codable, Equatable {
        public var release: String
        public var modelSHA256: String?
        public var reason: String?
        public var by: String
        public var on: Date

        enum CodingKeys: String, CodingKey {
            case release, reason, by, on
            case modelSHA256 = "model_sha256"
        }
    }

    public struct BadModel: Sendable, Codable, Equatable {
        public var modelSHA256: String
        /// The release that built the model, when the history knows it.
        public var release: String?
        public var reason: String
        public var by: String
        public var on: Date

        enum CodingKeys: String, CodingKey {
            case release, reason, by, on
            case modelSHA256 = "model_sha256"
        }
    }

    public var pin: Pin?
    /// Newest mark first.
    public var badModels: [BadModel]

    public init(pin: Pin? = nil, badModels: [BadModel] = []) {
        self.pin = pin
        self.badModels = badModels
    }

    /// The policy from the history's records, newest first: the newest `pin` or `unpin` decides
    /// the pin; every `mark-bad` counts. Dry runs and records of refused changes count for nothing.
    public init(newestFirst records: some Sequence<ReleaseRecord>) {
        var pinDecided = false
        var pin: Pin?
        var bad: [BadModel] = []
        for record in records where !record.dryRun && record.outcome == .succeeded {
            guard let change = record.policyChange else { continue }
            let by = "\(record.invocation.user)@\(record.invocation.host)"
            switch record.action {
            case .pin? where !pinDecided:
                pinDecided = true
                if let release = change.release {
                    pin = Pin(
                        release: release, modelSHA256: change.modelSHA256, reason: change.reason, by: by,
                        on: record.startedOn)
                }
            case .unpin? where !pinDecided:
                pinDecided = true
            case .markBad?:
                if let digest = change.modelSHA256, !bad.contains(where: { $0.modelSHA256 == digest }) {
                    bad.append(
                        BadModel(
                            modelSHA256: digest, release: change.release, reason: change.reason ?? "", by: by,
                            on: record.startedOn))
                }
            default:
                break
            }
        }
        self.init(pin: pin, badModels: bad)
    }

    /// The bad mark of the model with this digest, if it has one.
    public func badModel(_ sha256: String?) -> BadModel? {
        guard let sha256 else { return nil }
        return badModels.first { $0.modelSHA256 == sha256 }
    }
}

extension ReleaseHistory {
    /// The release policy the history records (see `ReleasePolicyState`); reads the whole file
    /// backwards, one line at a time. Lines that are not records are skipped here: `history
    /// verify` reports them.
    public func policyState() throws -> ReleasePolicyState {
        guard FileManager.default.fileExists(atPath: path) else { return ReleasePolicyState() }
        var records: [ReleaseRecord] = []
        try forEachLineNewestFirst { line in
            if let record = line.record, record.policyChange != nil { records.append(record) }
            return true
        }
        return ReleasePolicyState(newestFirst: records)
    }
}
