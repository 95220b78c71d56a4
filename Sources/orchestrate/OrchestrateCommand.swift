import ArgumentParser
import CommandLineSupport
import EngineAPI
import Foundation
import Orchestrator
import OrchestratorSupport
import PipelineSchema
import Provenance
import StrictYAML

/// `orchestrate`: the release controller's command line.
struct OrchestrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orchestrate",
        abstract: "Run declarative ML release pipelines: ingest, train, evaluate, roll out safely, record provenance.",
        discussion: """
            Exit codes: 0 success; 1 a stage or gate failed (or the release was rolled back); 2 invalid \
            input or usage, or a state file that is unreadable or disagrees with what serves, or a history \
            file that is not a release history; 3 another \
            run holds the lock; 4 a required service (nginx, Prometheus, the engine, the live colour) is \
            unreachable, or answers more than its bound, before any change was made; 5 no space left on \
            the device; 6 rolled back as an invalid experiment (sample ratio mismatch); 7 refused by the \
            release policy (outside the release windows, a pinned release, a model marked bad); 130/143 interrupted by SIGINT/SIGTERM (after \
            traffic went back to the live colour).
            """,
        version: RunIdentity.version,
        subcommands: [
            RunCommand.self, ValidateCommand.self, StatusCommand.self, RollbackCommand.self, AbortCommand.self,
            PromoteCommand.self,
            ApproveCommand.self,
            RecoverCommand.self, RepairCommand.self, ExplainCommand.self, ReportCommand.self, HistoryCommand.self,
            ImageCommand.self, ComposeCommand.self, PinCommand.self, UnpinCommand.self, MarkBadCommand.self,
            JudgeCountsCommand.self,
        ]
    )

    /// The message and exit code of the controller's own errors.
    static func classify(_ error: any Error) -> (message: String, code: Int32)? {
        switch error {
        case let error as OrchestratorError: ("\(error)", error.code.exitCode)
        case let error as PipelineValidationError: ("\(error)", ExitStatus.invalidInput)
        case let error as EngineClientError: ("\(error)", ExitStatus.invalidInput)
        case let error as DockerError: ("\(error)", error.isUnreachable ? ExitStatus.unreachable : ExitStatus.failed)
        default: nil
        }
    }
}

struct PipelineArgument: ParsableArguments {
    @Argument(help: "The pipeline file.") var pipeline: String = "pipelines/pipeline.yml"
    @Option(
        help:
            "Sign the record this appends with this Ed25519 key file (default: ORCHESTRATE_SIGNING_KEY_FILE, else ORCHESTRATE_SIGNING_KEY)."
    )
    var signingKey: String?

    /// - Parameter signing: the action appends a record, signed with the key given (only then is
    ///   the key read, so a bad key never stops a read-only command).
    func controller(
        signing: Bool = false, progress: @escaping @Sendable (String) -> Void = { printError($0) }
    ) throws -> ReleaseController {
        let environment = ProcessInfo.processInfo.environment
        return ReleaseController(
            pipeline: try PipelineLoader().load(pipeline),
            options: RunOptions(
                trigger: RunOptions.trigger(from: environment), command: CommandLine.arguments,
                signingKey: signing ? try ReleaseSigningKey.resolve(file: signingKey, environment: environment) : nil),
            progress: progress)
    }
}
