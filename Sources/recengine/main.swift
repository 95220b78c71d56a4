import CommandLineSupport

// RecEngine's own errors are reported by each command (`reportingErrors`), with their exit codes.
await runCommandLine(RecEngineCommand.self, arguments: Array(CommandLine.arguments.dropFirst()), classify: { _ in nil })
