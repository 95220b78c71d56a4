import Foundation
import StrictYAML
import EngineAPI
import RecEngine
import Subprocess

extension PipelineRunner {
    /// The result of `run`: the plan, and the record when one was written.
    public struct RunResult: Sendable {
        public var plan: RunPlan
        public var record: ReleaseRecord?

        /// The documented exit code for this result.
        public var exitCode: Int32 {
            guard let record else { return ExitStatus.success }
            return record.outcome == "failed" || record.outcome == "rolled_back" ? ExitStatus.failed : ExitStatus.success
        }
    }

    /// Runs the pipeline (or, with `dryRun`, only plans it).
    ///
    /// - Throws: `OrchestratorError` `.locked` when another run holds the lock, `.invalidInput`
    ///   for an unknown `--skip`; a failing stage or gate is not thrown but recorded, with outcome
    ///   `failed`.
    public func run() async throws -> RunResult {
        let releaseID = Self.newReleaseID()
        let plan = try plan(releaseID: releaseID)
        if options.dryRun && !options.recordDryRun {
            return RunResult(plan: plan, record: nil)
        }
        let lock = try RunLock(
            historyPath: pipeline.history,
            holder: .init(
                pid: getpid(), user: Self.user, host: Self.host, since: Date(), releaseID: releaseID, command: options.command))
        defer { lock.release() }
        var record = ReleaseRecord(
            releaseID: releaseID, startedOn: Date(), finishedOn: nil,
            invocation: .init(trigger: options.trigger, user: Self.user, host: Self.host, command: options.command),
            builder: .init(id: "orchestrate", version: Self.version), source: await gitSource(), pipeline: reference,
            overrides: options.overrides, dryRun: options.dryRun, stages: [], model: nil, outcome: "running")
        if options.dryRun {
            record.stages = plan.stages.map { planned in
                .init(
                    status: "planned", name: planned.name, uses: planned.uses, argv: planned.argv, parameters: planned.parameters,
                    attempts: 0, durationSeconds: 0, inputs: [], outputs: [], metrics: [:], gates: [], reason: planned.reason)
            }
            record.outcome = "planned"
            record.finishedOn = Date()
            return RunResult(plan: plan, record: try history.append(record))
        }

        let rollout = try makeRollout()
        if let rollout {
            // A rollout a killed controller left behind is converged and recorded first.
            _ = try await rollout.recover(history: history)
        }
        progress("release \(releaseID) of \(pipeline.name) (\(pipeline.file))")
        // What the rollout needs (Prometheus, nginx) is checked before anything runs or changes.
        var unreachable: OrchestratorError?
        if let rollout {
            do {
                try await rollout.preflight()
            } catch let error as OrchestratorError where error.code == .unreachable {
                unreachable = error
                record.failure = error.message
            }
        }
        if unreachable == nil, let error = await checkLogSources() {
            unreachable = error
            record.failure = error.message
        }
        let records = try history.records()
        var failed = unreachable != nil
        for (index, stage) in pipeline.stages.enumerated() {
            let label = "[\(index + 1)/\(pipeline.stages.count)] \(stage.name)"
            if failed {
                let reason = unreachable == nil ? "an earlier stage failed" : "a required service is unreachable"
                record.stages.append(Self.emptyRecord(stage, status: "not_run", reason: reason))
                continue
            }
            if options.skip.contains(stage.name) {
                progress("\(label): skipped (--skip)")
                record.stages.append(Self.emptyRecord(stage, status: "skipped", reason: "--skip \(stage.name)"))
                continue
            }
            let stageRecord = await runStage(stage, label: label, records: records, releaseID: releaseID)
            record.stages.append(stageRecord)
            failed = stageRecord.status == "failed"
            if failed { record.failure = "stage \(stage.name): \(stageRecord.error ?? "failed")" }
        }
        if let modelPath = pipeline.deploy?.model, !failed {
            let digest = try? ArtifactDigest.of(modelPath + "/" + ModelDirectory.tensorsFile)
            let manifest = try? ModelDirectory.load(from: modelPath).manifest
            record.model = .init(path: modelPath, sha256: digest?.sha256, version: manifest?.displayVersion)
        }
        record.outcome = failed ? "failed" : "succeeded"
        if let rollout, !failed, let modelPath = pipeline.deploy?.model {
            record.outcome = try await rollout.release(modelDirectory: modelPath, record: &record)
        }
        record.finishedOn = Date()
        let written = try history.append(record)
        let elapsed = (record.finishedOn ?? Date()).timeIntervalSince(record.startedOn)
        progress("release \(releaseID) \(record.outcome) in \(String(format: "%.1f", elapsed)) s; recorded in \(pipeline.history)")
        if let unreachable { throw unreachable }
        return RunResult(plan: plan, record: written)
    }

