import Foundation
import Testing

@testable import EngineAPI
@testable import HTTPTransport

/// The Docker Engine API's answers as the client reads them (`EngineAnswer` through
/// `JSONAnswer`), on answers in the shape of the API's reference (v1.41) and on malformed ones: a
/// field of another type reads as absent, an answer that is not JSON (or holds a value JSON cannot
/// carry) as no answer.
@Suite struct EngineAnswerTests {
    static let containers = #"""
        [{"Id":"8dfafdbc3a40","Names":["/unit-blue-1"],"Image":"localhost/recengine:latest","ImageID":"sha256:9f1a","Command":"recengine serve",
          "Created":1367854155,"State":"running","Status":"Up 2 minutes","Ports":[],"Labels":{"com.docker.compose.project":"unit","com.docker.compose.service":"blue"},
          "SizeRw":12288,"HostConfig":{"NetworkMode":"host"},"NetworkSettings":{"Networks":{}},"Mounts":[]},
         {"Id":"9cd87474be90","Names":["/unit-lb-1"],"Image":"localhost/nginx:latest","State":"exited","Labels":{}}]
        """#

    @Test func aListOfContainers() {
        let summaries = DockerEngine.containerSummaries(Data(Self.containers.utf8))
        #expect(summaries.map(\.id) == ["8dfafdbc3a40", "9cd87474be90"])
        #expect(summaries.map(\.name) == ["unit-blue-1", "unit-lb-1"])
        #expect(summaries[0].isRunning && summaries[1].hasExited)
        #expect(summaries[0].labels == ["com.docker.compose.project": "unit", "com.docker.compose.service": "blue"])
        #expect(summaries[0].image == "localhost/recengine:latest")
    }

    @Test(arguments: [
        // A field of another type reads as absent.
        (#"[{"Id":5,"Names":"x","State":["running"],"Labels":{"a":1},"Image":null}]"#, 1),
        (#"[{}]"#, 1),
        // Not a list of objects, not JSON, or a value JSON cannot carry: no containers.
        (#"[{"Id":"a"},"b"]"#, 0), (#"{"Id":"a"}"#, 0), (#"[{"Id":"a"}"#, 0), ("<html>502</html>", 0), ("", 0),
        (#"[{"Id":"a","Size":1e999}]"#, 0), (#"[{"Id":"a","Names":["\ud800"]}]"#, 0),
    ])
    func aMalformedListOfContainers(answer: String, count: Int) {
        let summaries = DockerEngine.containerSummaries(Data(answer.utf8))
        #expect(summaries.count == count, "\(answer)")
        if let first = summaries.first {
            #expect(
                first.id == "" && first.name == "" && first.state == "" && first.labels.isEmpty && first.image == "",
                "\(first)")
        }
    }

    @Test func networksByName() {
        #expect(
            DockerEngine.networkNames(
                Data(#"[{"Name":"unit_default","Id":"7d86","Labels":{}},{"Name":7},{"Id":"x"}]"#.utf8)) == [
                    "unit_default"
                ])
        #expect(DockerEngine.networkNames(Data(#"[{"Name":"a"},1]"#.utf8)).isEmpty)
    }

    @Test func eventsInTheCurrentAndTheOldForm() throws {
        let current = try #require(
            DockerEngine.event(
                Data(
                    #"{"Type":"container","Action":"die","Actor":{"ID":"8dfafdbc3a40","Attributes":{"exitCode":"137","name":"unit-blue-1"}},"scope":"local","time":1,"timeNano":1}"#
                        .utf8)))
        #expect(
            current
                == DockerEngine.Event(
                    type: "container", action: "die", id: "8dfafdbc3a40",
                    attributes: ["exitCode": "137", "name": "unit-blue-1"]))
        let old = try #require(DockerEngine.event(Data(#"{"status":"stop","id":"8dfafdbc3a40","from":"x"}"#.utf8)))
        #expect(old == DockerEngine.Event(type: "", action: "stop", id: "8dfafdbc3a40", attributes: [:]))
        let strange = try #require(
            DockerEngine.event(
                Data(#"{"Type":1,"Action":null,"status":"kill","Actor":{"ID":2,"Attributes":{"a":3}},"id":"x"}"#.utf8)))
        #expect(strange == DockerEngine.Event(type: "", action: "kill", id: "x", attributes: [:]))
        #expect(DockerEngine.event(Data("[]".utf8)) == nil)
        #expect(DockerEngine.event(Data("not json".utf8)) == nil)
    }

    @Test(arguments: [
        (404, #"{"message":"No such container: 8dfa"}"#, "No such container: 8dfa"),
        (500, #"{"message":"  driver failed\n"}"#, "driver failed"),
        (500, #"{"message":5}"#, #"{"message":5}"#),
        (502, "<html>Bad Gateway</html>", "<html>Bad Gateway</html>"),
        (500, "", "no message"),
        (
            301, "",
            "a redirect, which the Engine API never answers: is the host a Docker engine, or a proxy in front of one?"
        ),
    ])
    func whatAFailedCallSays(status: Int, body: String, message: String) {
        #expect(
            DockerEngine.message(of: HTTPClient.Response(status: status, headers: [:], body: Data(body.utf8)))
                == message)
    }

    @Test func createdObjectsAndExitStatuses() {
        #expect(
            JSONAnswer.decode(EngineAnswer.Created.self, from: Data(#"{"Id":"e90e34656806","Warnings":[]}"#.utf8))?.id
                == "e90e34656806")
        #expect(
            JSONAnswer.decode(EngineAnswer.Created.self, from: Data(#"{"ID":"ak7w3gjqoa3k"}"#.utf8))?.serviceID
                == "ak7w3gjqoa3k")
        #expect(JSONAnswer.decode(EngineAnswer.Created.self, from: Data(#"{"Id":1}"#.utf8))?.id == nil)
        #expect(
            JSONAnswer.decode(EngineAnswer.Exit.self, from: Data(#"{"StatusCode":137,"Error":null}"#.utf8))?.statusCode
                == 137)
        #expect(
            JSONAnswer.decode(EngineAnswer.Exit.self, from: Data(#"{"ExitCode":2,"Running":false}"#.utf8))?.exitCode
                == 2)
        #expect(JSONAnswer.decode(EngineAnswer.Exit.self, from: Data(#"{"StatusCode":"0"}"#.utf8))?.statusCode == nil)
        #expect(
            JSONAnswer.decode(
                EngineAnswer.Version.self,
                from: Data(#"{"Version":"4.3.1","ApiVersion":"1.41","MinAPIVersion":"1.24"}"#.utf8))?.apiVersion
                == "1.41")
        #expect(
            JSONAnswer.decode(
                EngineAnswer.Progress.self, from: Data(#"{"errorDetail":{"message":"no base"},"error":"no base"}"#.utf8)
            )?.error == "no base")
        #expect(JSONAnswer.decode(EngineAnswer.Progress.self, from: Data(#"{"stream":"Step 1/2"}"#.utf8))?.error == nil)
    }
}
