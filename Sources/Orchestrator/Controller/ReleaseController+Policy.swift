import Foundation
import OrchestratorSupport
public import PipelineSchema
public import Provenance
import StrictYAML

extension ReleaseController {
    /// Why the release policy refuses a release that would start at `now` (a pin in force, or
    /// outside every release window), nil when it may start.
    static func refusal(policy: ReleasePolicy?, state: ReleasePolicyState, now: Date) -> OrchestratorError? {
        if let pin = state.pin {
            return OrchestratorError(
                .policyRefused,
                "release \(pin.release) is pinned\(pin.reason.map { " (\($0))" } ?? "") by \(pin.by) since \(pin.on.ISO8601Format()): no release replaces it; nothing was changed",
                hint: "`orchestrate unpin` lifts the pin")
        }
        if let policy, !policy.isOpen(at: now) {
            return OrchestratorError(
                .policyRefused,
                "outside the release windows (\(policy.summary)): \(nextWindowText(policy, now: now)); nothing was changed",
                hint: "run it again then; a rollback (`orchestrate rollback`) is never held back by a window")
        }
        return nil
    }

    /// The release policy as the plan shows it; nil when the pipeline has no windows and no
    /// release is pinned nor model marked bad. `state`: the history's, when already read.
    func plannedPolicy(now: Date, state: ReleasePolicyState? = nil) throws -> RunPlan.PlannedPolicy? {
        let state = try state ?? history.policyState()
        let policy = pipeline.policy
        guard policy != nil || state.pin != nil || !state.badModels.isEmpty else { return nil }
        let open = policy?.isOpen(at: now) ?? true
        return RunPlan.PlannedPolicy(
            windows: policy?.summary, open: open,
            nextWindow: open ? nil : policy.map { Self.nextWindowText($0, now: now) }, state: state,
            refusal: pipeline.deploy == nil ? nil : Self.refusal(policy: policy, state: state, now: now)?.message)
    }