    /// The rollout for the pipeline's deploy section, nil without one.
    func makeRollout() throws -> Rollout? {
        guard let deploy = pipeline.deploy else { return nil }
        let state = DeploymentState(pipeline: pipeline)
        if deploy.runtime == "docker", let docker = deploy.docker {
            let runtime = DockerRuntime(
                engine: try DockerEngine.configured(host: docker.host, certificates: docker.certificates), composePath: docker.compose,
                project: deploy.service, stateFolder: state.folder, nginxFolder: state.nginxFolder,
                nginxConfig: pipeline.traffic?.nginxConfig ?? state.folder + "/nginx.conf")
            return Rollout(
                pipeline: pipeline, deploy: deploy, runtime: runtime, nginxHost: ContainerNginx(runtime: runtime), noStagedShift: options.noStagedShift,
                progress: progress)
        }
        let runtime = ProcessRuntime(stateFolder: state.folder, recengine: options.recengineBinary, serveArguments: deploy.args)
        return Rollout(pipeline: pipeline, deploy: deploy, runtime: runtime, noStagedShift: options.noStagedShift, progress: progress)
    }

    static func emptyRecord(_ stage: Stage, status: String, reason: String?) -> ReleaseRecord.StageRecord {
        ReleaseRecord.StageRecord(
            status: status, name: stage.name, uses: stage.uses, argv: stage.argv, parameters: stage.parameters, attempts: 0,
            durationSeconds: 0, inputs: [], outputs: [], metrics: [:], gates: [], reason: reason)
    }

    /// Runs one stage with its retries and timeout, or reuses it from the cache; never throws:
    /// every failure is a `failed` record with its reason.
    func runStage(_ stage: Stage, label: String, records: [ReleaseRecord], releaseID: String) async -> ReleaseRecord.StageRecord {
        var result = Self.emptyRecord(stage, status: "running", reason: nil)
        let clock = ContinuousClock()
        let start = clock.now
        do {
            let decision = try cacheDecision(for: stage, in: records)
            result.fingerprint = decision.fingerprint
            result.inputs = try stage.inputs.map(ArtifactDigest.of)
            if let missing = result.inputs.first(where: { $0.sha256 == nil }) {
                throw OrchestratorError(.stageFailed, "input \(missing.path) does not exist", hint: "an earlier stage or the ingest source should create it")
            }
            if decision.cached, let previous = decision.previous {
                result.status = "cached"
                result.reason = decision.reason
                result.metrics = previous.metrics
                result.outputs = previous.outputs
                progress("\(label): cached (\(decision.reason))")
            } else {
                progress("\(label): running (\(decision.reason))")
                var attempt = 0
                while true {
                    attempt += 1
                    result.attempts = attempt
                    do {
                        result.metrics = try await execute(stage, releaseID: releaseID, records: records, record: &result)
                        break
                    } catch let error where attempt <= stage.retries {
                        progress("\(label): attempt \(attempt) failed: \(error); retrying (\(stage.retries - attempt + 1) left)")
                        try await Task.sleep(for: .seconds(1))
                    }
                }
                result.outputs = try stage.outputs.map(ArtifactDigest.of)
                if let missing = result.outputs.first(where: { $0.sha256 == nil }) {
                    throw OrchestratorError(.stageFailed, "the stage finished but did not write its output \(missing.path)")
                }
                result.status = "succeeded"
            }
            result.durationSeconds = (clock.now - start).seconds
            let summary = result.metrics.sorted { $0.key < $1.key }.map { "\($0.key)=\(formatMetric($0.value))" }.joined(separator: " ")
            if result.status == "succeeded" {
                progress("\(label): done in \(String(format: "%.2f", result.durationSeconds)) s\(summary.isEmpty ? "" : "  \(summary)")")
            }
            for output in result.outputs where result.status == "succeeded" {
                progress("    wrote \(output.path) (sha256 \(output.sha256?.prefix(12) ?? "-"), \(output.size ?? 0) bytes)")
            }
            result.gates = stage.gate.map { threshold in
                let value = result.metrics[threshold.metric]
                return ReleaseRecord.GateVerdict(
                    metric: threshold.metric, condition: threshold.condition, value: value, passed: value.map(threshold.admits) ?? false)
            }
            for verdict in result.gates {
                let value = verdict.value.map(formatMetric) ?? "not reported"
                progress("    gate \(verdict.metric) \(verdict.condition): \(value) \(verdict.passed ? "passed" : "FAILED")")
            }
            if let failedGate = result.gates.first(where: { !$0.passed }) {
                result.status = "failed"
                result.error =
                    failedGate.value == nil
                    ? "gate \(failedGate.metric): the stage reported no such metric"
                    : "gate \(failedGate.metric) \(failedGate.condition) failed with \(formatMetric(failedGate.value ?? .nan))"
            }
        } catch {
            result.status = "failed"
            result.error = "\(error)"
            result.durationSeconds = (clock.now - start).seconds
            progress("\(label): FAILED after \(String(format: "%.2f", result.durationSeconds)) s: \(error)")
        }
        return result
    }

