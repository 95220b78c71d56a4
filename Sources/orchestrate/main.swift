import Orchestrator

await OrchestrateCommand.main(arguments: Array(CommandLine.arguments.dropFirst()))
