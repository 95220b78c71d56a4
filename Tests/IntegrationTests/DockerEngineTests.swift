import EngineAPI
import Foundation
import HTTPTransport
import Orchestrator
import StrictYAML
import TestSupport
import Testing
import Traffic

/// The engine the Docker tests use: podman's Docker-compatible API, started by `scripts/test`
/// (`scripts/podman-engine start`) and named in `ORCHESTRATE_TEST_DOCKER_HOST`. Without it the
/// tests are skipped, and `scripts/test` says so loudly.
enum TestEngine {
    static var host: String? { ProcessInfo.processInfo.environment["ORCHESTRATE_TEST_DOCKER_HOST"] }
    static var available: Bool { host != nil }

    static func engine() async throws -> DockerEngine {
        try await DockerEngine(host: try #require(host)).negotiated()
    }

    /// A busybox image imported from a root filesystem built here (no registry is needed).
    static let busybox = "localhost/orchestrate-test-busybox:1"

    static func importBusybox(_ engine: DockerEngine) async throws {
        if try await engine.imageExists(busybox) { return }
        try await withTemporaryDirectory { folder in
            let root = folder + "/root"
            try FileManager.default.createDirectory(atPath: root + "/bin", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: root + "/bin/busybox")
            for tool in ["sh", "httpd", "sleep", "echo", "cat", "ls", "wget"] {
                try FileManager.default.createSymbolicLink(
                    atPath: root + "/bin/\(tool)", withDestinationPath: "busybox")
            }
            #expect(try await runCommand("/bin/tar", ["-C", root, "-cf", folder + "/root.tar", "."]).status == 0)
            try await engine.importImage(tarball: folder + "/root.tar", repository: busybox)
        }
    }
}

@Suite(
    .enabled(if: TestEngine.available, "needs ORCHESTRATE_TEST_DOCKER_HOST: scripts/test starts podman's Docker API"))
struct DockerEngineTests {
    @Test func negotiatesTheVersionAndSurfacesTheEnginesMessages() async throws {
        let engine = try await TestEngine.engine()
        #expect(engine.version == "1.41")
        #expect(await engine.ping())
        await #expect {
            try await engine.createContainer(
                name: "orchestrate-test-missing-image", config: ["Image": "localhost/no-such-image:1"])
        } throws: { error in
            let error = error as? DockerError
            return error?.status == 404 && error?.message.contains("no-such-image") == true
        }
        let gone = try DockerEngine(host: "unix:///nonexistent/docker.sock")
        #expect(await !gone.ping())
        await #expect {
            try await gone.call("GET", "/version", limit: DockerEngine.AnswerLimit.object, operation: "asking")
        } throws: { error in
            (error as? DockerError)?.isUnreachable == true
        }
    }

    @Test func composeServicesCarryComposeLabelsAndAreRecreatedOnlyOnChange() async throws {
        let engine = try await TestEngine.engine()
        try await TestEngine.importBusybox(engine)
        try await withTemporaryDirectory { folder in
            let port = try freePort()
            let project = "orchestrate-test-\(UUID().uuidString.prefix(6).lowercased())"
            func compose(greeting: String) throws -> ComposeFile {
                try write(
                    """
                    name: \(project)
                    services:
                      web:
                        image: \(TestEngine.busybox)
                        command: [httpd, -f, -p, "8080", -h, /www]
                        ports: ["127.0.0.1:${WEB_PORT}:8080"]
                        volumes: ["./www:/www:ro"]
                        environment: {GREETING: \(greeting)}
                        labels: {team: ml}
                        init: true
                      worker:
                        image: \(TestEngine.busybox)
                        command: [sleep, "600"]
                        depends_on: [web]
                        networks: [back]
                        init: true
                    networks:
                      back: {}
                    """, to: folder + "/compose.yml")
                return try ComposeFile.load(folder + "/compose.yml", variables: ["WEB_PORT": String(port)])
            }
            try write("hello\n", to: folder + "/www/index.html")
            let project1 = ComposeProject(engine: engine, file: try compose(greeting: "hi"))
            do {
                #expect(try await project1.up() == ["web": .created, "worker": .created])
                let web = try #require(try await project1.container(of: "web"))
                #expect(web.name == "\(project)-web-1")
                #expect(web.labels["com.docker.compose.project"] == project)
                #expect(web.labels["com.docker.compose.service"] == "web")
                #expect(web.labels["com.docker.compose.oneoff"] == "False")
                #expect(web.labels["com.docker.compose.config-hash"]?.count == 64)
                #expect(web.labels["team"] == "ml")
                var answer: HTTPClientAnswer?
                for _ in 0..<50 where answer == nil {
                    answer = try? await HTTPClientAnswer.get("http://127.0.0.1:\(port)/index.html")
                    if answer == nil { try await Task.sleep(for: .milliseconds(100)) }
                }
                #expect(answer?.body == "hello\n", "the bind-mounted folder is served on the mapped port")

                // The engine's event stream tells of what up did, filtered by the compose labels.
                let seen = EventLog()
                let now = Int(Date().timeIntervalSince1970)
                try await engine.events(
                    labels: ["com.docker.compose.project": project], since: now - 60, until: now + 3
                ) { event in
                    seen.append(event)
                    return true
                }
                #expect(
                    seen.events.contains {
                        $0.type == "container" && $0.action == "start"
                            && $0.attributes["com.docker.compose.service"] == "web"
                    })

                // Unchanged: left running.
                #expect(try await project1.up() == ["web": .unchanged, "worker": .unchanged])
                #expect(try await project1.container(of: "web")?.id == web.id)
                // One service changed: only it is recreated.
                let project2 = ComposeProject(engine: engine, file: try compose(greeting: "hello"))
                #expect(try await project2.up() == ["web": .recreated, "worker": .unchanged])
                #expect(try await project2.container(of: "web")?.id != web.id)

                // A one-off container: the folder mounted, status and logs captured, then removed.
                let run = try await project2.runOnce(
                    image: TestEngine.busybox, command: ["sh", "-c", "echo made > made.txt; echo done; exit 3"],
                    folder: folder, environment: [:],
                    name: "stage", timeout: .seconds(60))
                #expect(run.status == 3)
                #expect(run.logs.contains("done"))
                #expect(read(folder + "/made.txt") == "made\n")
                #expect(
                    try await engine.containers(labels: [
                        "com.docker.compose.project": project, "com.docker.compose.oneoff": "True",
                    ]).isEmpty)
            } catch {
                try? await project1.down()
                throw error
            }
            try await project1.down()
            #expect(try await engine.containers(labels: ["com.docker.compose.project": project]).isEmpty)
        }
    }

    @Test func aComposeFileOutsideTheSubsetIsRefusedWithItsLine() async throws {
        try await withTemporaryDirectory { folder in
            try write(
                """
                services:
                  web:
                    image: x
                    volumes: ["data:/data"]
                    deploy: {replicas: 2}
                """, to: folder + "/compose.yml")
            #expect {
                try ComposeFile.load(folder + "/compose.yml")
            } throws: { error in
                let text = "\(error)"
                return text.contains("compose.yml:4") && text.contains("named volumes are not read")
                    && text.contains("unknown key \"deploy\"")
            }
        }
    }
}

