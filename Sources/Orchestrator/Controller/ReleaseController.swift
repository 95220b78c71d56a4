import DeploymentRuntimes
import Foundation
public import Logging
import OrchestratorSupport
public import PipelineSchema
public import Provenance
import RecEngineContract
import StrictYAML
import Subprocess
import Traffic

/// The release controller of one pipeline: what the command line calls. `run` plans once and
/// carries out the plan (stages, then the rollout); `status`, `rollback`, `recover`, `repair` and
/// `request` act on what is deployed. Every mutating action takes the pipeline's lock and first
/// converges a run a killed controller left behind.
public struct ReleaseController: Sendable {
    public var pipeline: Pipeline
    public var options: RunOptions
    /// Progress for people, as typed events (the CLI renders each as a line of text or of JSON),
    /// with the pipeline's secrets redacted; each is also logged (debug level) to the logger.
    public var events: @Sendable (ProgressEvent) -> Void
    /// A line of progress of the stages, recovery or the controller (a `.note` event).
    public var progress: @Sendable (String) -> Void { { [events] line in events(.note(line)) } }

    public init(
        pipeline: Pipeline, options: RunOptions = RunOptions(), logger: Logger = Logger(label: "orchestrate"),
        events: @escaping @Sendable (ProgressEvent) -> Void
    ) {
        self.pipeline = pipeline
        var options = options
        // A secret given on the command line (--set stages.x.env.API_TOKEN=...) is not recorded.
        options.command = pipeline.redaction.redact(options.command)
        options.overrides = pipeline.redaction.redact(options.overrides)
        self.options = options
        let redaction = pipeline.redaction
        self.events = { event in
            let shown = redaction.values.isEmpty ? event : redaction.redacted(event)
            shown.log(to: logger)
            events(shown)
        }
    }

    /// A controller whose progress is shown as lines of text.
    public init(
        pipeline: Pipeline, options: RunOptions = RunOptions(),
        progress: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.init(pipeline: pipeline, options: options, events: { progress($0.text) })
    }

    public var store: StateStore { StateStore(pipeline: pipeline) }
    public var history: ReleaseHistory { ReleaseHistory(path: pipeline.history, signingKey: options.signingKey) }
    var pipelineFolder: String { URL(fileURLWithPath: pipeline.file).deletingLastPathComponent().path }

    /// The runtime and nginx of the pipeline's deploy section (nil without one).
    func deployment() throws -> (deploy: DeploySpec, runtime: any DeploymentRuntime, nginx: NginxController?)? {
        guard let deploy = pipeline.deploy else { return nil }
        let runtime = try RuntimeFactory.make(deploy, pipeline: pipeline, store: store, options: options)
        let nginx = pipeline.traffic.map { traffic in
            NginxController(
                config: NginxConfig(
                    listenPort: traffic.listen, runtimeFolder: store.nginxFolder, modules: runtime.loadBalancer.modules),
                configPath: traffic.nginxConfig, host: runtime.loadBalancer)
        }
        return (deploy, runtime, nginx)
    }

    func recovery(
        _ deployment: (deploy: DeploySpec, runtime: any DeploymentRuntime, nginx: NginxController?)?
    ) -> Recovery {
        Recovery(
            pipeline: pipeline, store: store, runtime: deployment?.runtime, nginx: deployment?.nginx, history: history,
            progress: progress)
    }

    /// Takes the pipeline's lock, once the history is known to be a history (a `history:` key
    /// naming some other file stops the action before the lock file is made next to it).
    func lock(releaseID: String) throws -> RunLock {
        try history.checkIsHistory()
        return try RunLock(
            historyPath: pipeline.history,
            holder: .init(
                pid: getpid(), user: RunIdentity.user, host: RunIdentity.host, since: Date(), releaseID: releaseID,
                command: options.command))
    }

