import Foundation
import RecEngineContract
import Subprocess

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// Asks `recengine check-source` whether a movie log source can be reached, so that a run stops
/// before any change when Kafka's brokers do not answer.
enum LogSourceCheck {
    /// The longest the check may take: the brokers get 10 s, the process the rest.
    static let timeout = Duration.seconds(30)
    /// The most of its answer read (one small JSON object).
    static let answerLimit = 64 << 10

    /// The check's answer; nil when it could not be made (the program is missing, it timed out,
    /// or its answer is not one).
    static func run(source: String, recengine: String) async -> SourceCheck? {
        let answer = await withTaskGroup(of: Data?.self) { group in
            group.addTask {
                let executable: Executable = recengine.contains("/") ? .path(FilePath(recengine)) : .name(recengine)
                var options = PlatformOptions()
                options.teardownSequence = [.gracefulShutDown(allowedDurationToNextStep: .seconds(2))]
                guard
                    let result = try? await Subprocess.run(
                        executable,
                        arguments: ["check-source", "--source", source, "--timeout", "10", "--output", "json"],
                        platformOptions: options, output: .bytes(limit: answerLimit), error: .discarded)
                else { return nil }
                return Data(result.standardOutput)
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            return await group.next() ?? nil
        }
        return answer.flatMap { try? JSONDecoder().decode(SourceCheck.self, from: $0) }
    }
}
