import CommandLineSupport

// A release watches many children and connections at once: use every descriptor the hard limit allows.
_ = raiseDescriptorLimit()
await runCommandLine(
    OrchestrateCommand.self, arguments: Array(CommandLine.arguments.dropFirst()), classify: OrchestrateCommand.classify)
