import Foundation
import OrchestratorSupport
import StrictYAML
import Testing
import Traffic

@testable import Orchestrator
@testable import PipelineSchema
@testable import Provenance

/// The plan is all the rollout reads: the planned rollout carries the colours, the gates' policies,
/// the judge and the files, and the machine's plan is made from it alone, with the queries the
/// plan shows.
@Suite struct PlannedRolloutTests {
    static let pipeline = """
        version: 1
        name: svc
        history: releases/history.jsonl
        stages:
          - name: train
            uses: train
            with: {ratings: ratings.csv, model: models/m}
        deploy:
          runtime: process
          service: svc
          colors: [blue, green]
        traffic:
          nginx: {config: nginx.conf, listen: 18080}
          steps: [25, 100]
          wait: 10s
        analysis:
          prometheus: http://127.0.0.1:9090
          gates:
            - name: error-rate
              query: rate{color="{{color}}",live="{{live}}"}
              max: 0.05
          judge:
            maxWait: 60s
            metrics:
              - name: engagement
                proportion: {successes: 's{color="{{color}}"}', trials: 't{color="{{color}}"}'}
                bad: decrease
                effect: 0.1

        """

    /// `pipeline` with an interleaving step at 0 % and an interleaving judge metric.
    static let interleaved =
        pipeline.replacingOccurrences(
            of: "steps: [25, 100]", with: "steps: [0, 25, 100]\n  interleave: {share: 20, window: 5m}")
            + """
                  - name: preference
                    interleaving: {}
                    bad: decrease
                    effect: {absolute: 0.05}

            """

    static func planned(live: LiveRelease?, in folder: String, pipeline: String = pipeline) throws -> RunPlan.Rollout {
        try pipeline.write(toFile: folder + "/p.yml", atomically: true, encoding: .utf8)
        let pipeline = try PipelineLoader().load(folder + "/p.yml")
        let runtime = RecoveryTests.StubRuntime(running: [], folder: folder)
        let plan = try Planner(pipeline: pipeline, options: RunOptions(), records: [], runtime: runtime).plan(
            releaseID: "rel-2", live: live, recovery: nil)
        return try #require(plan.rollout)
    }

