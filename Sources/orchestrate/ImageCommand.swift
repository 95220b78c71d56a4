import ArgumentParser
import CommandLineSupport
import EngineAPI
import Foundation
import Orchestrator
import OrchestratorSupport
import StrictYAML
import Traffic

/// `orchestrate image import`: the images of the Docker runtime without a registry.
struct ImageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image", abstract: "Images for the Docker runtime on machines without a registry.",
        subcommands: [ImageImportCommand.self])
}

struct ImageImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Build a root filesystem from a program and its shared libraries and import it into the engine.",
        discussion: """
            recengine: the built recengine (next to this orchestrate unless --binary), as \
            localhost/recengine:latest. nginx: this machine's nginx with its Lua module (libnginx-mod-http-lua) \
            and lua-resty-core, as localhost/orchestrate-nginx:latest, for the load balancer container. prometheus: this machine's Prometheus, as \
            localhost/prometheus:latest, for compose/monitoring.yml. Users with Docker can build the first \
            two from the Dockerfile.
            """)

    enum Kind: String, ExpressibleByArgument, CaseIterable {
        case recengine, nginx, prometheus
    }

    @Argument(help: "recengine, nginx or prometheus.") var kind: Kind
    @Option(help: "The image name (default localhost/recengine:latest or localhost/orchestrate-nginx:latest).") var tag:
        String?
    @Option(help: "The program to put in the image (default: recengine next to orchestrate; /usr/sbin/nginx).")
    var binary: String?
    @Option(help: "The engine: unix:///PATH or tcp://HOST:PORT (default DOCKER_HOST, else /var/run/docker.sock).")
    var host: String?
    @Flag(
        help:
            "Allow plain HTTP to a tcp engine that is not on loopback (only on a network you trust); TLS follows the docker CLI's DOCKER_TLS_VERIFY, DOCKER_TLS, DOCKER_CERT_PATH."
    ) var insecure = false

    func run() async throws {
        let engine = try await DockerEngine.configured(host: host, certificates: nil, insecure: insecure).negotiated()
        let repository: String
        let image: RootFilesystemImage
        switch kind {
        case .recengine:
            let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            let program = binary ?? executable.deletingLastPathComponent().appendingPathComponent("recengine").path
            image = .recengine(binary: program)
            repository = tag ?? "localhost/recengine:latest"
        case .nginx:
            let modules = NginxModules.find() ?? .debian
            image = .nginx(binary: binary ?? LocalNginx.find(), modules: [modules.developmentKit, modules.lua])
            repository = tag ?? "localhost/orchestrate-nginx:latest"
        case .prometheus:
            image = RootFilesystemImage(programs: [binary ?? "/usr/bin/prometheus"], folders: ["/tmp", "/prometheus"])
            repository = tag ?? "localhost/prometheus:latest"
        }
        do {
            try await image.importInto(engine, repository: repository)
        } catch let error as DockerError {
            throw OrchestratorError(error.isUnreachable ? .unreachable : .stageFailed, "\(error)", cause: error)
        }
        print("imported \(repository) into \(engine.host)")
    }
}
