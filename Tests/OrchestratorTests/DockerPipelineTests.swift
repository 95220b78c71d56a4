import EngineAPI
import Foundation
import Orchestrator
import OrchestratorSupport
import PipelineSchema
import Provenance
import StrictYAML
import Testing

@Suite struct DockerPipelineTests {
    static func pipeline(host: String, docker: Bool = true) -> String {
        """
        version: 1
        name: unit
        history: releases/history.jsonl
        stages:
          - name: ingest
            uses: ingest
            with: {source: raw.csv, format: ratings, output: data/ratings.csv}
        deploy:
          runtime: docker
          model: models/m
        \(docker ? "  docker: {host: \"\(host)\", compose: compose.yml}" : "")
        """
    }

    @Test func anUnreachableEngineExits4BeforeAnyStage() async throws {
        try await withTemporaryDirectory { folder in
            try writeRatings(to: folder + "/raw.csv")
            try write("services:\n  blue: {image: x}\n  green: {image: x}\n", to: folder + "/compose.yml")
            try write(Self.pipeline(host: "unix://\(folder)/no-engine.sock"), to: folder + "/p.yml")
            await #expect {
                try await runPipeline(folder + "/p.yml")
            } throws: { error in
                let error = error as? OrchestratorError
                return error?.code == .unreachable
                    && error?.message.contains("the Docker engine at unix://\(folder)/no-engine.sock is unreachable")
                        == true
            }
            #expect(!FileManager.default.fileExists(atPath: folder + "/data/ratings.csv"), "no stage ran")
            #expect(read(folder + "/releases/history.jsonl").contains("\"not_run\""))
        }
    }

    @Test func theDockerRuntimeNeedsItsComposeFileAndAValidHost() async throws {
        try await withTemporaryDirectory { folder in
            try write(Self.pipeline(host: "", docker: false), to: folder + "/p.yml")
            #expect {
                try PipelineLoader().load(folder + "/p.yml")
            } throws: { error in
                "\(error)".contains("runtime: docker needs docker: {compose: FILE}")
            }
            try write(Self.pipeline(host: "http://engine:2375"), to: folder + "/p.yml")
            #expect {
                try PipelineLoader().load(folder + "/p.yml")
            } throws: { error in
                "\(error)".contains("must be unix:///PATH or tcp://HOST:PORT")
            }
        }
    }

    @Test func theDryRunListsTheContainersItWouldCreate() async throws {
        try await withTemporaryDirectory { folder in
            try writeRatings(to: folder + "/raw.csv")
            let compose = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent()
                .appendingPathComponent("compose/recommender.yml").path
            try write(
                Self.pipeline(host: "unix://\(folder)/no-engine.sock").replacingOccurrences(
                    of: "compose: compose.yml", with: "compose: \(compose)")
                    + "\ntraffic:\n  nginx: {config: lb/recommender.conf, listen: 18080}\n", to: folder + "/p.yml")
            let (result, _) = try await runPipeline(folder + "/p.yml", options: RunOptions(dryRun: true))
            #expect(result.record == nil, "a dry run changes nothing, the engine is not asked")
            let containers = (result.plan.rollout?.containers ?? [])
            #expect(containers.map(\.name) == ["unit-blue-1", "unit-lb-1"])
            #expect(containers[0].image == "localhost/recengine:latest")
            #expect(containers[0].binds.contains { $0.hasSuffix(":/model:ro") })
            #expect(containers[0].labels["com.docker.compose.project"] == "unit")
            #expect(containers[1].binds.contains("\(folder)/lb:\(folder)/lb"))
            let text = result.plan.rendered()
            #expect(text.contains("container unit-blue-1: image localhost/recengine:latest, network host"))
            #expect(text.contains("command: recengine serve --model /model"))
        }
    }

    @Test func theApiVersionIsTheOlderOfTheEnginesAndOurs() {
        #expect(DockerEngine.clientVersion == "1.41")
        #expect(DockerEngine.negotiatedVersion(engine: "1.40") == "1.40")
        #expect(DockerEngine.negotiatedVersion(engine: "1.24") == "1.24")
        #expect(DockerEngine.negotiatedVersion(engine: "1.41") == "1.41")
        #expect(DockerEngine.negotiatedVersion(engine: "1.45") == "1.41")
        #expect(DockerEngine.negotiatedVersion(engine: "2.0") == "1.41")
    }
}
