import Foundation
import Testing
import Traffic

@testable import Orchestrator

/// What a step concludes from its looks at nginx and both colours, and which colour a rollback
/// may redeploy on: plain values, no processes.
@Suite struct StepWatchTests {
    static let upstream = ["green": ["127.0.0.1:2"], "blue": ["127.0.0.1:1"]]

    static func look(
        nginx: Bool = true, orphans: [Int32] = [], target: StepWatch.Colour = .serving(["127.0.0.1:2"]),
        live: StepWatch.Colour? = .serving(["127.0.0.1:1"]), upstream: [String: [String]] = upstream
    ) -> StepWatch.Look {
        StepWatch.Look(nginxRunning: nginx, orphanedWorkers: orphans, target: target, live: live, upstream: upstream)
    }

    static func watch(minimumHealthy: Int = 1, instancesMove: Bool = false) -> StepWatch {
        StepWatch(
            target: "green", live: "blue", weight: 50, minimumHealthy: minimumHealthy, instancesMove: instancesMove)
    }

    @Test func bothColoursServingAndNginxRunningHold() {
        var watch = Self.watch()
        for _ in 0..<10 { #expect(watch.decide(Self.look()) == .hold) }
    }

    @Test func aLiveColourThatStoppedRunningIsLostAtTheFirstLook() {
        var watch = Self.watch()
        #expect(watch.decide(Self.look(live: .gone)) == .liveLost("the live colour blue stopped running at 50%"))
    }

    @Test func aNewColourThatStoppedRunningIsLostAtTheFirstLook() {
        var watch = Self.watch()
        #expect(watch.decide(Self.look(target: .gone)) == .targetLost("green stopped running at 50%"))
    }

    @Test func bothLostIsTheLiveColoursLossWhichTheRollbackMustRepairFirst() {
        var watch = Self.watch()
        guard case .liveLost = watch.decide(Self.look(target: .gone, live: .gone)) else {
            Issue.record("the live colour's loss decides")
            return
        }
    }

    @Test func aColourThatRunsButIsSilentIsLostOnlyAfterThreeLooksInARow() {
        var watch = Self.watch()
        let silent = StepWatch.Colour.silent(detail: "127.0.0.1:1: timed out")
        #expect(watch.decide(Self.look(live: silent)) == .hold)
        #expect(watch.decide(Self.look(live: silent)) == .hold)
        #expect(watch.decide(Self.look()) == .hold, "an answer resets the count")
        #expect(watch.decide(Self.look(live: silent)) == .hold)
        #expect(watch.decide(Self.look(live: silent)) == .hold)
        guard case .liveLost(let why) = watch.decide(Self.look(live: silent)) else {
            Issue.record("three silent looks in a row lose the live colour")
            return
        }
        #expect(why.contains("3 times in a row") && why.contains("timed out"), "\(why)")

        var target = Self.watch()
        #expect(target.decide(Self.look(target: .silent(detail: "x"))) == .hold)
        #expect(target.decide(Self.look(target: .silent(detail: "x"))) == .hold)
        guard case .targetLost = target.decide(Self.look(target: .silent(detail: "x"))) else {
            Issue.record("three silent looks lose the new colour")
            return
        }
    }

    @Test func fewerHealthyTasksThanRequiredLoseTheNewColourAtOnce() {
        var watch = Self.watch(minimumHealthy: 3, instancesMove: true)
        let two = StepWatch.Colour.serving(["10.0.0.1:2", "10.0.0.2:2"])
        guard
            case .targetLost(let why) = watch.decide(
                Self.look(target: two, upstream: ["green": ["10.0.0.1:2", "10.0.0.2:2"], "blue": ["127.0.0.1:1"]]))
        else {
            Issue.record("2 of 3 required")
            return
        }
        #expect(why.contains("minHealthyReplicas"))
    }

    @Test func aLostNginxMasterPutsTheSplitInForceAgainNamingItsOrphans() {
        var watch = Self.watch()
        #expect(
            watch.decide(Self.look(nginx: false, orphans: [4242]))
                == .reapply("nginx's master was gone and its orphaned workers (pid 4242) served alone"))
        #expect(watch.decide(Self.look(nginx: false)) == .reapply("nginx was not running"))
        #expect(watch.decide(Self.look()) == .hold)
    }

    @Test func movedInstancesAreFollowedOnlyWhereInstancesMove() {
        let moved = Self.look(target: .serving(["10.0.0.9:2"]))
        var fixed = Self.watch()
        #expect(fixed.decide(moved) == .hold, "a process or container keeps its address; nginx holds resolved ones")
        var moving = Self.watch(instancesMove: true)
        #expect(moving.decide(moved) == .reapply("instances moved"))
        #expect(moving.decide(Self.look(target: .serving(["127.0.0.1:2"]))) == .hold)
    }

    @Test func atFullWeightTheLiveColourIsNotWatched() {
        var watch = StepWatch(target: "green", live: nil, weight: 100)
        #expect(watch.decide(Self.look(live: nil)) == .hold)
    }

    @Test(
        arguments: [
            // (colours, live, carrying, idle)
            (["blue", "green"], "blue", ["blue"], "green"),
            (["blue", "green"], "blue", [], "green"),
            // The live colour died: nginx's share for it goes to green, which carries all traffic.
            (["blue", "green"], "blue", ["green"], "blue"),
            (["blue", "green"], nil, ["green"], "blue"),
            (["blue", "green"], "blue", ["blue", "green"], nil),
        ] as [([String], String?, [String], String?)])
    func aRollbackRedeploysOnlyOnAColourThatCarriesNoTraffic(
        colors: [String], live: String?, carrying: [String], idle: String?
    ) {
        #expect(Rollback.idleColor(colors: colors, live: live, carrying: Set(carrying)) == idle)
    }

    @Test func statusNamesOrphanedWorkersAndTheSplitTheyServe() {
        let split = TrafficSplit(
            mode: .sticky,
            backends: [
                .init(color: "blue", address: "127.0.0.1:1", weight: 50),
                .init(color: "green", address: "127.0.0.1:2", weight: 50),
            ])
        var serving = ServingState(
            nginxRunning: false, nginxOrphanedWorkers: [77], traffic: split,
            trafficReport: .init(
                state: TrafficState(generation: 3, split: split), source: .nginx, orphanedWorkers: [77]), colors: [])
        #expect(serving.nginxServing)
        #expect(serving.orphanProblem?.contains("orphaned worker (pid 77)") == true)
        #expect(
            serving.orphanProblem?.contains("they serve blue 50%, green 50%") == true, "\(serving.orphanProblem ?? "")")
        serving.nginxOrphanedWorkers = []
        #expect(serving.orphanProblem == nil)
        #expect(!serving.nginxServing)
    }
}
