import ArgumentParser
import CommandLineSupport
import EngineAPI
import Foundation
import Orchestrator
import OrchestratorSupport
import StrictYAML

/// `orchestrate compose`: the compose files of compose/ brought up through the Engine API, for
/// hosts without the compose CLI.
struct ComposeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compose",
        abstract: "Bring the services of a compose file up or down through the Docker Engine API.",
        discussion: """
            Reads the Compose subset of pipelines/README.md and creates the containers with compose's \
            names and labels (docker compose ps lists them). up leaves unchanged services running and \
            recreates changed ones. PROJECT_ROOT, when unset, is the folder above the compose file's.
            """,
        subcommands: [Up.self, Down.self, List.self])

    struct Options: ParsableArguments {
        @Argument(help: "The compose file.") var file: String
        @Option(help: "The engine: unix:///PATH or tcp://HOST:PORT (default DOCKER_HOST, else /var/run/docker.sock).")
        var host: String?
        @Flag(
            help:
                "Allow plain HTTP to a tcp engine that is not on loopback (only on a network you trust); TLS follows the docker CLI's DOCKER_TLS_VERIFY, DOCKER_TLS, DOCKER_CERT_PATH."
        ) var insecure = false
        @Option(
            name: [.short, .customLong("project-name")],
            help: "The project (default: the file's name:, e.g. a pipeline's deploy.service).")
        var project: String?

        /// The project with its services read (`up`), or only its name (`down`, `ps`: the
        /// variables a runtime fills in need not be set).
        func project(servicesNeeded: Bool = true) async throws -> ComposeProject {
            let path = URL(fileURLWithPath: file).standardized.path
            let root = URL(fileURLWithPath: path).deletingLastPathComponent().deletingLastPathComponent().path
            let variables = ProcessInfo.processInfo.environment["PROJECT_ROOT"] == nil ? ["PROJECT_ROOT": root] : [:]
            let compose =
                servicesNeeded
                ? try ComposeFile.load(path, project: project, variables: variables)
                : ComposeFile(
                    path: path, project: try project ?? ComposeFile.projectName(of: path), services: [:], networks: [])
            do {
                return ComposeProject(
                    engine: try await DockerEngine.configured(host: host, certificates: nil, insecure: insecure)
                        .negotiated(), file: compose)
            } catch let error as DockerError {
                throw OrchestratorError(
                    .unreachable, "\(error)", hint: "start the engine or set DOCKER_HOST", cause: error)
            }
        }
    }

    struct Up: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create or recreate the services that changed; start stopped ones.")
        @OptionGroup var options: Options
        @Argument(help: "Services (default: all).") var services: [String] = []

        func run() async throws {
            let project = try await options.project()
            do {
                let changes = try await project.up(services.isEmpty ? nil : services) { print($0) }
                for (service, change) in changes.sorted(by: { $0.key < $1.key }) {
                    print("\(project.containerName(service)): \(change.rawValue)")
                }
            } catch let error as DockerError {
                throw OrchestratorError(.stageFailed, "\(error)", cause: error)
            }
        }
    }

    struct Down: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove the project's containers and networks.")
        @OptionGroup var options: Options

        func run() async throws {
            let project = try await options.project(servicesNeeded: false)
            try await project.down()
            print("removed the containers and networks of project \(project.file.project)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ps", abstract: "List the project's containers.")
        @OptionGroup var options: Options

        func run() async throws {
            let project = try await options.project(servicesNeeded: false)
            for container in try await project.engine.containers(labels: [
                ComposeProject.Label.project: project.file.project
            ]) {
                print("\(container.name)\t\(container.state)\t\(container.image)")
            }
        }
    }
}
