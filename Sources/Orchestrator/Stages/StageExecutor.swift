import DeploymentRuntimes
import DurableFiles
import EngineAPI
import Foundation
import OrchestratorSupport
import PipelineSchema
import Provenance
import RecEngineContract
import StrictYAML
import TextSafety

/// Carries out the stages of a plan, in order: a planned `run` runs (with its retries and
/// timeout, as a child process whose group a timeout or an interruption stops), a planned
/// `cached` reuses the recorded outputs, a `skipped` is recorded as such. Never throws: every
/// failure is a `failed` stage record with its reason. All it reads is the plan.
struct StageExecutor {
    var plan: RunPlan
    var records: [ReleaseRecord]
    var journal: RunJournal
    var interruption: Interruption
    var progress: @Sendable (String) -> Void

    var logsFolder: String {
        URL(fileURLWithPath: plan.history).deletingLastPathComponent().appendingPathComponent("logs").path
    }
    var pipelineFolder: String { URL(fileURLWithPath: plan.pipeline.path).deletingLastPathComponent().path }

    /// How long a built-in stage's `recengine` gets between SIGTERM and SIGKILL: it keeps nothing
    /// half-written (its outputs are replaced atomically), so it is stopped at once.
    static let builtinGrace: Duration = .milliseconds(500)

    /// Runs every stage; stops at the first failure (the rest are `not_run`) or interruption.
    func run() async -> (stages: [ReleaseRecord.StageRecord], failure: String?) {
        var results: [ReleaseRecord.StageRecord] = []
        var failure: String?
        for (index, stage) in plan.stages.enumerated() {
            let label = "[\(index + 1)/\(plan.stages.count)] \(stage.name)"
            if failure != nil || interruption.isRaised {
                let reason = interruption.isRaised ? "the run was interrupted" : "an earlier stage failed"
                results.append(Self.emptyRecord(stage, status: .notRun, reason: reason))
                continue
            }
            let result = await runStage(stage, label: label)
            results.append(result)
            if result.status == .failed { failure = "stage \(stage.name): \(result.error ?? "failed")" }
            try? await journal.updateRecord { $0.stages = results }
        }
        return (results, failure)
    }

    static func emptyRecord(
        _ stage: RunPlan.PlannedStage, status: StageStatus, reason: String?
    ) -> ReleaseRecord.StageRecord {
        ReleaseRecord.StageRecord(
            status: status, name: stage.name, uses: stage.uses, argv: stage.command,
            parameters: stage.parameters?.values,
            attempts: 0, durationSeconds: 0,
            inputs: [], outputs: [], metrics: [:], gates: [], reason: reason)
    }

    /// The record of a stage of a run refused before it was planned (nothing ran).
    static func emptyRecord(_ stage: Stage, status: StageStatus, reason: String?) -> ReleaseRecord.StageRecord {
        ReleaseRecord.StageRecord(
            status: status, name: stage.name, uses: stage.uses, argv: stage.argv, parameters: stage.parameters?.values,
            attempts: 0, durationSeconds: 0,
            inputs: [], outputs: [], metrics: [:], gates: [], reason: reason)
    }