    /// Executes a stage once and returns the metrics it reports.
    func execute(_ stage: Stage, releaseID: String, records: [ReleaseRecord], record: inout ReleaseRecord.StageRecord) async throws -> [String: Double] {
        switch stage.action {
        case .builtin(let kind, let parameters):
            let baseline = kind == .ingest ? Self.baselineShares(for: stage, in: records) : nil
            let work = Task.detached { try BuiltinStageRunner.run(kind, parameters, baselineShares: baseline) }
            let outcome: BuiltinStageRunner.Outcome
            if let timeout = stage.timeout {
                outcome = try await withThrowingTaskGroup(of: BuiltinStageRunner.Outcome?.self) { group in
                    group.addTask { try await work.value }
                    group.addTask {
                        try await Task.sleep(for: timeout.duration)
                        return nil
                    }
                    defer { group.cancelAll() }
                    guard let outcome = try await group.next() ?? nil else {
                        throw OrchestratorError(.stageFailed, "timed out after \(timeout)")
                    }
                    return outcome
                }
            } else {
                outcome = try await work.value
            }
            if let report = outcome.ingest {
                record.ingest = report
                reportIngest(report)
                if let interruption = report.interruption {
                    throw OrchestratorError(
                        .stageFailed, "the log source failed part way: \(interruption)",
                        hint: "what was read before it is committed (\(report.lines) lines); run again to go on from there")
                }
            }
            return outcome.metrics
        case .command(let argv):
            let logPath = "\(logsFolder)/\(releaseID)/\(stage.name).log"
            record.log = logPath
            let outcome =
                if let image = stage.image {
                    try await runInContainer(stage, argv: argv, image: image, logPath: logPath)
                } else {
                    try await CommandRunner.run(
                        argv, environment: stage.env, workingDirectory: pipelineFolder, logPath: logPath, timeout: stage.timeout?.duration)
                }
            record.exitStatus = outcome.exitStatus
            let tail = CommandRunner.tail(of: logPath)
            let output = tail.isEmpty ? "" : "\n  last lines of \(logPath):\n" + tail.split(separator: "\n").map { "    \($0)" }.joined(separator: "\n")
            if outcome.timedOut {
                throw OrchestratorError(.stageFailed, "timed out after \(stage.timeout?.description ?? "?"); the command was stopped\(output)")
            }
            guard outcome.exitStatus == 0 else {
                throw OrchestratorError(.stageFailed, "\(shellQuoted(argv)) exited with status \(outcome.exitStatus ?? -1)\(output)")
            }
            guard let metricsFile = stage.metricsFile else { return [:] }
            return try Self.readMetrics(metricsFile)
        }
    }

    /// The Kafka brokers of the ingest stages that will run, checked before anything changes.
    func checkLogSources() async -> OrchestratorError? {
        for stage in pipeline.stages where !options.skip.contains(stage.name) {
            guard case .builtin(.ingest, let parameters) = stage.action, parameters["format"] == .string("movielog"),
                case .string(let text)? = parameters["source"], let source = try? MovieLogSource(parsing: text)
            else { continue }
            let check = Task.detached { try MovieLogIngest.checkReachable(source) }
            do {
                try await check.value
            } catch let error as RecEngineError where error.code == .unavailable {
                return OrchestratorError(
                    .unreachable, "stage \(stage.name): \(error.message); nothing was changed", hint: error.hint)
            } catch {
                continue
            }
        }
        return nil
    }