/// A plain GET for the tests, through the project's HTTP client.
struct HTTPClientAnswer {
    var status: Int
    var body: String

    static func get(_ url: String) async throws -> HTTPClientAnswer {
        let response = try await HTTPClient.get(url, limit: .forTests, timeout: .seconds(2))
        return HTTPClientAnswer(status: response.status, body: String(decoding: response.body, as: UTF8.self))
    }
}

@Suite(
    .enabled(if: TestEngine.available, "needs ORCHESTRATE_TEST_DOCKER_HOST: scripts/test starts podman's Docker API"))
struct ContainerStageTests {
    @Test func aStageWithAnImageRunsInAOneOffContainerWithItsStatusAndLog() async throws {
        let engine = try await TestEngine.engine()
        try await TestEngine.importBusybox(engine)
        try await withTemporaryDirectory { folder in
            let name = "stages\(UUID().uuidString.prefix(6).lowercased())"
            try write(
                """
                version: 1
                name: \(name)
                history: releases/history.jsonl
                stages:
                  - name: score
                    image: \(TestEngine.busybox)
                    run: [sh, -c, "echo scoring in $(pwd); mkdir -p ../out; echo '{\\"score\\": 3}' > ../out/metrics.json"]
                    outputs: [../out/metrics.json]
                    metrics: ../out/metrics.json
                    gate: {score: {min: 1}}
                  - name: fail
                    image: \(TestEngine.busybox)
                    run: [sh, -c, "echo about to fail; exit 5"]
                """, to: folder + "/p/pipeline.yml")
            let result = try await runCommand(
                Playground.orchestrate, ["run", folder + "/p/pipeline.yml"],
                environment: ["DOCKER_HOST": try #require(TestEngine.host)])
            #expect(result.status == 1, "\(result.stderr)")
            let history = read(folder + "/p/releases/history.jsonl")
            #expect(history.contains("\"score\":3"), "the metrics the container wrote outside its working folder")
            #expect(
                result.stderr.contains("exited with status 5") && result.stderr.contains("about to fail"),
                "\(result.stderr)")
            let logs = try FileManager.default.subpathsOfDirectory(atPath: folder + "/p/releases/logs").filter {
                $0.hasSuffix("score.log")
            }
            #expect(read(folder + "/p/releases/logs/" + (logs.first ?? "")).contains("scoring in \(folder)/p"))
            #expect(
                try await engine.containers(labels: ["com.docker.compose.project": name]).isEmpty,
                "one-off containers are removed")
            #expect(
                try await engine.networks(labels: ["com.docker.compose.project": name]).isEmpty,
                "and leave no network behind")
        }
    }
}

