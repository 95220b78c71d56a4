import DeploymentRuntimes
import EngineAPI
import OrchestratorSupport
import PipelineSchema

/// The runtime a pipeline names.
enum RuntimeFactory {
    static func make(
        _ deploy: DeploySpec, pipeline: Pipeline, store: StateStore, options: RunOptions
    ) throws -> any DeploymentRuntime {
        switch deploy.runtime {
        case "docker":
            guard let docker = deploy.docker else {
                throw OrchestratorError(.invalidInput, "runtime: docker needs deploy.docker")
            }
            return DockerRuntime(
                engine: try DockerEngine.configured(
                    host: docker.host, certificates: docker.certificates, insecure: docker.insecure ?? false),
                composePath: docker.compose,
                project: deploy.service, stateFolder: store.folder, nginxFolder: store.nginxFolder,
                nginxConfig: pipeline.traffic?.nginxConfig ?? store.folder + "/nginx.conf")
        case "swarm":
            guard let swarm = deploy.swarm else {
                throw OrchestratorError(.invalidInput, "runtime: swarm needs deploy.swarm")
            }
            func engine(_ host: String?) throws -> DockerEngine {
                try DockerEngine.configured(
                    host: host, certificates: swarm.certificates, insecure: swarm.insecure ?? false)
            }
            let manager = try engine(swarm.host)
            return SwarmRuntime(
                manager: manager, engines: try (swarm.engines ?? [manager.host]).map(engine), spec: swarm,
                project: deploy.service,
                stateFolder: store.folder, serveArguments: deploy.args)
        default:
            return ProcessRuntime(
                stateFolder: store.folder, recengine: options.recengineBinary, serveArguments: deploy.args)
        }
    }
}
