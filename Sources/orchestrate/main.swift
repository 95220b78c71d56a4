import CommandLineSupport

await runCommandLine(OrchestrateCommand.self, arguments: Array(CommandLine.arguments.dropFirst()), classify: OrchestrateCommand.classify)
