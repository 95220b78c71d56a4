import DeploymentRuntimes
import Foundation
import OrchestratorSupport
import PipelineSchema
public import Provenance
import StrictYAML
public import Traffic

extension ReleaseController {
    /// What `orchestrate status` reports.
    public struct Status: Sendable, Encodable {
        public var service: String
        /// The recorded live release (nil: none recorded, or `liveError` says why it is unknown).
        public var live: LiveRelease?
        public var liveError: String?
        public var nginxRunning: Bool
        /// Workers serving without their master (it was killed); their split is `traffic`.
        public var nginxOrphanedWorkers: [Int32]
        public var traffic: TrafficSplit?
        /// The generation of the split, and whether nginx reported it or it comes from the state file.
        public var trafficGeneration: Int?
        public var trafficSource: NginxController.Source?
        public var colors: [ServingState.Color]
        public var runInProgress: String?
        public var lastRelease: String?
        public var healthy: Bool
        public var problems: [String]
        /// The release windows, the pin and the models marked bad; nil when there are none.
        public var policy: RunPlan.PlannedPolicy? = nil

        enum CodingKeys: String, CodingKey {
            case service, live, traffic, colors, healthy, problems, policy
            case liveError = "live_error"
            case nginxRunning = "nginx_running"
            case nginxOrphanedWorkers = "nginx_orphaned_workers"
            case trafficGeneration = "traffic_generation"
            case trafficSource = "traffic_source"
            case runInProgress = "run_in_progress"
            case lastRelease = "last_release"
        }
    }

    /// The live release, what nginx and every colour actually serve, a run in progress, and
    /// every disagreement between them (`healthy` is false when there is any).
    public func status() async throws -> Status {
        guard let deployment = try deployment() else {
            throw OrchestratorError(.invalidInput, "\(pipeline.file) has no deploy section: nothing is deployed")
        }
        var problems: [String] = []
        var live: LiveRelease?
        var liveError: String?
        do {
            live = try store.live()
        } catch let error as OrchestratorError {
            liveError = error.message
            problems.append("\(error.message): \(error.hint ?? "")")
        }
        let serving = await ServingState.observe(
            colors: deployment.deploy.colors, runtime: deployment.runtime, nginx: deployment.nginx,
            healthPath: deployment.deploy.health.path)
        var inProgress: String?
        var controllerAlive = false
        do {
            if let run = try store.run() {
                let alive = kill(run.pid, 0) == 0 && ProcessTable.startTime(of: run.pid) != nil
                controllerAlive = alive
                inProgress =
                    "release \(run.releaseID) \(run.phase.rawValue)\(run.target.map { " to \($0) at \(run.weight)%" } ?? "") (controller pid \(run.pid) \(alive ? "running" : "gone"))"
                if let waiting = run.waiting { inProgress? += ", \(waiting) (orchestrate approve answers it)" }
                if !alive {
                    problems.append(
                        "release \(run.releaseID) was interrupted: `orchestrate recover` (or the next run) converges it"
                    )
                }
            }
        } catch let error as OrchestratorError {
            inProgress = "unknown (\(error.message))"
            problems.append(
                "an interrupted run whose state is unreadable: `orchestrate recover` converges it from current.json")
        }
        if liveError == nil && inProgress == nil {
            problems += serving.problems(live: live, trafficConfigured: deployment.nginx != nil).map(\.message)
            problems += serving.strays(live: live, keptModels: try keptModels()).map {
                ServingState.strayProblem($0).message
            }
        } else if inProgress != nil {
            // During a rollout the split is expected; only a colour with traffic that is down matters.
            for color in serving.colors where color.weight > 0 && color.health?.healthy != true {
                problems.append(
                    "\(color.color) receives \(color.weight)% of traffic but is \(color.instance == nil ? "not running" : "unhealthy")"
                )
            }
        }
        if let orphans = serving.orphanProblem {
            let remedy =
                inProgress == nil
                ? "`orchestrate repair` replaces them with a fresh nginx serving the live colour"
                : controllerAlive
                    ? "the rollout in progress replaces them with a fresh nginx within a second"
                    : "`orchestrate recover` converges the interrupted run and replaces them with a fresh nginx"
            problems.append("\(orphans): \(remedy)")
        }
        if let torn = try history.tornTail() {
            problems.append(
                "\(history.path):\(torn.number): the history's last line is torn (\(torn.length) bytes with no newline: a write cut short by a crash or a full disk): "
                    + "`orchestrate recover` keeps its bytes aside, removes it and records the repair")
        }
        let policy = try plannedPolicy(now: Date())
        if let bad = policy?.state.badModel(live?.modelSHA256) {
            problems.append(
                "the live model \(bad.modelSHA256.prefix(12)) is marked bad (\(bad.reason)): `orchestrate rollback` replaces it"
            )
        }
        let last = try history.lastRecord()
        var status = Status(
            service: deployment.deploy.service, live: live, liveError: liveError, nginxRunning: serving.nginxRunning,
            nginxOrphanedWorkers: serving.nginxOrphanedWorkers, traffic: serving.traffic,
            trafficGeneration: serving.trafficReport?.state.generation, trafficSource: serving.trafficReport?.source,
            colors: serving.colors, runInProgress: inProgress,
            lastRelease: last.map { "\($0.releaseID) \(($0.action ?? .release).rawValue) \($0.outcome.rawValue)" },
            healthy: problems.isEmpty, problems: problems)
        status.policy = policy
        return status
    }