    @Test func theRolloutCarriesWhatItsExecutorNeeds() async throws {
        try await withTemporaryDirectory { folder in
            let live = LiveRelease(color: "blue", releaseID: "rel-1", modelSHA256: "m", modelVersion: "v1")
            let rollout = try Self.planned(live: live, in: folder)
            #expect(rollout.colors == ["blue", "green"])
            #expect(rollout.prometheus == "http://127.0.0.1:9090")
            #expect(rollout.gates.map(\.name) == ["error-rate"])
            #expect(rollout.judge?.metrics.map(\.name) == ["engagement"])
            #expect(rollout.files.workingDirectory == folder)
            #expect(rollout.files.logs == folder + "/releases/logs")

            let machine = RolloutMachine.Plan(rollout, releaseID: "rel-2", trafficSwitch: true)
            #expect(machine.target == "green" && machine.steps.map(\.newWeight) == [25, 100])
            #expect(
                machine.steps.map { $0.gates.map(\.query) } == rollout.steps.map { [$0.queries["error-rate"]] },
                "the queries the plan shows")
            #expect(machine.steps[0].gates.first?.query == #"rate{color="green",live="blue"}"#)
            #expect(machine.judge == rollout.judge)

            // Written and read back as the record keeps it.
            let encoded = try JSONEncoder().encode(rollout)
            #expect(try JSONDecoder().decode(RunPlan.Rollout.self, from: encoded) == rollout)
        }
    }

    @Test func aFirstReleaseHasNoJudgeAndNoGateThatNamesTheLiveColour() async throws {
        try await withTemporaryDirectory { folder in
            let rollout = try Self.planned(live: nil, in: folder)
            #expect(rollout.judge == nil, "nothing live to compare with")
            let machine = RolloutMachine.Plan(rollout, releaseID: "rel-1", trafficSwitch: true)
            #expect(machine.steps.map(\.newWeight) == [100])
            #expect(machine.steps[0].gates.isEmpty, "its query names {{live}}: not planned without a live colour")
            #expect(machine.judge == nil)
        }
    }

    /// What the executor puts in nginx and asks the judge at each step of an interleaved rollout.
    @Test func anInterleavedRolloutCarriesItsInterleavingAndJudgesTheZeroStepOnItAlone() async throws {
        try await withTemporaryDirectory { folder in
            let live = LiveRelease(color: "blue", releaseID: "rel-1", modelSHA256: "m", modelVersion: "v1")
            let rollout = try Self.planned(live: live, in: folder, pipeline: Self.interleaved)
            #expect(rollout.interleave == InterleaveSpec(share: 20, window: .seconds(300)))
            #expect(
                rollout.interleave?.split(weight: 0, releaseID: "rel-2")
                    == .init(percent: 20, window: 300, seed: "rel-2", experiment: "rel-2-w0"))
            #expect(
                rollout.interleave?.split(weight: 25, releaseID: "rel-2")?.experiment == "rel-2-w25",
                "each step counts from zero")
            #expect(
                rollout.interleave?.split(weight: 100, releaseID: "rel-2") == nil, "nothing to interleave with at 100 %"
            )

            let machine = RolloutMachine.Plan(rollout, releaseID: "rel-2", trafficSwitch: true)
            #expect(machine.steps.map(\.newWeight) == [0, 25, 100])
            #expect(
                machine.judge(ofStep: 0)?.metrics.map(\.name) == ["preference"],
                "at 0 % only the interleaved users see the new colour")
            #expect(machine.judge(ofStep: 1)?.metrics.map(\.name) == ["engagement", "preference"])
            #expect(machine.judge(ofStep: 2) == nil, "no live traffic left to compare with")
            let encoded = try JSONEncoder().encode(rollout)
            #expect(try JSONDecoder().decode(RunPlan.Rollout.self, from: encoded) == rollout)
        }
    }

    @Test func aRolloutPlannedBeforeItCarriedThemStaysReadable() throws {
        let old = #"""
            {"runtime":"process","service":"svc","model":"m","target":"green","health":{"path":"/health","timeout":"20s"},"steps":[],
             "hold":"4s","stop_old":true,"drain":"1s","automatic_rollback":true,"stop_new":true,"hooks":{"pre_rollout":[],"during_step":[],
             "post_rollout":[],"on_rollback":[]},"containers":[]}
            """#
        let rollout = try JSONDecoder().decode(RunPlan.Rollout.self, from: Data(old.utf8))
        #expect(
            rollout.colors.isEmpty && rollout.gates.isEmpty && rollout.judge == nil && rollout.prometheus == nil
                && rollout.interleave == nil)
    }

    /// `run --dry-run` lists each webhook gate where it acts, its URL without user info or query
    /// values, and the pipeline's redaction still hides those wherever they appear.
    @Test func theDryRunListsEachWebhookGateWhereItActsWithItsCredentialsRedacted() async throws {
        try await withTemporaryDirectory { folder in
            let yaml =
                Self.pipeline + """
                    webhooks:
                      - {name: load-test, type: pre-rollout, url: "http://127.0.0.1:9/check"}
                      - name: more
                        type: confirm-traffic-increase
                        url: "https://ops:hunter22@gate.example:8443/approve?token=T0KEN-42&team=ml"
                        timeout: 3s
                        retries: 2
                        secret: s3cr3t-key
                      - {name: approve-100, type: confirm-promotion, url: "http://127.0.0.1:9/go", onUnreachable: fail}
                      - {name: halt, type: rollback, url: "http://127.0.0.1:9/halt", interval: 2s}
                      - {name: tell, type: post-rollout, url: "http://127.0.0.1:9/done"}
                      - {name: start, type: confirm-rollout, url: "http://127.0.0.1:9/start"}

                    """
            try yaml.write(toFile: folder + "/p.yml", atomically: true, encoding: .utf8)
            let pipeline = try PipelineLoader().load(folder + "/p.yml")
            let live = LiveRelease(color: "blue", releaseID: "rel-1", modelSHA256: "m", modelVersion: "v1")
            let plan = try Planner(
                pipeline: pipeline, options: RunOptions(), records: [],
                runtime: RecoveryTests.StubRuntime(running: [], folder: folder)
            ).plan(releaseID: "rel-2", live: live, recovery: nil)
            let text = pipeline.redaction.redact(plan.rendered())
            let lines = text.split(separator: "\n").map(String.init)
            func index(_ prefix: String) throws -> Int {
                try #require(lines.firstIndex { $0.hasPrefix(prefix) }, "no line \(prefix) in\n\(text)")
            }
            let expected = [
                "deploy: svc",
                "  before the deploy: webhook confirm-rollout start: POST http://127.0.0.1:9/start; waits until it answers 2xx (asked every 5s) or orchestrate approve answers it; timeout 10s, 0 retries, unreachable: wait",
                "  before any traffic: webhook pre-rollout load-test: POST http://127.0.0.1:9/check; a non-2xx answer fails the release; timeout 10s, 0 retries, unreachable: fail",
                "  step 1: green 25% / blue 75%",
                "    during the hold: webhook rollback halt: POST http://127.0.0.1:9/halt; asked every 2s while the step holds; a 2xx answer rolls back; timeout 10s, 0 retries, unreachable: pass",
                "  before step 2: webhook confirm-traffic-increase more: POST https://[redacted]@gate.example:8443/approve?token=[redacted]&team=[redacted] (signed, HMAC-SHA256); waits until it answers 2xx (asked every 5s) or orchestrate approve answers it; timeout 3s, 2 retries, unreachable: wait",
                "  step 2: green 100% / blue 0%",
                "  before the promotion: webhook confirm-promotion approve-100: POST http://127.0.0.1:9/go; waits until it answers 2xx (asked every 5s) or orchestrate approve answers it; timeout 10s, 0 retries, unreachable: fail",
                "  once promoted or rolled back: webhook post-rollout tell: POST http://127.0.0.1:9/done; told once, best effort; timeout 10s, 0 retries, unreachable: pass",
                "  after the last step:",
            ]
            let positions = try expected.map(index)
            #expect(positions == positions.sorted(), "in the order they act:\n\(text)")
            #expect(
                lines.filter { $0.contains("during the hold: webhook rollback halt") }.count == 2, "at every step")
            let json = String(decoding: try JSONEncoder().encode(pipeline.redaction.redacted(plan)), as: UTF8.self)
            for secret in ["hunter22", "T0KEN-42", "s3cr3t-key", "team=ml"] {
                #expect(!text.contains(secret) && !json.contains(secret), "\(secret) shown")
            }
            for secret in ["hunter22", "T0KEN-42", "s3cr3t-key", "token=T0KEN-42&team=ml"] {
                #expect(pipeline.redaction.redact("an error naming \(secret)") == "an error naming [redacted]")
            }
        }
    }
}
