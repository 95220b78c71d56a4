import ArgumentParser
import CommandLineSupport
import RecEngine
import RecEngineContract

struct CheckSourceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-source",
        abstract: "Check that a movie log source can be reached (Kafka's brokers answer); nothing is read or written.",
        discussion: """
            A controller asks this before a run changes anything. Files and standard input are \
            checked when they are read. Exit codes: 0 reachable, 2 not a source, 4 unreachable.
            """)

    @Option(help: "A log file, a folder of log files, - for standard input, or kafka://HOST:PORT[,HOST:PORT]/TOPIC.")
    var source: String
    @Option(help: "Seconds to wait for the brokers.") var timeout = 10.0
    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard timeout > 0 && timeout <= 600 else {
            throw ValidationError("--timeout must be more than 0 and at most 600 seconds")
        }
    }

    func run() async throws {
        let parsed = try await reportingErrors { try MovieLogSource(parsing: source) }
        var check = SourceCheck(source: source, reachable: true)
        do {
            try MovieLogIngest.checkReachable(parsed, timeout: .milliseconds(Int64(timeout * 1000)))
        } catch let error as RecEngineError where error.code == .unavailable {
            check = SourceCheck(source: source, reachable: false, error: error.message, hint: error.hint)
        }
        if output.output == .json {
            try CommandLineSupport.printJSON(check)
        } else if check.reachable {
            print("\(source) can be reached")
        } else {
            printError("error: \(check.error ?? "unreachable")" + (check.hint.map { "\n  hint: \($0)" } ?? ""))
        }
        if !check.reachable { throw ExitCode(4) }
    }
}
