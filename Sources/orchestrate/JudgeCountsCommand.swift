import ArgumentParser
import Foundation
import Orchestrator
import OrchestratorSupport

/// `orchestrate judge-counts` (hidden): the judge's decision on counts read from standard input,
/// one JSON request a line, one JSON answer a line (see `JudgeReplay`). Benchmarks/sensitivity
/// asks it what the judge decides at each look of its resampled experiments.
struct JudgeCountsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "judge-counts",
        abstract: "The judge's decision on counts given as JSON lines on standard input (for Benchmarks/sensitivity).",
        shouldDisplay: false
    )

    func run() throws {
        var number = 0
        while let line = readLine(strippingNewline: true) {
            number += 1
            if line.allSatisfy(\.isWhitespace) { continue }
            do {
                let answer = try JudgeReplay.answer(Data(line.utf8))
                print(String(decoding: answer, as: UTF8.self))
                // One answer per request, at once: the benchmark waits for each before the next.
                fflush(nil)
            } catch let error as OrchestratorError {
                throw OrchestratorError(.invalidInput, "standard input, line \(number): \(error.message)")
            }
        }
    }
}
