import Foundation
import EngineAPI
import StrictYAML
import RecEngine
import Traffic

extension Rollout {
    /// Puts a previously promoted release back: at once when a colour still runs its model,
    /// otherwise by redeploying its model (from the model store, verified by digest) on the idle
    /// colour, checking health, then shifting all traffic.
    func rollback(to requested: String?, history: ReleaseHistory, record: inout ReleaseRecord) async throws {
        let records = try history.records()
        let promoted = records.filter { $0.outcome == "succeeded" && $0.deployment != nil && !$0.dryRun }
        let current = state.current()
        let target: ReleaseRecord
        if let requested {
            guard let found = promoted.last(where: { $0.releaseID == requested }) else {
                throw OrchestratorError(
                    .invalidInput, "release \(requested) was never promoted (or is not in \(history.path))",
                    hint: "orchestrate history lists the releases; promoted ones have outcome succeeded")
            }
            target = found
        } else {
            let before = promoted.prefix { $0.releaseID != current?.releaseID }
            guard let found = before.last(where: { $0.deployment?.modelSHA256 != current?.modelSHA256 }) ?? before.last else {
                throw OrchestratorError(.stageFailed, "there is no earlier promoted release to roll back to")
            }
            target = found
        }
        guard let sha256 = target.deployment?.modelSHA256 else {
            throw OrchestratorError(.stageFailed, "release \(target.releaseID) recorded no model digest")
        }
        record.model = .init(path: "", sha256: sha256, version: target.model?.version)
        var events: [ReleaseRecord.RolloutRecord.Event] = []
        progress("rollback to \(target.releaseID) (model \(sha256.prefix(12)))")

        // A colour that still runs that model takes the traffic at once.
        var instance: ColorInstance?
        for color in deploy.colors {
            if let candidate = await runtime.instance(of: color), candidate.modelSHA256 == sha256,
                await runtime.probe(candidate, path: deploy.health.path).healthy
            {
                instance = candidate
                events.append(.init(at: Date(), kind: "reuse", detail: "\(color) still runs the model"))
                break
            }
        }
        if instance == nil {
            guard let stored = runtime.storedModel(sha256: sha256) else {
                throw OrchestratorError(.stageFailed, "the model \(sha256) of \(target.releaseID) is no longer in the model store")
            }
            let digest = try ArtifactDigest.of(stored + "/" + ModelDirectory.tensorsFile)
            guard digest.sha256 == sha256 else {
                throw OrchestratorError(.stageFailed, "the stored model of \(target.releaseID) fails its digest check (\(digest.sha256 ?? "missing"))")
            }
            let idle = deploy.colors.first { $0 != current?.color } ?? deploy.colors[0]
            progress("redeploying it on \(idle)")
            let deployed = try await runtime.deploy(color: idle, modelDirectory: stored, timeout: deploy.health.timeout.duration)
            let health = await runtime.waitHealthy(deployed, path: deploy.health.path, timeout: deploy.health.timeout.duration)
            guard health.healthy else {
                try? await runtime.stop(color: idle)
                throw OrchestratorError(.stageFailed, "\(idle) did not become healthy (\(health.detail)); traffic was not moved")
            }
            events.append(.init(at: Date(), kind: "deploy", detail: "\(idle) redeployed with \(sha256.prefix(12))"))
            instance = deployed
        }
        guard let instance else { return }
        try await nginx?.apply(split(liveColor: nil, liveAddress: nil, target: instance, weight: 100))
        events.append(.init(at: Date(), kind: "shift", detail: "\(instance.color) 100%"))
        try state.setCurrent(.init(color: instance.color, releaseID: target.releaseID, modelSHA256: sha256, modelVersion: instance.modelVersion))
        try await writeTargets()
        progress("rolled back: \(instance.color) is live with the model of \(target.releaseID)")
        record.deployment = .init(runtime: deploy.runtime, color: instance.color, modelSHA256: sha256)
        record.rollout = .init(live: current?.color, target: instance.color, mode: pipeline.traffic?.mode.rawValue ?? "none", steps: [], events: events)
    }
}
