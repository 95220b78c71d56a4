import ArgumentParser
import CommandLineSupport
import Foundation
import Orchestrator
import OrchestratorSupport
import PipelineSchema
import Provenance
import StrictYAML

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run a pipeline: stages, gates, rollout; append the release record.",
        discussion: """
            SIGTERM or SIGINT during a run puts all traffic back on the live colour, stops what the run \
            started, records the release as interrupted and exits 143 (130); a second signal exits at \
            once and the next run converges what is left. Exit 5: traffic and colours were converged \
            but the release could not be recorded (a full disk); `orchestrate recover` records it once \
            there is space.
            """)

    @Argument(help: "The pipeline file (YAML).") var pipeline: String
    @Flag(help: "Print the complete plan and change nothing.") var dryRun = false
    @Flag(help: "With --dry-run: append the plan to the history as a record.") var recordDryRun = false
    @Option(name: .customLong("set"), help: "Override a value, e.g. --set traffic.wait=60s (validated like the file).")
    var overrides: [String] = []
    @Option(help: "Do not run this stage (repeatable), e.g. --skip ingest.") var skip: [String] = []
    @Flag(help: "Run every stage, even when its inputs are unchanged since the last successful run.") var force = false
    @Option(
        help:
            "What started this run: manual, ci or schedule (default: ORCHESTRATE_TRIGGER, else ci when CI is set, else manual)."
    )
    var trigger: String?
    @Flag(help: "Move all traffic at once once the new colour is healthy, without steps.") var noStagedShift = false
    @Option(
        help:
            "Sign the record with this Ed25519 key file (default: ORCHESTRATE_SIGNING_KEY_FILE, else ORCHESTRATE_SIGNING_KEY)."
    )
    var signingKey: String?
    @Option(
        help:
            "text: progress as lines on stderr; json: progress as one JSON object per line on stderr, the record (or, with --dry-run, the plan) on stdout."
    )
    var output: OutputFormat = .text

    func validate() throws {
        if let trigger, !RunOptions.triggers.contains(trigger) {
            throw ValidationError("--trigger must be one of \(RunOptions.triggers.joined(separator: ", "))")
        }
        if recordDryRun && !dryRun { throw ValidationError("--record-dry-run goes with --dry-run") }
    }

    func run() async throws {
        let loaded = try PipelineLoader().load(pipeline, overrides: overrides)
        let options = RunOptions(
            dryRun: dryRun, recordDryRun: recordDryRun, overrides: overrides, skip: skip, force: force,
            trigger: trigger ?? RunOptions.trigger(from: ProcessInfo.processInfo.environment),
            command: CommandLine.arguments,
            noStagedShift: noStagedShift,
            signingKey: try ReleaseSigningKey.resolve(
                file: signingKey, environment: ProcessInfo.processInfo.environment))
        let format: ProgressFormat = output == .json ? .json : .text
        let controller = ReleaseController(
            pipeline: loaded, options: options, events: { event in printError(format.render(event)) })
        let result = dryRun ? try await controller.run() : try await ReleaseService.run(controller)
        switch (output, dryRun) {
        case (.json, true): try printJSON(loaded.redaction.redacted(result.plan))
        case (.json, false): if let record = result.record { try printJSON(loaded.redaction.redacted(record)) }
        case (.text, true): print(loaded.redaction.redact(result.plan.rendered()))
        case (.text, false): break
        }
        if dryRun, let refusal = result.plan.policy?.refusal {
            printError("error: \(refusal)")
            throw ExitCode(ExitStatus.policyRefused)
        }
        if result.exitCode != ExitStatus.success {
            if output == .text, let failure = result.record?.failure {
                printError("error: \(loaded.redaction.redact(failure))")
            }
            throw ExitCode(result.exitCode)
        }
    }
}

struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate", abstract: "Check a pipeline file and report every problem at once.")

    @Argument(help: "The pipeline file (YAML).") var pipeline: String
    @Option(name: .customLong("set"), help: "Overrides to check with the file.") var overrides: [String] = []
    @Option(help: "text or json.") var output: OutputFormat = .text

    struct Report: Encodable {
        var valid: Bool
        var issues: [ValidationIssue]
        /// Every problem found; `issues` keeps the first 1000.
        var problems: Int
        var warnings: [String] = []
    }

    func run() async throws {
        do {
            let loaded = try PipelineLoader().load(pipeline, overrides: overrides)
            if let line = try ReleaseHistory(path: loaded.history).foreignLine() {
                throw PipelineValidationError(issues: [
                    ValidationIssue(
                        file: loaded.history, line: line.number, column: 1, path: "history",
                        message:
                            "line \(line.number) is not a release record: history: must name a release history, or a file that does not exist yet"
                    )
                ])
            }
            let warnings = loaded.judgePowerWarnings()
            if output == .json {
                try printJSON(Report(valid: true, issues: [], problems: 0, warnings: warnings))
            } else {
                for warning in warnings { printError("warning: \(warning)") }
                let parts = [
                    "\(loaded.stages.count) stage\(loaded.stages.count == 1 ? "" : "s") (\(loaded.stages.map(\.name).joined(separator: ", ")))",
                    loaded.deploy.map { "deploy on \($0.runtime)" }, loaded.traffic.map { "traffic steps \($0.steps)" },
                    loaded.analysis.map { "\($0.gates.count) PromQL gate\($0.gates.count == 1 ? "" : "s")" },
                ].compactMap { $0 }
                print("\(pipeline) is valid: \(parts.joined(separator: ", "))")
            }
        } catch let error as PipelineValidationError {
            if output == .json { try printJSON(Report(valid: false, issues: error.issues, problems: error.count)) }
            throw error
        }
    }
}
