import Foundation
import StrictYAML
import Testing

@testable import DeploymentRuntimes
@testable import Orchestrator
@testable import Provenance

/// What recovery does with a run a killed controller left, from what it observed: one plan,
/// printed by `run --dry-run` and `status` and carried out by `recover`.
@Suite struct RecoveryPlanTests {
    static let live = FakePlan.live
    static let started = Date(timeIntervalSince1970: 1_800_000_000)
    static let hook = TrackedProcess(pid: 4242, startTime: 7, role: "during-step hook 0 load.sh")

    static func run(_ phase: RunPhase, weight: Int = 50, stopOld: Bool = true, live: LiveRelease? = live) -> RunState {
        RunState(
            releaseID: "rel-2", pid: 99, startedOn: started, phase: phase, live: live, target: "green", weight: weight,
            stopOld: stopOld)
    }

    static func instance(_ color: String) -> ColorInstance {
        ColorInstance(
            color: color, pid: 1, address: "127.0.0.1:1", modelSHA256: "m", modelVersion: "v", modelPath: "/m")
    }

    static func observed(
        run: RecoveryObservation.File<RunState> = .read(run(.shifting)),
        record: RecoveryObservation.File<RecoveryObservation.PendingRecord> = .absent,
        live: LiveRelease? = live, running: [String]? = ["blue", "green"], answers: Bool = true,
        trafficSwitch: RecoveryObservation.TrafficSwitch? = .serving,
        processes: [TrackedProcess] = [], alreadyRecorded: Bool = false
    ) -> RecoveryObservation {
        RecoveryObservation(
            runPath: "/s/run.json", recordPath: "/s/record.json", run: run, record: record, live: live,
            engine: running.map { colors in
                .init(
                    runtime: "process", answers: answers,
                    instances: Dictionary(uniqueKeysWithValues: colors.map { ($0, instance($0)) }))
            }, trafficSwitch: trafficSwitch, colors: ["blue", "green"], processes: processes,
            alreadyRecorded: alreadyRecorded)
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var observed: RecoveryObservation
        var actions: [RecoveryAction]
        var testDescription: String { name }
    }