    func newRecord(releaseID: String, action: ReleaseAction) async -> ReleaseRecord {
        var record = ReleaseRecord(
            releaseID: releaseID, startedOn: Date(), finishedOn: nil,
            invocation: .init(
                trigger: options.trigger, user: RunIdentity.user, host: RunIdentity.host, command: options.command),
            builder: .init(id: "orchestrate", version: RunIdentity.version), source: await gitSource(),
            pipeline: .init(name: pipeline.name, path: pipeline.file, sha256: pipeline.sha256),
            overrides: options.overrides, dryRun: options.dryRun,
            stages: [], model: nil, outcome: .running)
        record.action = action
        return record
    }

    /// The git commit of the pipeline's folder, and whether the work tree has changes.
    func gitSource() async -> ReleaseRecord.Source {
        func git(_ arguments: [String]) async -> String? {
            guard
                let result = try? await Subprocess.run(
                    .name("git"), arguments: Arguments(["-C", pipelineFolder] + arguments),
                    output: .string(limit: 1 << 20), error: .discarded),
                result.terminationStatus.isSuccess
            else { return nil }
            return result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard let commit = await git(["rev-parse", "HEAD"]) else { return .init(gitCommit: nil, gitDirty: nil) }
        let status = await git(["status", "--porcelain"])
        return .init(gitCommit: commit, gitDirty: status.map { !$0.isEmpty })
    }

    // MARK: Requests to a run in progress

    /// Asks the rollout in progress (another process) to abort, approve or promote, saying who
    /// asks (`by`: recorded and told when it answers a webhook gate); returns its state.
    ///
    /// - Throws: `.stageFailed` (exit 1) when no rollout is in progress.
    public func request(_ control: ControlRequest, by: String? = nil) throws -> RunState {
        guard let run = try store.run(), kill(run.pid, 0) == 0, run.phase != .stages else {
            throw OrchestratorError(
                .stageFailed, "no rollout is in progress for \(pipeline.deploy?.service ?? pipeline.name)",
                hint: "orchestrate status shows what is live")
        }
        if control == .approve && run.waiting == nil {
            throw OrchestratorError(
                .stageFailed,
                "release \(run.releaseID) waits for no webhook gate (\(run.phase.rawValue) at \(run.weight)%)",
                hint: "orchestrate status --watch shows what it waits for; promote ends a step's wait")
        }
        try store.request(control, by: by)
        return run
    }

    // MARK: Recovery

    /// Converges an interrupted run, if any, and records it. With none, workers that a killed
    /// nginx master left serving are replaced by a fresh nginx all the same (as `repair` does,
    /// recorded as a repair): what a killed process left behind is recovered. Then, if the
    /// history still ends in a torn line, the repair is recorded (the append keeps the torn bytes
    /// aside and replaces them). Returns the record appended, nil when there was nothing to do.
    public func recover() async throws -> ReleaseRecord? {
        let lock = try lock(releaseID: "recover")
        defer { lock.release() }
        let deployment = try deployment()
        let recovered = try await observing { observers in
            let recovered = try await recovery(deployment).converge()
            if let recovered {
                observers.observe(RunEvent(releaseID: recovered.releaseID, at: Date(), kind: .recovered(recovered)))
            }
            return recovered
        }
        if let recovered { return recovered }
        if let deployment, let nginx = deployment.nginx, !(await nginx.orphanedWorkers()).isEmpty {
            progress("recover: no run was interrupted, but nginx's master is gone and its workers serve on: repairing")
            return try await repairHoldingLock(deployment, dryRun: false).record
        }
        return try await repairHistory()
    }

    /// What `recover` would do now with the interrupted run (`recover --dry-run`): the same plan
    /// `recover` carries out, by reading only; nil when no run was interrupted.
    public func recoveryPlan() async throws -> RunPlan.PlannedRecovery? {
        try await recovery(try deployment()).plan().map(RunPlan.PlannedRecovery.init)
    }

    /// Replaces a torn last line of the history with a record of the repair; nil when the
    /// history ends cleanly.
    func repairHistory() async throws -> ReleaseRecord? {
        guard try history.tornTail() != nil else { return nil }
        var record = await newRecord(releaseID: RunIdentity.releaseID(), action: .repair)
        record.outcome = .succeeded
        record.finishedOn = Date()
        let written = try history.append(record)
        if let repair = written.historyRepair { progress("recover: \(repair.summary)") }
        return written
    }
}
