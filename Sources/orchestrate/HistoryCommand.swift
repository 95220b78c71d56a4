import ArgumentParser
import Foundation
import CommandLineSupport
import Orchestrator
import EngineAPI
import StrictYAML

struct HistoryOptions: ParsableArguments {
    @Option(help: "The history file.") var history: String?
    @Option(help: "Read the history path from this pipeline file.") var pipeline: String?

    func resolve() throws -> ReleaseHistory {
        if let history { return ReleaseHistory(path: history) }
        if let pipeline { return ReleaseHistory(path: try PipelineLoader().load(pipeline).history) }
        return ReleaseHistory(path: Pipeline.defaultHistory)
    }
}

struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history", abstract: "Show or verify the release history.",
        subcommands: [HistoryListCommand.self, HistoryVerifyCommand.self], defaultSubcommand: HistoryListCommand.self)
}

struct HistoryListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List releases, newest last.")

    @OptionGroup var source: HistoryOptions
    @Option(help: "Only the last N releases.") var last: Int?
    @Option(help: "text or json.") var output: OutputFormat = .text

    func run() async throws {
        let history = try source.resolve()
        let lines = try history.lines()
        for line in lines where line.problem != nil {
            printError("warning: \(history.path):\(line.number): \(line.problem ?? "")")
        }
        var records = lines.compactMap(\.record)
        if let last { records = Array(records.suffix(max(0, last))) }
        if output == .json {
            try printJSON(records)
            return
        }
        if records.isEmpty {
            print("no releases in \(history.path)")
            return
        }
        let formatter = ISO8601DateFormatter()
        var rows = [["RELEASE", "STARTED", "TRIGGER", "ACTION", "OUTCOME", "COLOUR", "MODEL", "STAGES"]]
        for record in records {
            let action: String = (record.action ?? .release).rawValue
            let outcome: String = record.dryRun ? "dry-run" : record.outcome.rawValue
            let stages: String = record.stages.map { "\($0.name):\($0.status.rawValue)" }.joined(separator: " ")
            let started: String = formatter.string(from: record.startedOn)
            rows.append([record.releaseID, started, record.invocation.trigger, action, outcome, record.deployment?.color ?? "-", record.model?.version ?? "-", stages])
        }
        tableLines(rows).forEach { print($0) }
    }
}

struct HistoryVerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Check the hash chain: detects edited, removed and torn records.")

    @OptionGroup var source: HistoryOptions
    @Option(help: "text or json.") var output: OutputFormat = .text

    struct Report: Encodable {
        var path: String
        var records: Int
        var problems: [ReleaseHistory.Problem]
    }

    func run() async throws {
        let history = try source.resolve()
        let problems = try history.verify()
        let count = try history.records().count
        if output == .json {
            try printJSON(Report(path: history.path, records: count, problems: problems))
        } else if problems.isEmpty {
            print("\(history.path): \(count) records, chain intact")
        } else {
            for problem in problems { printError("\(history.path): \(problem)") }
        }
        if !problems.isEmpty {
            throw OrchestratorError(
                .historyCorrupt, "\(history.path) failed verification with \(problems.count) problem(s)",
                hint: "compare with a backup or the CI artifacts; records after a problem are still readable")
        }
    }
}