    @Test(arguments: [
        Case(
            name: "killed while shifting: traffic back on the live colour, the new one stopped", observed: observed(),
            actions: [
                .sendAllTraffic(color: "blue", because: .liveRelease("rel-1")),
                .stopColour(color: "green", because: .notLive(running: true)), .writeTargets,
                .record(outcome: .rolledBack, ended: false),
            ]),
        Case(
            name: "the new colour still starting is stopped too", observed: observed(running: ["blue"]),
            actions: [
                .sendAllTraffic(color: "blue", because: .liveRelease("rel-1")),
                .stopColour(color: "green", because: .notLive(running: false)), .writeTargets,
                .record(outcome: .rolledBack, ended: false),
            ]),
        Case(
            name: "the live colour not running: traffic left, the others keep it",
            observed: observed(running: ["green"]),
            actions: [
                .leaveTraffic(liveColor: "blue"), .keepRunning(colors: ["green"], liveColor: "blue"), .writeTargets,
                .record(outcome: .rolledBack, ended: false),
            ]),
        Case(
            name: "killed while draining: the promotion stands, the old colour stops",
            observed: observed(
                run: .read(run(.draining, weight: 100)),
                live: LiveRelease(color: "green", releaseID: "rel-2", modelSHA256: "m", modelVersion: "v")),
            actions: [
                .sendAllTraffic(color: "green", because: .promotionSaved),
                .stopColour(color: "blue", because: .stopOld), .writeTargets,
                .record(outcome: .succeeded, ended: false),
            ]),
        Case(
            name: "promoted without stopOld keeps the old colour",
            observed: observed(
                run: .read(run(.draining, weight: 100, stopOld: false)),
                live: LiveRelease(color: "green", releaseID: "rel-2", modelSHA256: "m", modelVersion: "v")),
            actions: [
                .sendAllTraffic(color: "green", because: .promotionSaved), .writeTargets,
                .record(outcome: .succeeded, ended: false),
            ]),
        Case(
            name: "killed during the stages: its processes stop, nothing else",
            observed: observed(run: .read(run(.stages, weight: 0)), processes: [hook]),
            actions: [.stopProcess(hook), .writeTargets, .record(outcome: .interrupted, ended: false)]),
        Case(
            name: "a first release: nginx stops with every colour",
            observed: observed(run: .read(run(.shifting, live: nil)), live: nil),
            actions: [
                .stopTrafficSwitch, .stopColour(color: "blue", because: .notLive(running: true)),
                .stopColour(color: "green", because: .notLive(running: true)),
                .writeTargets, .record(outcome: .rolledBack, ended: false),
            ]),
        Case(
            name: "a first release with nginx already stopped",
            observed: observed(run: .read(run(.deploying, live: nil)), live: nil, running: [], trafficSwitch: .stopped),
            actions: [
                .stopColour(color: "blue", because: .notLive(running: false)),
                .stopColour(color: "green", because: .notLive(running: false)), .writeTargets,
                .record(outcome: .rolledBack, ended: false),
            ]),
        Case(
            name: "an unreadable run.json is moved aside; the promotion cannot be known, so back to current.json",
            observed: observed(
                run: .unreadable, record: .read(.init(releaseID: "rel-2", startedOn: started, outcome: .running))),
            actions: [
                .moveAside(path: "/s/run.json"), .sendAllTraffic(color: "blue", because: .liveRelease("rel-1")),
                .stopColour(color: "green", because: .notLive(running: true)), .writeTargets,
                .record(outcome: .rolledBack, ended: false),
            ]),
        Case(
            name: "an unreadable record.json is moved aside; run.json decides",
            observed: observed(record: .unreadable, processes: [hook]),
            actions: [
                .moveAside(path: "/s/record.json"), .stopProcess(hook),
                .sendAllTraffic(color: "blue", because: .liveRelease("rel-1")),
                .stopColour(color: "green", because: .notLive(running: true)), .writeTargets,
                .record(outcome: .rolledBack, ended: false),
            ]),
        Case(
            name: "a run that had recorded itself: its state is removed, nothing converged",
            observed: observed(processes: [hook], alreadyRecorded: true),
            actions: [.discardState]),
        Case(
            name: "a record ended but not appended (a full disk) keeps its outcome",
            observed: observed(
                run: .read(run(.rollingBack, weight: 0)),
                record: .read(.init(releaseID: "rel-2", startedOn: started, outcome: .rolledBack))),
            actions: [
                .sendAllTraffic(color: "blue", because: .liveRelease("rel-1")),
                .stopColour(color: "green", because: .notLive(running: true)), .writeTargets,
                .record(outcome: .rolledBack, ended: true),
            ]),
        Case(
            name: "an engine that does not answer: nothing is changed",
            observed: observed(answers: false, processes: [hook]),
            actions: [.refuse(runtime: "process")]),
        Case(
            name: "without a deploy section: only processes and the record",
            observed: observed(running: nil, processes: [hook]),
            actions: [.stopProcess(hook), .record(outcome: .rolledBack, ended: false)]),
        Case(
            name: "without nginx: colours only", observed: observed(trafficSwitch: nil),
            actions: [
                .stopColour(color: "green", because: .notLive(running: true)), .writeTargets,
                .record(outcome: .rolledBack, ended: false),
            ]),
    ])
    func recoveryDecidesFromWhatItObserved(_ example: Case) throws {
        let plan = try #require(RecoveryPlan(example.observed))
        #expect(plan.actions == example.actions)
    }

    @Test func nothingPendingIsNoPlan() {
        #expect(RecoveryPlan(Self.observed(run: .absent)) == nil)
    }

    @Test func thePlanReadsForPeople() throws {
        let plan = try #require(RecoveryPlan(Self.observed(running: ["green"], processes: [Self.hook])))
        #expect(plan.releaseID == "rel-2" && plan.phase == .shifting && plan.outcome == .rolledBack)
        #expect(
            plan.lines == [
                "stop the during-step hook 0 load.sh (pid 4242) with its process group",
                "the live colour blue is not running: leave traffic as it is (orchestrate status shows where it goes)",
                "keep green running: blue, the live colour, is not running",
                "write Prometheus' targets of the colours that run",
                "append the interrupted release to the history as rolled_back",
            ])
    }
}