    func runStage(_ stage: RunPlan.PlannedStage, label: String) async -> ReleaseRecord.StageRecord {
        var result = Self.emptyRecord(stage, status: .running, reason: stage.reason)
        let clock = ContinuousClock()
        let start = clock.now
        switch stage.action {
        case .skipped:
            progress("\(label): skipped (\(stage.reason))")
            result.status = .skipped
            return result
        case .cached:
            guard
                let previous = stage.cachedFrom.flatMap({ release in
                    records.first { $0.releaseID == release }?.stages.first { $0.name == stage.name }
                })
            else {
                result.status = .failed
                result.error = "the plan reuses \(stage.cachedFrom ?? "?"), which is not in the history any more"
                return result
            }
            reuse(previous, inputs: stage.inputDigests, into: &result)
            progress("\(label): cached (\(stage.reason))")
        case .run, .runOrReuse:
            do {
                result.inputs = try stage.inputs.map { path in
                    try stage.inputDigests.first { $0.path == path } ?? ArtifactDigest.of(path)
                }
                if let missing = result.inputs.first(where: { $0.sha256 == nil }) {
                    throw OrchestratorError(
                        .stageFailed, "input \(missing.path) does not exist",
                        hint: "an earlier stage or the ingest source should create it")
                }
                result.fingerprint = Planner.fingerprint(of: stage, inputs: result.inputs)
                if stage.action == .runOrReuse {
                    let decision = try Planner.cacheDecision(
                        for: stage, inputs: result.inputs, records: records, force: false)
                    if decision.cachedFrom != nil, let previous = Planner.lastSuccess(of: stage.name, in: records)?.1 {
                        reuse(previous, inputs: result.inputs, into: &result)
                        result.reason = decision.reason
                        progress("\(label): cached (\(decision.reason))")
                        break
                    }
                }
                try await journal.update {
                    $0.phase = .stages
                    $0.stage = stage.name
                }
                progress("\(label): running (\(stage.reason))")
                var attempt = 0
                while true {
                    attempt += 1
                    result.attempts = attempt
                    let details = SharedValue(result)
                    do {
                        guard
                            let metrics = try await interruption.unlessInterrupted({ [self] in
                                try await execute(stage, details: details)
                            })
                        else {
                            result = details.get()
                            result.status = .interrupted
                            result.error = "interrupted; the stage's process was stopped"
                            result.durationSeconds = (clock.now - start).seconds
                            progress("\(label): interrupted; its process was stopped")
                            return result
                        }
                        result = details.get()
                        result.metrics = metrics
                        break
                    } catch let error where attempt <= stage.retries && !interruption.isRaised {
                        result = details.get()
                        progress(
                            "\(label): attempt \(attempt) failed: \(error); retrying (\(stage.retries - attempt + 1) left)"
                        )
                        try await Task.sleep(for: .seconds(1))
                    } catch {
                        result = details.get()
                        throw error
                    }
                }
                result.outputs = try stage.outputs.map(ArtifactDigest.of)
                if let missing = result.outputs.first(where: { $0.sha256 == nil }) {
                    throw OrchestratorError(
                        .stageFailed, "the stage finished but did not write its output \(missing.path)")
                }
                result.status = .succeeded
            } catch {
                result.status = .failed
                result.error = "\(error)"
                result.durationSeconds = (clock.now - start).seconds
                progress("\(label): FAILED after \(String(format: "%.2f", result.durationSeconds)) s: \(error)")
                return result
            }
        }
        result.durationSeconds = (clock.now - start).seconds
        if result.status == .succeeded {
            let summary = result.metrics.sorted { $0.key < $1.key }.map { "\($0.key)=\(formatMetric($0.value))" }
                .joined(separator: " ")
            progress(
                "\(label): done in \(String(format: "%.2f", result.durationSeconds)) s\(summary.isEmpty ? "" : "  \(summary)")"
            )
            for output in result.outputs {
                progress(
                    "    wrote \(output.path) (sha256 \(output.sha256?.prefix(12) ?? "-"), \(output.size ?? 0) bytes)")
            }
        }
        // A metric that is not a finite number (NaN, infinite, or null in the stage's JSON) fails
        // its gate whatever the bounds: it measured nothing.
        result.gates = stage.gate.map { threshold in
            let value = result.metrics[threshold.metric]
            let passed = value.map(threshold.admits) ?? false
            return ReleaseRecord.GateVerdict(
                metric: threshold.metric, condition: threshold.condition, value: value, passed: passed)
        }
        for verdict in result.gates {
            progress(
                "    gate \(verdict.metric) \(verdict.condition): \(verdict.value.map(formatMetric) ?? "not reported") \(verdict.passed ? "passed" : "FAILED")"
            )
        }
        if let failed = result.gates.first(where: { !$0.passed }) {
            result.status = .failed
            result.error =
                if let value = failed.value {
                    value.isFinite
                        ? "gate \(failed.metric) \(failed.condition) failed with \(formatMetric(value))"
                        : "gate \(failed.metric) \(failed.condition) failed: the stage reported \(failed.metric) = \(formatMetric(value)), not a finite number"
                } else {
                    "gate \(failed.metric): the stage reported no such metric"
                }
        }
        return result
    }

    /// A stage reused from an earlier run: its recorded outputs and metrics.
    func reuse(
        _ previous: ReleaseRecord.StageRecord, inputs: [ArtifactDigest], into result: inout ReleaseRecord.StageRecord
    ) {
        result.status = .cached
        result.inputs = inputs
        result.fingerprint = previous.fingerprint
        result.metrics = previous.metrics
        result.outputs = previous.outputs
        result.rankingProtocol = previous.rankingProtocol
        result.tuning = previous.tuning
    }

