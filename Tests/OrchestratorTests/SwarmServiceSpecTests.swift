import EngineAPI
import Foundation
import PipelineSchema
import Testing

@testable import DeploymentRuntimes

/// The service spec the swarm runtime sends to create a colour's service, or to replace its spec
/// in an update (`ServiceSpec`, encoded): the same JSON as the dictionaries it replaced sent,
/// which were captured below before the change.
@Suite struct SwarmServiceSpecTests {
    static func runtime(_ swarm: String) throws -> SwarmRuntime {
        SwarmRuntime(
            manager: try DockerEngine(host: "unix:///nonexistent/docker.sock"), engines: [],
            spec: try JSONDecoder().decode(SwarmSpec.self, from: Data(swarm.utf8)), project: "svc",
            stateFolder: "/state", serveArguments: ["--cache-size", "100"])
    }

    static let spread = #"""
        {"image":"localhost/recengine:latest","replicas":3,"minHealthyReplicas":2,"ports":{"blue":18081,"green":18082},
         "constraints":["node.labels.zone != edge"],"spread":["node.labels.zone"],"maxReplicasPerNode":2,"publish":"auto"}
        """#
    static let plain = #"""
        {"image":"localhost/recengine:latest","replicas":1,"minHealthyReplicas":1,"ports":{"blue":18081,"green":18082},
         "constraints":[],"spread":[],"publish":"ingress"}
        """#

    /// The JSON the dictionaries sent, one top-level key a line.
    static let sent = [
        #"""
        {
          "EndpointSpec":{"Mode":"vip","Ports":[{"Protocol":"tcp","PublishMode":"ingress","PublishedPort":18081,"TargetPort":8080}]},
          "Labels":{"orchestrate.color":"blue"},
          "Mode":{"Replicated":{"Replicas":3}},
          "Name":"svc_blue",
          "RollbackConfig":{"Delay":1000000000,"FailureAction":"pause","Monitor":5000000000,"Order":"stop-first","Parallelism":1},
          "TaskTemplate":{"ContainerSpec":{"Command":["recengine","serve","--model","/model","--host","0.0.0.0","--port","8080","--color","blue","--cache-size","100"],"Image":"localhost/recengine-model:abc","Init":true,"Labels":{"orchestrate.color":"blue"},"StopGracePeriod":10000000000},"Placement":{"Constraints":["node.labels.zone != edge"],"MaxReplicas":2,"Preferences":[{"Spread":{"SpreadDescriptor":"node.labels.zone"}}]},"RestartPolicy":{"Condition":"any","Delay":1000000000,"MaxAttempts":0}},
          "UpdateConfig":{"Delay":1000000000,"FailureAction":"rollback","Monitor":5000000000,"Order":"stop-first","Parallelism":1}
        }
        """#,
        #"""
        {
          "EndpointSpec":{"Mode":"vip","Ports":[{"Protocol":"tcp","PublishMode":"host","PublishedPort":18081,"TargetPort":8080}]},
          "Labels":{"orchestrate.color":"blue"},
          "Mode":{"Replicated":{"Replicas":3}},
          "Name":"svc_blue",
          "RollbackConfig":{"Delay":1000000000,"FailureAction":"pause","Monitor":5000000000,"Order":"stop-first","Parallelism":1},
          "TaskTemplate":{"ContainerSpec":{"Command":["recengine","serve","--model","/model","--host","0.0.0.0","--port","8080","--color","blue","--cache-size","100"],"Image":"localhost/recengine-model:abc","Init":true,"Labels":{"orchestrate.color":"blue"},"StopGracePeriod":10000000000},"Placement":{"Constraints":["node.labels.zone != edge"],"MaxReplicas":1,"Preferences":[{"Spread":{"SpreadDescriptor":"node.labels.zone"}}]},"RestartPolicy":{"Condition":"any","Delay":1000000000,"MaxAttempts":0}},
          "UpdateConfig":{"Delay":1000000000,"FailureAction":"rollback","Monitor":5000000000,"Order":"stop-first","Parallelism":1}
        }
        """#,
        #"""
        {
          "EndpointSpec":{"Mode":"vip","Ports":[{"Protocol":"tcp","PublishMode":"ingress","PublishedPort":18081,"TargetPort":8080}]},
          "Labels":{"orchestrate.color":"blue"},
          "Mode":{"Replicated":{"Replicas":1}},
          "Name":"svc_blue",
          "RollbackConfig":{"Delay":1000000000,"FailureAction":"pause","Monitor":5000000000,"Order":"stop-first","Parallelism":1},
          "TaskTemplate":{"ContainerSpec":{"Command":["recengine","serve","--model","/model","--host","0.0.0.0","--port","8080","--color","blue","--cache-size","100"],"Image":"localhost/recengine-model:abc","Init":true,"Labels":{"orchestrate.color":"blue"},"StopGracePeriod":10000000000},"Placement":{"Constraints":[],"Preferences":[]},"RestartPolicy":{"Condition":"any","Delay":1000000000,"MaxAttempts":0}},
          "UpdateConfig":{"Delay":1000000000,"FailureAction":"rollback","Monitor":5000000000,"Order":"stop-first","Parallelism":1}
        }
        """#,
    ]

    static func object(_ data: Data) throws -> NSDictionary {
        try #require(try JSONSerialization.jsonObject(with: data) as? NSDictionary)
    }

    @Test(arguments: [(0, "spread", "ingress"), (1, "spread", "host"), (2, "plain", "ingress")])
    func theSpecIsTheJSONItWas(index: Int, swarm: String, publishMode: String) throws {
        let spec = try Self.runtime(swarm == "spread" ? Self.spread : Self.plain).serviceSpec(
            color: "blue", image: "localhost/recengine-model:abc", labels: ["orchestrate.color": "blue"],
            publishMode: publishMode)
        #expect(try Self.object(try JSONEncoder().encode(spec)) == Self.object(Data(Self.sent[index].utf8)))
    }

    /// An update that must replace the tasks sends the spec with `ForceUpdate` counted up; a spec
    /// without it leaves the key out.
    @Test func forceUpdateIsSentWhenSet() throws {
        var spec = try Self.runtime(Self.plain).serviceSpec(
            color: "green", image: "i", labels: [:], publishMode: "ingress")
        #expect(
            (try Self.object(try JSONEncoder().encode(spec))["TaskTemplate"] as? NSDictionary)?["ForceUpdate"] == nil)
        spec.taskTemplate.forceUpdate = 3
        #expect(
            (try Self.object(try JSONEncoder().encode(spec))["TaskTemplate"] as? NSDictionary)?["ForceUpdate"] as? Int
                == 3)
        #expect(spec.endpointSpec.ports.map(\.publishedPort) == [18082])
    }
}
