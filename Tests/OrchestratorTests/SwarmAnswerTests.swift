import Foundation
import Testing

@testable import EngineAPI

/// The swarm answers of the Docker Engine API as the client reads them (`EngineAnswer.Info`,
/// `Node`, `Service`, `Task` through `JSONAnswer`), on answers in the shape of the API's
/// reference (v1.41) and on malformed ones: a field of another type reads as absent, an answer
/// that is not a list of objects as no entries.
@Suite struct SwarmAnswerTests {
    static let info = #"""
        {"ID":"7TRN:IPZB","Containers":3,"Name":"node-1","ServerVersion":"24.0.7",
         "Swarm":{"NodeID":"k67qz4598weg5unwwffg6z1m1","NodeAddr":"10.0.0.46","LocalNodeState":"active",
                  "ControlAvailable":true,"Error":"","RemoteManagers":[{"NodeID":"k67qz4598weg5unwwffg6z1m1","Addr":"10.0.0.46:2377"}],
                  "Nodes":2,"Managers":1,"Cluster":{"ID":"abajmipo7b4xz5ip2nrla6b11","Version":{"Index":373531},
                  "CreatedAt":"2016-08-18T10:44:24.496525531Z","Spec":{"Name":"default"}}}}
        """#

    @Test func theSwarmMembershipOfAnEngine() {
        #expect(
            DockerEngine.swarmMembership(Data(Self.info.utf8))
                == .init(
                    state: "active", nodeID: "k67qz4598weg5unwwffg6z1m1", isManager: true,
                    clusterID: "abajmipo7b4xz5ip2nrla6b11"))
        let worker = #"{"Swarm":{"NodeID":"w1","LocalNodeState":"active","ControlAvailable":false}}"#
        #expect(
            DockerEngine.swarmMembership(Data(worker.utf8))
                == .init(state: "active", nodeID: "w1", isManager: false, clusterID: ""))
        for answer in [#"{"Swarm":{"LocalNodeState":"inactive","NodeID":""}}"#, "{}", #"{"Swarm":7}"#, "<html>", ""] {
            #expect(
                DockerEngine.swarmMembership(Data(answer.utf8))
                    == .init(state: "inactive", nodeID: "", isManager: false, clusterID: ""), "\(answer)")
        }
        // A field of another type reads as absent.
        #expect(
            DockerEngine.swarmMembership(
                Data(#"{"Swarm":{"LocalNodeState":1,"ControlAvailable":"yes","Cluster":[]}}"#.utf8))
                == .init(state: "inactive", nodeID: "", isManager: false, clusterID: ""))
    }

    static let nodes = #"""
        [{"ID":"24ifsmvkjbyhk","Version":{"Index":8},"CreatedAt":"2016-06-07T20:31:11.853781916Z",
          "Spec":{"Name":"my-node","Role":"manager","Availability":"active","Labels":{"zone":"a"}},
          "Description":{"Hostname":"bf3067039e47","Platform":{"Architecture":"x86_64","OS":"linux"}},
          "Status":{"State":"ready","Addr":"0.0.0.0"},
          "ManagerStatus":{"Leader":true,"Reachability":"reachable","Addr":"10.0.0.46:2377"}},
         {"ID":"9m1tdtd0kyq2l","Spec":{"Role":"worker","Availability":"drain"},
          "Description":{"Hostname":"worker-2"},"Status":{"State":"down","Addr":"10.0.0.47"}}]
        """#

    @Test func theNodesOfASwarm() {
        let nodes = DockerEngine.swarmNodes(Data(Self.nodes.utf8))
        #expect(nodes.map(\.id) == ["24ifsmvkjbyhk", "9m1tdtd0kyq2l"])
        #expect(nodes.map(\.hostname) == ["bf3067039e47", "worker-2"])
        #expect(nodes.map(\.address) == ["10.0.0.46", "10.0.0.47"], "a manager's 0.0.0.0 is its manager address")
        #expect(nodes.map(\.isReady) == [true, false])
        #expect(nodes.map(\.availability) == ["active", "drain"] && nodes.map(\.role) == ["manager", "worker"])
        #expect(nodes[0].labels == ["zone": "a"] && nodes[1].labels.isEmpty)
    }

    @Test(arguments: [
        (#"[{"ID":5,"Spec":{"Labels":{"a":1},"Role":["x"]},"Status":"ready","Description":null}]"#, 1),
        (#"[{}]"#, 1), (#"[{"ID":"a"},"b"]"#, 0), (#"{"ID":"a"}"#, 0), ("<html>502</html>", 0), ("", 0),
        (#"[{"ID":"a","Version":{"Index":1e999}}]"#, 0),
    ])
    func aMalformedListOfNodes(answer: String, count: Int) {
        let nodes = DockerEngine.swarmNodes(Data(answer.utf8))
        #expect(nodes.count == count, "\(answer)")
        if let first = nodes.first {
            #expect(
                first.id == "" && first.hostname == "" && first.address == "" && first.state == ""
                    && first.labels.isEmpty, "\(first)")
        }
    }

    static let services = #"""
        [{"ID":"9mnpnzenvg8p8tdbtq4wvbkcz","Version":{"Index":19},"CreatedAt":"2016-06-07T21:05:51.880065305Z",
          "Spec":{"Name":"svc-blue","Labels":{"orchestrate.service":"svc","orchestrate.color":"blue"},
                  "TaskTemplate":{"ContainerSpec":{"Image":"localhost/recengine:abc","Args":["serve"]},
                                  "RestartPolicy":{"Condition":"any","MaxAttempts":0},"ForceUpdate":2},
                  "Mode":{"Replicated":{"Replicas":3}},
                  "EndpointSpec":{"Mode":"vip","Ports":[{"Protocol":"tcp","TargetPort":8080,"PublishedPort":18081,"PublishMode":"host"}]}},
          "UpdateStatus":{"State":"completed","Message":"update completed"}},
         {"ID":"3xt1ptkq0yr8d","Version":{"Index":5},"Spec":{"Name":"svc-green","Mode":{"Global":{}}}}]
        """#

    @Test func theServicesAndTheirSpecs() {
        let services = DockerEngine.serviceSummaries(Data(Self.services.utf8))
        #expect(services.map(\.id) == ["9mnpnzenvg8p8tdbtq4wvbkcz", "3xt1ptkq0yr8d"])
        #expect(services.map(\.name) == ["svc-blue", "svc-green"])
        #expect(services.map(\.version) == [19, 5])
        #expect(services.map(\.replicas) == [3, 0], "a global service has no replica count")
        #expect(services.map(\.image) == ["localhost/recengine:abc", ""])
        #expect(services.map(\.updateState) == ["completed", ""])
        #expect(services.map(\.publishMode) == ["host", "ingress"], "ingress unless a port says otherwise")
        #expect(services[0].labels == ["orchestrate.service": "svc", "orchestrate.color": "blue"])
        #expect(services.map(\.forceUpdate) == [2, 0], "what an update that must replace the tasks counts up")
    }

    @Test(arguments: [
        (
            #"[{"ID":"a","Version":{"Index":"19"},"Spec":{"Mode":{"Replicated":{"Replicas":2.5}},"EndpointSpec":{"Ports":[1]}}}]"#,
            1
        ),
        (#"[{}]"#, 1), (#"[{"ID":"a"},"b"]"#, 0), (#"{"ID":"a"}"#, 0), ("<html>502</html>", 0), ("", 0),
    ])
    func aMalformedListOfServices(answer: String, count: Int) {
        let services = DockerEngine.serviceSummaries(Data(answer.utf8))
        #expect(services.count == count, "\(answer)")
        if let first = services.first {
            #expect(
                first.version == 0 && first.replicas == 0 && first.image == "" && first.publishMode == "ingress",
                "\(first)")
        }
    }

    static let tasks = #"""
        [{"ID":"0kzzo1i0y4jz6027t0k7aezc7","Version":{"Index":71},"CreatedAt":"2016-06-07T21:07:31.171892745Z",
          "UpdatedAt":"2016-06-07T21:07:31.376370513Z","Spec":{"ContainerSpec":{"Image":"localhost/recengine:abc"}},
          "ServiceID":"9mnpnzenvg8p8tdbtq4wvbkcz","Slot":1,"NodeID":"60gvrl6tm78dmak4yl7srz94v",
          "Status":{"Timestamp":"2016-06-07T21:07:31.290032978Z","State":"running","Message":"started",
                    "ContainerStatus":{"ContainerID":"e5d62702a1b4","PID":677},
                    "PortStatus":{"Ports":[{"Protocol":"tcp","TargetPort":8080,"PublishedPort":30001,"PublishMode":"host"}]}},
          "DesiredState":"running"},
         {"ID":"1yljwbmlr8er2waf8orvqpwms","Version":{"Index":30},"ServiceID":"9mnpnzenvg8p8tdbtq4wvbkcz",
          "NodeID":"60gvrl6tm78dmak4yl7srz94v","Status":{"State":"rejected","Message":"preparing",
          "Err":"No such image: localhost/recengine:abc"},"DesiredState":"shutdown"}]
        """#

    @Test func theTasksOfAService() {
        let tasks = DockerEngine.swarmTasks(Data(Self.tasks.utf8))
        #expect(tasks.map(\.id) == ["0kzzo1i0y4jz6027t0k7aezc7", "1yljwbmlr8er2waf8orvqpwms"])
        #expect(tasks.map(\.serviceID) == ["9mnpnzenvg8p8tdbtq4wvbkcz", "9mnpnzenvg8p8tdbtq4wvbkcz"])
        #expect(tasks.map(\.state) == ["running", "rejected"] && tasks.map(\.desiredState) == ["running", "shutdown"])
        #expect(
            tasks.map(\.message) == ["started", "No such image: localhost/recengine:abc"],
            "the error before the message")
        #expect(tasks.map(\.publishedPorts) == [[30001], []])
        #expect(tasks.map(\.image) == ["localhost/recengine:abc", ""])
        #expect(tasks.map(\.serviceVersion) == [71, 30])
        #expect(tasks[0].updatedAt == "2016-06-07T21:07:31.376370513Z")
    }

    @Test func aTasksMessageIsBoundedAndAnEmptyErrorIsNoError() {
        let long = String(repeating: "x", count: 100_000)
        let tasks = DockerEngine.swarmTasks(
            Data(
                #"[{"Status":{"Err":"","Message":"\#(long)","PortStatus":{"Ports":[{"PublishedPort":"30001"},{"PublishedPort":30002}]}}}]"#
                    .utf8))
        #expect(tasks.count == 1)
        #expect(tasks.first.map { $0.message.count < 2000 && $0.message.hasPrefix("xxx") } == true)
        #expect(tasks.first?.publishedPorts == [30002], "a port of another type reads as absent")
    }

    @Test(arguments: [
        (#"[{"ID":1,"Status":{"State":7},"Spec":[],"Version":"71"}]"#, 1),
        (#"[{}]"#, 1), (#"[{"ID":"a"},"b"]"#, 0), (#"{"ID":"a"}"#, 0), ("<html>502</html>", 0), ("", 0),
    ])
    func aMalformedListOfTasks(answer: String, count: Int) {
        let tasks = DockerEngine.swarmTasks(Data(answer.utf8))
        #expect(tasks.count == count, "\(answer)")
        if let first = tasks.first {
            #expect(
                first.id == "" && first.state == "" && first.image == "" && first.serviceVersion == 0
                    && first.publishedPorts.isEmpty, "\(first)")
        }
    }
}

/// `GET /containers/ID/json` as the client reads it (`EngineAnswer.Inspection`).
@Suite struct ContainerInspectionTests {
    static let running = #"""
        {"Id":"ba033ac4401106a3b513bc9d639eee123ad78ca3616b921167cd74b20e25ed39","Created":"2015-01-06T15:47:31.485331387Z",
         "Path":"recengine","Args":["serve"],"Name":"/unit-blue-1","RestartCount":0,"Driver":"overlay2",
         "State":{"Status":"running","Running":true,"Paused":false,"Restarting":false,"OOMKilled":false,"Dead":false,
                  "Pid":1234,"ExitCode":0,"Error":"","StartedAt":"2015-01-06T15:47:32.072697474Z",
                  "FinishedAt":"0001-01-01T00:00:00Z","Health":{"Status":"healthy","FailingStreak":0,"Log":[]}},
         "Config":{"Hostname":"ba033ac44011","Image":"localhost/recengine:latest","Labels":{"com.docker.compose.service":"blue"},
                   "Env":["PATH=/usr/bin"]},
         "HostConfig":{"NetworkMode":"host","Binds":["/models:/models:ro"]},"NetworkSettings":{"Networks":{}}}
        """#

    @Test func aRunningContainerWithAHealthCheck() {
        #expect(
            DockerEngine.containerInspection(Data(Self.running.utf8))
                == .init(
                    id: "ba033ac4401106a3b513bc9d639eee123ad78ca3616b921167cd74b20e25ed39", name: "unit-blue-1",
                    image: "localhost/recengine:latest", labels: ["com.docker.compose.service": "blue"],
                    status: "running", isRunning: true, exitCode: 0, error: "", health: "healthy"))
    }

    @Test func anExitedContainerSaysWhy() {
        let exited = #"""
            {"Id":"a1","Name":"/unit-lb-1","State":{"Status":"exited","Running":false,"ExitCode":137,
             "Error":"\#(String(repeating: "e", count: 5_000))"},"Config":{"Image":"nginx","Labels":null}}
            """#
        let inspection = DockerEngine.containerInspection(Data(exited.utf8))
        #expect(inspection.status == "exited" && !inspection.isRunning && inspection.exitCode == 137)
        #expect(inspection.health == nil && inspection.labels.isEmpty)
        #expect(inspection.error.hasPrefix("eee") && inspection.error.count < 2_000, "cut to a message's length")
    }

    @Test(arguments: [
        #"{"Id":5,"Name":["x"],"State":{"Running":"yes","ExitCode":"0","Health":"healthy"},"Config":[]}"#, "{}", "[]",
        "<html>502</html>", "", #"{"Id":"a","Size":1e999}"#,
    ])
    func aMalformedInspectionReadsAsEmpty(answer: String) {
        #expect(DockerEngine.containerInspection(Data(answer.utf8)) == .init(), "\(answer)")
    }
}
