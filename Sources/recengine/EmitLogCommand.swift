import ArgumentParser
import DurableFiles
import Foundation
import RecEngine

struct EmitLogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emit-log",
        abstract: "Write a realistic movie log from a ratings file, with a share of malformed lines.")

    @OptionGroup var input: RatingsOptions
    @Option(help: "The log file to write.") var out: String
    @Option(help: "Approximate share of malformed lines, 0 to 0.3.") var malformedShare = 0.05
    @Option(help: "Seed of the generated details.") var seed: UInt64 = 1

    func validate() throws {
        guard (0...0.3).contains(malformedShare) else {
            throw ValidationError("--malformed-share must be from 0 to 0.3")
        }
    }

    func run() async throws {
        try await reportingErrors {
            let ratings = try input.load().ratings
            let lines = MovieLogGenerator(malformedShare: malformedShare, seed: seed).lines(for: ratings)
            try AtomicFile.write(Data((lines.joined(separator: "\n") + "\n").utf8), to: out)
            print("wrote \(lines.count) lines for \(ratings.count) ratings to \(out)")
        }
    }
}
