import DeploymentRuntimes
import Foundation
import OrchestratorSupport
import PipelineSchema
public import Provenance
import StrictYAML
import Traffic

extension ReleaseController {
    /// What `orchestrate repair` found and did.
    public struct RepairReport: Sendable, Encodable {
        /// What was (or, in a dry run, would be) done, in order; empty when all agreed.
        public var actions: [String]
        public var applied: Bool
        public var record: ReleaseRecord?
    }

    /// Makes the recorded state and what serves agree again, from what serves: an unreadable or
    /// missing `current.json` is rewritten from the colour nginx sends all traffic to (its model
    /// found in the history), and nginx is pointed back at the healthy live colour. Refuses when
    /// what serves does not name one release (traffic split, nothing healthy).
    public func repair(dryRun: Bool) async throws -> RepairReport {
        guard let deployment = try deployment() else {
            throw OrchestratorError(.invalidInput, "\(pipeline.file) has no deploy section: nothing is deployed")
        }
        let lock = dryRun ? nil : try lock(releaseID: "repair")
        defer { lock?.release() }
        return try await repairHoldingLock(deployment, dryRun: dryRun)
    }

    /// `repair` once the lock is held (`recover` repairs too, under its own lock).
    func repairHoldingLock(
        _ deployment: (deploy: DeploySpec, runtime: any DeploymentRuntime, nginx: NginxController?), dryRun: Bool
    ) async throws
        -> RepairReport
    {
        let serving = await ServingState.observe(
            colors: deployment.deploy.colors, runtime: deployment.runtime, nginx: deployment.nginx,
            healthPath: deployment.deploy.health.path)
        var actions: [String] = []
        var unreadable = false
        var live: LiveRelease?
        do {
            live = try store.live()
        } catch let error as OrchestratorError where error.code == .unreadableState {
            unreadable = true
            actions.append("move the unreadable \(store.livePath) aside")
        }
        var adopted: LiveRelease?
        if live == nil {
            let healthy = serving.colors.filter { $0.health?.healthy == true && $0.instance != nil }
            let candidate: ServingState.Color?
            if serving.nginxServing {
                candidate = serving.colors.first { $0.weight == 100 }
                if candidate == nil && serving.colors.contains(where: { $0.weight > 0 }) {
                    throw OrchestratorError(
                        .inconsistentState,
                        "traffic is split (\(serving.colors.map { "\($0.color) \($0.weight)%" }.joined(separator: ", "))): what serves does not name one release",
                        hint:
                            "`orchestrate recover` converges an interrupted run; `orchestrate rollback --to RELEASE` puts a named release back"
                    )
                }
            } else {
                candidate = healthy.count == 1 ? healthy.first : nil
            }
            if let candidate, let instance = candidate.instance {
                guard candidate.health?.healthy == true else {
                    throw OrchestratorError(
                        .unreachable,
                        "\(candidate.color) carries the traffic but is not healthy: it cannot be adopted as the live release"
                    )
                }
                // The newest record that promoted the model and, since a rollback record names the
                // release it returned to only through the model, the oldest release that built it.
                var release: ReleaseRecord?
                var builtBy: ReleaseRecord?
                try history.forEachLineNewestFirst { line in
                    guard let record = line.record, record.outcome == .succeeded,
                        record.deployment?.modelSHA256 == instance.modelSHA256
                    else { return true }
                    if release == nil { release = record }
                    if record.action == .release { builtBy = record }
                    return true
                }
                guard let release else {
                    throw OrchestratorError(
                        .inconsistentState,
                        "\(candidate.color) serves model \(instance.modelSHA256.prefix(12)), which no promoted release in \(history.path) recorded",
                        hint: "`orchestrate rollback --to RELEASE` puts a recorded release back")
                }
                let origin = builtBy ?? release
                adopted = LiveRelease(
                    color: candidate.color, releaseID: origin.releaseID, modelSHA256: instance.modelSHA256,
                    modelVersion: instance.modelVersion)
                actions.append(
                    "write \(store.livePath): \(candidate.color) is live with release \(origin.releaseID) (model \(instance.modelSHA256.prefix(12)), healthy)"
                )
            } else if unreadable {
                throw OrchestratorError(
                    .inconsistentState,
                    "\(store.livePath) is unreadable and no single healthy colour carries the traffic: nothing names the live release",
                    hint: "`orchestrate rollback --to RELEASE` puts a named release back and writes current.json")
            }
        }
        let target = adopted ?? live
        let strays = serving.strays(live: target, keptModels: try keptModels())
        for color in strays {
            actions.append(
                "stop \(color.color): it runs model \(color.instance?.modelSHA256.prefix(12) ?? "") with no traffic and no run owns it"
            )
        }
        if let target, let nginx = deployment.nginx {
            let color = serving.colors.first { $0.color == target.color }
            if let instance = color?.instance, color?.health?.healthy == true {
                if !serving.nginxRunning || color?.weight != 100
                    || Set(color?.upstream ?? []) != Set(instance.addresses)
                {
                    let orphans = serving.nginxOrphanedWorkers.map(String.init).joined(separator: ", ")
                    actions.append(
                        (orphans.isEmpty
                            ? ""
                            : "nginx's master is gone: all traffic to \(target.color) on its orphaned workers (pid \(orphans)) first, then they stop and a fresh nginx starts; ")
                            + "nginx: all traffic to \(target.color) at \(instance.addresses.joined(separator: ", "))")
                }
            } else {
                throw OrchestratorError(
                    .unreachable,
                    "the live colour \(target.color) (release \(target.releaseID)) is not running or not healthy: repair cannot make it serve",
                    hint: "`orchestrate rollback --to \(target.releaseID)` redeploys it")
            }
            if dryRun || actions.isEmpty { return RepairReport(actions: actions, applied: false, record: nil) }
            if unreadable { progress("repair: kept the unreadable file as \(try store.moveAside(store.livePath))") }
            if let adopted { try store.setLive(adopted) }
            if let instance = color?.instance,
                !serving.nginxRunning || color?.weight != 100 || Set(color?.upstream ?? []) != Set(instance.addresses)
            {
                let mode: TrafficSplit.Mode = pipeline.traffic?.mode == .weighted ? .weighted : .sticky
                try await nginx.apply(TrafficSplit(mode: mode, backends: [instance.backend(weight: 100)]))
            }
        } else if dryRun || actions.isEmpty {
            return RepairReport(actions: actions, applied: false, record: nil)
        } else {
            if unreadable { progress("repair: kept the unreadable file as \(try store.moveAside(store.livePath))") }
            if let adopted { try store.setLive(adopted) }
        }
        for color in strays { try await deployment.runtime.stop(color: color.color) }
        for action in actions { progress("repair: \(action)") }
        var record = await newRecord(releaseID: RunIdentity.releaseID(), action: .repair)
        if let target {
            record.deployment = .init(
                runtime: deployment.runtime.name, color: target.color, modelSHA256: target.modelSHA256)
            record.rollout = .init(
                live: target.color, target: target.color, mode: pipeline.traffic?.mode.rawValue ?? "none", steps: [],
                events: actions.map { RolloutEvent(at: Date(), kind: .recover, detail: $0) })
        }
        record.outcome = .succeeded
        record.finishedOn = Date()
        return RepairReport(actions: actions, applied: true, record: try history.append(record))
    }
}