    /// Executes a stage once (one attempt) and returns the metrics it reports; the log, exit
    /// status and ingest report go into `details`, also when the attempt fails.
    func execute(
        _ stage: RunPlan.PlannedStage, details: SharedValue<ReleaseRecord.StageRecord>
    ) async throws -> [String: Double] {
        var record = details.get()
        defer { details.set(record) }
        let logPath = "\(logsFolder)/\(plan.releaseID)/\(stage.name).log"
        record.log = logPath
        let builtin = stage.uses != nil
        let outputPath = builtin ? "\(logsFolder)/\(plan.releaseID)/\(stage.name).json" : nil
        let outcome: CommandRunner.Outcome
        if let image = stage.image {
            outcome = try await runInContainer(stage, argv: stage.command, image: image, logPath: logPath)
        } else {
            let role = "stage \(stage.name)"
            let journal = self.journal
            do {
                outcome = try await CommandRunner.run(
                    stage.command,
                    environment: stage.env.merging(journal.childEnvironment(role: role)) { _, marker in marker },
                    workingDirectory: pipelineFolder, logPath: logPath, outputPath: outputPath,
                    timeout: stage.timeout?.duration, grace: builtin ? Self.builtinGrace : .seconds(5),
                    onStart: { pid in try? await journal.track(ProcessTable.track(pid, role: role)) })
            } catch {
                try? await journal.untrack(role: role)
                throw error
            }
            try? await journal.untrack(role: role)
        }
        record.exitStatus = outcome.exitStatus
        let tail = OutsideText.tail(ofFile: logPath)
        let output =
            tail.isEmpty
            ? ""
            : "\n  last lines of \(logPath):\n"
                + tail.split(separator: "\n").map { "    \($0)" }.joined(separator: "\n")
        if outcome.timedOut {
            throw OrchestratorError(
                .stageFailed, "timed out after \(stage.timeout?.description ?? "?"); its process was stopped\(output)")
        }
        guard outcome.exitStatus == 0 else {
            throw OrchestratorError(
                .stageFailed, "\(shellQuoted(stage.command)) exited with status \(outcome.exitStatus ?? -1)\(output)")
        }
        if let outputPath {
            return try readBuiltinOutput(outputPath, stage: stage, record: &record)
        }
        guard let metricsFile = stage.metricsFile else { return [:] }
        return try Self.readMetrics(metricsFile)
    }

    /// The JSON a built-in's `recengine ... --output json` printed: its `metrics`, and for a
    /// movie log ingest the report of what it read.
    func readBuiltinOutput(
        _ path: String, stage: RunPlan.PlannedStage, record: inout ReleaseRecord.StageRecord
    ) throws -> [String: Double] {
        guard let data = try? AtomicFile.read(path, limit: 16 << 20),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let metrics = object["metrics"] as? [String: Any]
        else {
            throw OrchestratorError(
                .stageFailed, "recengine did not print its JSON report (\(path))",
                hint: "is RECENGINE_BIN the recengine of this build?")
        }
        if case .ingest(let ingest)? = stage.parameters, ingest.format != .ratings {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            let report = try decoder.decode(IngestReport.self, from: data)
            record.ingest = report
            reportIngest(report)
        }
        if stage.builtin == .evaluate {
            struct Evaluation: Decodable {
                struct Ranking: Decodable { var `protocol`: RankingProtocol }
                var ranking: Ranking?
            }
            record.rankingProtocol = try? JSONDecoder().decode(Evaluation.self, from: data).ranking?.protocol
        }
        if stage.builtin == .tune {
            let decoder = JSONDecoder()
            decoder.nonConformingFloatDecodingStrategy = NonFiniteNumbers.decoding
            guard let report = try? decoder.decode(TuningReport.self, from: data) else {
                throw OrchestratorError(
                    .stageFailed, "recengine tune printed no tune report (\(path))",
                    hint: "is RECENGINE_BIN the recengine of this build?")
            }
            let tuning = ReleaseRecord.Tuning(report)
            record.tuning = tuning
            progress("    chose \(tuning.summary)")
        }
        return Self.metricNames(metrics.mapValues { ($0 as? NSNumber)?.doubleValue ?? .nan })
    }