@Suite(
    .enabled(if: TestEngine.available, "needs ORCHESTRATE_TEST_DOCKER_HOST: scripts/test starts podman's Docker API"))
struct MonitoringComposeTests {
    @Test func prometheusComesUpFromComposeMonitoringAndGoesDown() async throws {
        let engine = try await TestEngine.engine()
        let image = "localhost/orchestrate-test-prometheus:1"
        try await RootFilesystemImage(programs: ["/usr/bin/prometheus"], folders: ["/tmp", "/prometheus"]).importInto(
            engine, repository: image)
        let port = try freePort()
        let file = Playground.root.appendingPathComponent("compose/monitoring.yml").path
        let environment = [
            "DOCKER_HOST": try #require(TestEngine.host), "PROMETHEUS_IMAGE": image, "PROMETHEUS_PORT": String(port),
        ]
        let up = try await runCommand(
            Playground.orchestrate, ["compose", "up", file, "prometheus"], environment: environment)
        #expect(up.status == 0, "\(up.stderr)")
        #expect(
            up.stdout.contains("monitoring-prometheus-1: created")
                || up.stdout.contains("monitoring-prometheus-1: recreated"), "\(up.stdout)")
        var ready = false
        for _ in 0..<100 where !ready {
            ready =
                (try? await HTTPClient.get("http://127.0.0.1:\(port)/-/ready", limit: .forTests, timeout: .seconds(1)))?
                .status == 200
            if !ready { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(ready, "Prometheus in its container reads monitoring/prometheus.yml and answers")
        let again = try await runCommand(
            Playground.orchestrate, ["compose", "up", file, "prometheus"], environment: environment)
        #expect(again.stdout.contains("monitoring-prometheus-1: unchanged"), "\(again.stdout)")
        let down = try await runCommand(Playground.orchestrate, ["compose", "down", file], environment: environment)
        #expect(down.status == 0, "\(down.stderr)")
        #expect(try await engine.containers(labels: ["com.docker.compose.project": "monitoring"]).isEmpty)
    }
}

final class EventLog: @unchecked Sendable {
    // Appended from the client's transfer only, read after it ended.
    private(set) var events: [DockerEngine.Event] = []
    func append(_ event: DockerEngine.Event) { events.append(event) }
}