    /// The models a colour may serve while idle on purpose: with `traffic.stopOld: false`, those
    /// of promoted releases (the previous live colour, kept for a fast rollback); with
    /// `rollback.stopNew: false`, that of the last release (kept after its rollback).
    func keptModels() throws -> Set<String> {
        let keepPromoted = !(pipeline.traffic?.stopOld ?? false)
        var kept = Set<String>()
        var lastReleaseModel: String?
        // One record at a time: a long history is never held whole.
        try history.forEachLine { line in
            guard let record = line.record else { return true }
            if keepPromoted, record.outcome == .succeeded, let model = record.deployment?.modelSHA256 {
                kept.insert(model)
            }
            if (record.action ?? .release) == .release && !record.dryRun { lastReleaseModel = record.model?.sha256 }
            return true
        }
        if !pipeline.rollback.stopNew, let lastReleaseModel { kept.insert(lastReleaseModel) }
        return kept
    }

    /// Puts an earlier promoted release back (`orchestrate rollback`). An interrupted run is
    /// converged first; when that convergence already returned traffic to the live release,
    /// nothing more is rolled back unless `to` names a release.
    public func rollback(to requested: String?) async throws -> ReleaseRecord {
        guard let deployment = try deployment() else {
            throw OrchestratorError(.invalidInput, "\(pipeline.file) has no deploy section: nothing is deployed")
        }
        let releaseID = RunIdentity.releaseID()
        let lock = try lock(releaseID: releaseID)
        defer { lock.release() }
        if let recovered = try await recovery(deployment).converge(), recovered.outcome != .succeeded, requested == nil
        {
            progress(
                "rollback: the interrupted release \(recovered.releaseID) was rolled back by recovery; the live release serves again. "
                    + "Nothing more was rolled back: run orchestrate rollback again to go further back.")
            return recovered
        }
        // With a release named, an unreadable current.json does not stand in the way of an emergency.
        let live = requested == nil ? try store.live() : try? store.live()
        var record = await newRecord(releaseID: releaseID, action: .rollback)
        do {
            try await Rollback(
                pipeline: pipeline, deploy: deployment.deploy, store: store, runtime: deployment.runtime,
                nginx: deployment.nginx, history: history,
                progress: progress
            ).run(to: requested, live: live, record: &record)
            record.outcome = .succeeded
        } catch let error as OrchestratorError
            where error.code == .invalidInput || error.code == .inconsistentState || error.code == .policyRefused
        {
            // Refused before any change (an unknown release, no idle colour, a model marked bad):
            // nothing to record.
            throw error
        } catch {
            record.outcome = .failed
            record.failure = "\(error)"
        }
        record.finishedOn = Date()
        return try history.append(record)
    }
}