    /// "the next opens 2026-12-08 09:00 Europe/Berlin (in 17 h 4 min)".
    static func nextWindowText(_ policy: ReleasePolicy, now: Date) -> String {
        let openings = policy.windows.compactMap { window in window.nextOpening(after: now).map { (window, $0) } }
        guard let (window, opening) = openings.min(by: { $0.1 < $1.1 }) else { return "no window ever opens" }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: window.timeZone)
        formatter.dateFormat = "EEE yyyy-MM-dd HH:mm"
        let minutes = Int((opening.timeIntervalSince(now) / 60).rounded(.up))
        let wait = minutes >= 60 ? "\(minutes / 60) h \(minutes % 60) min" : "\(minutes) min"
        return "the next opens \(formatter.string(from: opening)) \(window.timeZone) (in \(wait))"
    }

    /// The refusal of a model marked bad, nil when it is not.
    static func badModelRefusal(_ sha256: String?, state: ReleasePolicyState, action: String) -> OrchestratorError? {
        guard let bad = state.badModel(sha256) else { return nil }
        return OrchestratorError(
            .policyRefused,
            "the model \(bad.modelSHA256.prefix(12))\(bad.release.map { " (built by \($0))" } ?? "") is marked bad by \(bad.by) on \(bad.on.ISO8601Format()): \(bad.reason); \(action)",
            hint: "a model marked bad is never deployed again: train another, or roll back to another release")
    }

    /// `orchestrate pin`: no release replaces `target` (a release id or a model digest or its
    /// first 12 or more hex digits; nil: the live release) until `unpin`.
    public func pin(_ target: String?, reason: String?) async throws -> ReleaseRecord {
        let lock = try lock(releaseID: RunIdentity.releaseID())
        defer { lock.release() }
        let release: (id: String, model: String?)
        if let target {
            guard let found = try promotedRelease(matching: target) else {
                throw OrchestratorError(
                    .invalidInput,
                    "no promoted release in \(history.path) is \(echoedTarget(target)) or built a model whose digest starts with it",
                    hint: "`orchestrate history` lists the releases and their models")
            }
            release = found
        } else {
            guard let live = try store.live() else {
                throw OrchestratorError(
                    .invalidInput, "no release is live to pin", hint: "name one: orchestrate pin RELEASE")
            }
            release = (live.releaseID, live.modelSHA256)
        }
        return try await appendPolicyChange(
            .pin, .init(release: release.id, modelSHA256: release.model, reason: reason),
            "pinned release \(release.id): no release replaces it until `orchestrate unpin`")
    }

    /// `orchestrate unpin`: releases may replace the pinned one again.
    public func unpin(reason: String?) async throws -> ReleaseRecord {
        let lock = try lock(releaseID: RunIdentity.releaseID())
        defer { lock.release() }
        guard let pin = try history.policyState().pin else {
            throw OrchestratorError(.invalidInput, "no release is pinned in \(history.path): nothing to unpin")
        }
        return try await appendPolicyChange(
            .unpin, .init(release: pin.release, modelSHA256: pin.modelSHA256, reason: reason),
            "unpinned release \(pin.release)")
    }

    /// `orchestrate mark-bad`: the model (its digest, or the first 12 or more hex digits of one the
    /// history knows) is never deployed again, and rollbacks to it are refused.
    public func markBad(_ digest: String, reason: String) async throws -> ReleaseRecord {
        let lock = try lock(releaseID: RunIdentity.releaseID())
        defer { lock.release() }
        let text = digest.lowercased()
        guard text.count >= 12, text.count <= 64, text.allSatisfy(\.isHexDigit) else {
            throw OrchestratorError(
                .invalidInput,
                "\(echoedTarget(digest)) is not a model digest: give its 64 hex digits, or at least its first 12 (`orchestrate history` shows them)"
            )
        }
        let known = try modelsBuilt(matching: text)
        let model: (sha256: String, release: String?)
        switch (known.count, text.count) {
        case (1, _): model = known[0]
        case (0, 64): model = (text, nil)
        case (0, _):
            throw OrchestratorError(
                .invalidInput,
                "no model in \(history.path) has a digest starting with \(text): give all 64 hex digits to mark a model the history does not know"
            )
        default:
            throw OrchestratorError(
                .invalidInput,
                "\(known.count) models have a digest starting with \(text) (\(known.map { String($0.sha256.prefix(16)) }.joined(separator: ", "))): give more digits"
            )
        }
        let live = try? store.live()
        let record = try await appendPolicyChange(
            .markBad, .init(release: model.release, modelSHA256: model.sha256, reason: reason),
            "marked model \(model.sha256.prefix(12)) bad: it is never deployed again")
        if live?.modelSHA256 == model.sha256 {
            progress(
                "warning: the model is live now (release \(live?.releaseID ?? "")): `orchestrate rollback` replaces it")
        }
        return record
    }

    private func appendPolicyChange(
        _ action: ReleaseAction, _ change: ReleaseRecord.PolicyChange, _ message: String
    ) async throws -> ReleaseRecord {
        var record = await newRecord(releaseID: RunIdentity.releaseID(), action: action)
        record.policyChange = change
        record.outcome = .succeeded
        record.finishedOn = Date()
        let written = try history.append(record)
        progress(message)
        return written
    }

    /// The newest promoted release named `target`, or whose model digest starts with it.
    private func promotedRelease(matching target: String) throws -> (id: String, model: String?)? {
        let prefix = target.lowercased()
        let byDigest = prefix.count >= 12 && prefix.allSatisfy(\.isHexDigit)
        var found: (id: String, model: String?)?
        try history.forEachLineNewestFirst { line in
            guard let record = line.record, !record.dryRun, record.outcome == .succeeded,
                record.action == .release || record.action == nil, let model = record.deployment?.modelSHA256
            else { return true }
            if record.releaseID == target || (byDigest && model.hasPrefix(prefix)) {
                found = (record.releaseID, model)
                return false
            }
            return true
        }
        return found
    }

    /// The distinct models the history's releases built whose digest starts with `prefix`, with
    /// the oldest release that built each.
    private func modelsBuilt(matching prefix: String) throws -> [(sha256: String, release: String?)] {
        var found: [String: String?] = [:]
        try history.forEachLineNewestFirst { line in
            guard let record = line.record, record.action == .release || record.action == nil else { return true }
            for digest in [record.model?.sha256, record.deployment?.modelSHA256].compactMap({ $0 })
            where digest.hasPrefix(prefix) {
                found[digest] = .some(record.releaseID)
            }
            return true
        }
        return found.map { ($0.key, $0.value) }.sorted { $0.sha256 < $1.sha256 }
    }

    private func echoedTarget(_ text: String) -> String {
        "\"\(echoed(text))\""
    }
}