    /// The rating shares the ingest stage reported in the newest succeeded (with a deploy
    /// section: promoted) release, nil when there is none.
    static func baselineShares(for stage: Stage, in records: [ReleaseRecord]) -> [Double]? {
        for record in records.reversed() where record.outcome == "succeeded" && !record.dryRun {
            guard let entry = record.stages.first(where: { $0.name == stage.name }) else { continue }
            let shares = (1...5).compactMap { entry.metrics["rating_share_\($0)"] }
            if shares.count == 5 { return shares }
        }
        return nil
    }

    func reportIngest(_ report: IngestReport) {
        let rejected = report.rejectedByReason.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        progress(
            "    read \(report.lines) lines from \(report.source) (\(report.mode.rawValue)): \(report.ratingsNew) new ratings, \(report.ratingsUpdated) updated, \(report.watches) watches, \(report.rejected) rejected\(rejected.isEmpty ? "" : " (\(rejected))")"
        )
        if let rejectsFile = report.rejectsFile, report.rejected > 0 { progress("    rejected lines: \(rejectsFile)") }
        for note in report.notes { progress("    note: \(note)") }
    }

    /// A command stage with `image:`: its argument vector in a one-off container of the
    /// pipeline's compose project, the pipeline's folder (and those of its inputs and outputs)
    /// bind-mounted at the same paths, the log written like a local command's.
    func runInContainer(_ stage: Stage, argv: [String], image: String, logPath: String) async throws -> CommandRunner.Outcome {
        let docker = pipeline.deploy?.docker
        let engine: DockerEngine
        do {
            engine = try await DockerEngine.configured(host: docker?.host, certificates: docker?.certificates).negotiated()
        } catch let error as DockerError {
            throw OrchestratorError(.stageFailed, "\(error)", hint: "the stage runs in a container: start the engine or set DOCKER_HOST")
        }
        let project = ComposeProject(engine: engine, file: ComposeFile(path: pipeline.file, project: pipeline.name, services: [:], networks: []))
        let mounts = (stage.inputs + stage.outputs + [stage.metricsFile].compactMap { $0 }).map { ($0 as NSString).deletingLastPathComponent }
        for folder in mounts { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        let run: (status: Int?, logs: String)
        do {
            run = try await project.runOnce(
                image: image, command: argv, folder: pipelineFolder, mounts: mounts, environment: stage.env, name: stage.name,
                timeout: stage.timeout?.duration)
        } catch let error as DockerError {
            throw OrchestratorError(.stageFailed, "\(error)")
        }
        try FileManager.default.createDirectory(atPath: (logPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(run.logs.utf8).write(to: URL(fileURLWithPath: logPath))
        return CommandRunner.Outcome(exitStatus: run.status.map { Int32($0) }, signalled: false, timedOut: run.status == nil)
    }

    static func readMetrics(_ path: String) throws -> [String: Double] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw OrchestratorError(.stageFailed, "the command did not write its metrics file \(path)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw OrchestratorError(.stageFailed, "the metrics file \(path) is not a JSON object", hint: "write e.g. {\"rmse\": 0.93}")
        }
        return object.compactMapValues { ($0 as? NSNumber)?.doubleValue }
    }

    static var user: String {
        let environment = ProcessInfo.processInfo.environment
        if let name = environment["USER"] ?? environment["LOGNAME"] { return name }
        guard let entry = getpwuid(getuid()), let name = entry.pointee.pw_name else { return "uid \(getuid())" }
        return String(cString: name)
    }
    static var host: String { ProcessInfo.processInfo.hostName }

    /// The git commit of the pipeline's folder, and whether the work tree has changes.
    func gitSource() async -> ReleaseRecord.Source {
        func git(_ arguments: [String]) async -> String? {
            guard
                let result = try? await Subprocess.run(
                    .name("git"), arguments: Arguments(["-C", pipelineFolder] + arguments), output: .string(limit: 1 << 20),
                    error: .discarded),
                result.terminationStatus.isSuccess
            else { return nil }
            return result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard let commit = await git(["rev-parse", "HEAD"]) else { return .init(gitCommit: nil, gitDirty: nil) }
        let status = await git(["status", "--porcelain"])
        return .init(gitCommit: commit, gitDirty: status.map { !$0.isEmpty })
    }
}

func formatMetric(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e12 ? String(Int(value)) : String(format: "%.4f", value)
}
