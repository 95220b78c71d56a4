public import ArgumentParser
import Foundation
import EngineAPI
import StrictYAML

/// `orchestrate`: the release controller's command line.
public struct OrchestrateCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "orchestrate",
        abstract: "Run declarative ML release pipelines: ingest, train, evaluate, roll out safely, record provenance.",
        discussion: """
            Exit codes: 0 success; 1 a stage or gate failed (or the release was rolled back); 2 invalid \
            input or usage; 3 another run holds the lock; 4 a required service is unreachable before any \
            change was made.
            """,
        version: PipelineRunner.version,
        subcommands: [
            RunCommand.self, ValidateCommand.self, StatusCommand.self, RollbackCommand.self, AbortCommand.self, PromoteCommand.self,
            HistoryCommand.self, ImageCommand.self, ComposeCommand.self,
        ]
    )

    public init() {}

    /// Parses the command line, runs the command and exits with the documented code: argument
    /// errors exit 2 (not ArgumentParser's 64), `OrchestratorError`s with their code's exit code.
    public static func main(arguments: [String]) async -> Never {
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            Foundation.exit(ExitStatus.success)
        } catch let error as OrchestratorError {
            printError("error: \(error)")
            Foundation.exit(error.code.exitCode)
        } catch let error as PipelineValidationError {
            printError("error: \(error)")
            Foundation.exit(ExitStatus.invalidInput)
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if code == .success {
                print(message)
                Foundation.exit(ExitStatus.success)
            }
            if !message.isEmpty { printError(message) }
            Foundation.exit(code == .validationFailure ? ExitStatus.invalidInput : code.rawValue)
        }
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