    /// Metrics as a record keeps them: each name, which a command or a file chose, escaped and cut
    /// (a gate names a metric by a plain name, which this leaves as it is).
    static func metricNames(_ metrics: [String: Double]) -> [String: Double] {
        Dictionary(
            metrics.map { (OutsideText.bounded($0.key, limit: 200), $0.value) }, uniquingKeysWith: { first, _ in first }
        )
    }

    func reportIngest(_ report: IngestReport) {
        let rejected = report.rejectedByReason.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(
            separator: ", ")
        progress(
            "    read \(report.lines) lines from \(report.source) (\(report.mode.rawValue)): \(report.ratingsNew) new ratings, \(report.ratingsUpdated) updated, \(report.watches) watches, \(report.rejected) rejected\(rejected.isEmpty ? "" : " (\(rejected))")"
        )
        if let rejectsFile = report.rejectsFile, report.rejected > 0 { progress("    rejected lines: \(rejectsFile)") }
        for note in report.notes { progress("    note: \(note)") }
    }

    static func readMetrics(_ path: String) throws -> [String: Double] {
        let data: Data
        switch FileKind.of(path) {
        case .missing:
            throw OrchestratorError(.stageFailed, "the command did not write its metrics file \(path)")
        case .regular(let size) where size <= 1 << 20:
            guard let contents = try? AtomicFile.read(path, limit: 1 << 20) else {
                throw OrchestratorError(.stageFailed, "cannot read the metrics file \(path)")
            }
            data = contents
        case .regular(let size):
            throw OrchestratorError(
                .stageFailed, "the metrics file \(path) is \(size) bytes; a metrics file is at most 1 MiB",
                hint: "write e.g. {\"rmse\": 0.93}")
        case let kind:
            throw OrchestratorError(
                .stageFailed, "the metrics file \(path) is \(kind.description), not a file",
                hint: "write e.g. {\"rmse\": 0.93}")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw OrchestratorError(
                .stageFailed, "the metrics file \(path) is not a JSON object", hint: "write e.g. {\"rmse\": 0.93}")
        }
        // null is a metric the command could not compute (JSON has no NaN): kept as NaN, so that a
        // gate on it fails saying so and the record shows it; strings and other values are not metrics.
        return metricNames(object.compactMapValues { $0 is NSNull ? .nan : ($0 as? NSNumber)?.doubleValue })
    }

    /// A command stage with `image:`: its argument vector in a one-off container of the
    /// pipeline's compose project, the pipeline's folder (and those of its inputs and outputs)
    /// bind-mounted at the same paths, the log written like a local command's.
    func runInContainer(
        _ stage: RunPlan.PlannedStage, argv: [String], image: String, logPath: String
    ) async throws -> CommandRunner.Outcome {
        let docker = plan.docker
        let engine: DockerEngine
        do {
            engine = try await DockerEngine.configured(
                host: docker?.host, certificates: docker?.certificates, insecure: docker?.insecure ?? false
            ).negotiated()
        } catch let error as DockerError {
            throw OrchestratorError(
                .stageFailed, "\(error)", hint: "the stage runs in a container: start the engine or set DOCKER_HOST",
                cause: error)
        } catch let error as EngineClientError {
            throw OrchestratorError(.invalidInput, error.message, hint: error.hint)
        }
        let project = ComposeProject(
            engine: engine,
            file: ComposeFile(path: plan.pipeline.path, project: plan.pipeline.name, services: [:], networks: []))
        let mounts = (stage.inputs + stage.outputs + [stage.metricsFile].compactMap { $0 }).map {
            ($0 as NSString).deletingLastPathComponent
        }
        for folder in mounts { try AtomicFile.createFolder(folder) }
        let run: (status: Int?, logs: String)
        do {
            run = try await project.runOnce(
                image: image, command: argv, folder: pipelineFolder, mounts: mounts, environment: stage.env,
                name: stage.name,
                timeout: stage.timeout?.duration)
        } catch let error as DockerError {
            throw OrchestratorError(.stageFailed, "\(error)", cause: error)
        }
        try AtomicFile.write(Data(run.logs.utf8), to: logPath)
        return CommandRunner.Outcome(
            exitStatus: run.status.map { Int32($0) }, signalled: false, timedOut: run.status == nil)
    }
}
