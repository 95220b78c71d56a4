import Foundation
import StrictYAML
import Testing
import Traffic

@testable import Orchestrator
@testable import PipelineSchema
@testable import Provenance

/// The shadow stage's decisions on plain values: the machine with the fakes of `RolloutFakes`
/// (blue live, green new), a shadow stage of 10 % that needs 50 comparisons within 60 s, gated on
/// RBO, overlap, p95 latency ratio and errors. A failure must end the release before step 1, with
/// traffic back on blue alone and green stopped; a pass must go on to step 1.
@Suite struct ShadowStageTests {
    static let spec = ShadowSpec(
        share: 10, duration: .seconds(60), requests: 50,
        gates: ShadowGates(rboMin: 0.2, overlapMin: 0.1, p95LatencyRatioMax: 2, errorsMax: 0.05))

    static func harness(
        live: LiveRelease? = FakePlan.live, spec: ShadowSpec = spec, automaticRollback: Bool = true
    ) -> RolloutHarness {
        var plan = FakePlan.plan(live: live, automaticRollback: automaticRollback, hooks: false)
        plan.shadow = live == nil ? nil : spec
        return RolloutHarness(plan: plan)
    }

    /// nginx's counts after `compared` comparisons of mean RBO `rbo`, live answering in ~10 ms and
    /// the new colour in ~`newMilliseconds`.
    static func counts(
        compared: Int, rbo: Double, errors: Int = 0, newMilliseconds: Double = 10
    ) -> ShadowCounts {
        var counts = ShadowCounts(experiment: "rel-2-shadow", color: "green")
        counts.sampled = compared + errors
        counts.compared = compared
        counts.errors = errors
        counts.rboSum = rbo * Double(compared)
        counts.overlapSum = rbo * Double(compared)
        counts.rboHistogram[min(9, Int(rbo * 10))] = compared
        let bucket = { (ms: Double) in Int((log(ms) / log(1.1)).rounded(.down)) + 1 }
        counts.liveLatency = [bucket(10): compared]
        counts.newLatency = [bucket(newMilliseconds): compared]
        counts.samples = [
            .init(
                user: "u1", rbo: rbo, overlap: rbo, liveMilliseconds: 10, newMilliseconds: newMilliseconds,
                live: ["m1", "m2"], new: ["m9", "m2"])
        ]
        return counts
    }

    func look(_ harness: RolloutHarness, _ result: Result<ShadowCounts?, FakeError>) async {
        harness.traffic.state.update { $0.shadowCounts.append(result) }
        await harness.send(.timer(.shadowDue))
        await harness.answer { $0 == .lookShadow }
    }

    /// The steps' splits the machine asked for, by weight.
    func shifts(_ harness: RolloutHarness) -> [Int] {
        harness.log.compactMap { effect -> Int? in
            if case .shift(let weight) = effect { return weight }
            return nil
        }
    }

    @Test func theShadowSplitHasTheNewColourAtZeroAndShadowed() async {
        let harness = Self.harness()
        await harness.send(.start)
        #expect(harness.phaseName == "shadowing")
        #expect(harness.split == ["blue": 100, "green": 0])
        #expect(harness.traffic.state.get().shadow?.percent == 10)
        #expect(harness.traffic.state.get().shadow?.experiment == "rel-2-shadow")
        #expect(harness.recorded.last?.kind == .shadow)
        #expect(shifts(harness).isEmpty, "no step before the shadow stage decides")
    }

    @Test func aHealthyCandidatePassesAndGoesOnToStepOne() async {
        let harness = Self.harness()
        await harness.send(.start)
        await look(harness, .success(Self.counts(compared: 20, rbo: 0.8)))
        #expect(harness.phaseName == "shadowing", "20 of the 50 comparisons: not yet")
        await look(harness, .success(Self.counts(compared: 50, rbo: 0.8)))
        #expect(harness.phaseName == "holding")
        #expect(shifts(harness) == [25])
        #expect(harness.split == ["blue": 75, "green": 25])
        #expect(harness.traffic.state.get().shadow == nil, "step 1's split ends the shadow")
        let comparison = harness.journal.state.get().shadow
        #expect(comparison?.passed == true)
        #expect(comparison?.compared == 50)
        #expect(comparison?.gates.map(\.name) == ["rbo", "overlap", "p95_latency_ratio", "errors"])
        #expect(comparison?.gates.allSatisfy(\.passed) == true)
    }

    @Test func garbageListsFailBeforeStepOneAndNoUserSawTheNewColour() async {
        let harness = Self.harness()
        await harness.send(.start)
        await look(harness, .success(Self.counts(compared: 50, rbo: 0.02)))
        #expect(harness.phaseName == "done")
        #expect(shifts(harness).isEmpty, "no step was ever put in force")
        #expect(harness.split == ["blue": 100], "all traffic on blue, nothing shadowed")
        #expect(harness.traffic.state.get().shadow == nil)
        #expect(harness.runtime.state.get().stopped == ["green"])
        let ending = harness.machine.ending?.recorded
        #expect(ending?.outcome == .rolledBack)
        #expect(ending?.failure?.hasPrefix("shadow stage: rbo 0.02 is not >= 0.2") == true, "\(ending?.failure ?? "")")
        #expect(ending?.failure?.contains("no user saw green") == true)
        #expect(harness.journal.state.get().steps.isEmpty)
        let comparison = harness.journal.state.get().shadow
        #expect(comparison?.passed == false)
        #expect(comparison?.samples.first?.newItems == ["m9", "m2"])
    }

    /// Under `rollback.automatic: false` a failed shadow stage holds as a failed step does: green
    /// at 0 % (no user on it), until `promote` (step 1) or `abort` (rolled back, exit 1). A
    /// `promote` asked during the stage, before the verdict, does not decide it.
    @Test func underManualRollbackAFailedShadowStageHoldsForADecision() async {
        let harness = Self.harness(automaticRollback: false)
        await harness.send(.start)
        await harness.send(.control(.promote))
        await look(harness, .success(Self.counts(compared: 50, rbo: 0.02)))
        #expect(harness.phaseName == "holding after the shadow stage")
        #expect(harness.machine.ending == nil)
        #expect(shifts(harness).isEmpty && harness.split == ["blue": 100, "green": 0], "no user on green")
        #expect(harness.runtime.state.get().stopped.isEmpty, "green keeps running for the decision")
        #expect(harness.journal.state.get().phase == .holding)
        #expect(harness.journal.state.get().shadow?.passed == false)
        let hold = harness.recorded.last
        #expect(hold?.kind == .hold)
        #expect(
            hold?.detail.hasPrefix("shadow stage: rbo 0.02 is not >= 0.2") == true
                && hold?.detail.hasSuffix("rollback.automatic is false: holding before step 1 (green at 0%)") == true,
            "\(hold?.detail ?? "")")
        #expect(
            RolloutScenarioTests.lines(harness).last
                == "hold: rollback.automatic is false: traffic stays at green 0%; `orchestrate abort` rolls back, `orchestrate promote` goes on"
        )

        await harness.send(.control(.promote))
        #expect(harness.phaseName == "holding")
        #expect(shifts(harness) == [25] && harness.split == ["blue": 75, "green": 25])
        #expect(
            harness.recorded.contains {
                $0.kind == .promote
                    && $0.detail.hasPrefix("orchestrate promote before step 1 despite: shadow stage: rbo")
            })
    }

    @Test func underManualRollbackAnAbortAfterAFailedShadowStageRollsBack() async {
        let harness = Self.harness(automaticRollback: false)
        await harness.send(.start)
        await look(harness, .success(Self.counts(compared: 50, rbo: 0.02)))
        await harness.send(.control(.abort))
        let ending = harness.machine.ending
        #expect(ending?.recorded == RecordedEnding(.rolledBack, failure: "aborted by orchestrate abort"))
        #expect(ending.flatMap { RolloutMachine.exitStatus($0, signal: nil) } == 1)
        #expect(harness.split == ["blue": 100] && harness.runtime.state.get().stopped == ["green"])
    }

    @Test func aSlowCandidateFailsItsLatencyGate() async {
        let harness = Self.harness()
        await harness.send(.start)
        await look(harness, .success(Self.counts(compared: 50, rbo: 0.9, newMilliseconds: 500)))
        #expect(harness.machine.ending?.recorded?.failure?.hasPrefix("shadow stage: p95_latency_ratio") == true)
        #expect(shifts(harness).isEmpty)
    }

    @Test func tooFewComparisonsWithinTheDurationFail() async {
        let harness = Self.harness()
        await harness.send(.start)
        await look(harness, .success(Self.counts(compared: 3, rbo: 0.9, errors: 40)))
        #expect(harness.phaseName == "shadowing")
        harness.traffic.state.update {
            $0.shadowCounts.append(.success(Self.counts(compared: 3, rbo: 0.9, errors: 40)))
        }
        await harness.send(.timer(.shadowEnd))
        await harness.answer { $0 == .lookShadow }
        let failure = harness.machine.ending?.recorded?.failure ?? ""
        #expect(failure.contains("3 comparisons of the 50 required within 1m"), "\(failure)")
        #expect(failure.contains("40 of 43 shadow requests to green failed"), "\(failure)")
        #expect(harness.split == ["blue": 100])
    }

    @Test func aDurationOnlyStagePassesAtItsEnd() async {
        var spec = Self.spec
        spec.requests = nil
        let harness = Self.harness(spec: spec)
        await harness.send(.start)
        await look(harness, .success(Self.counts(compared: 500, rbo: 0.7)))
        #expect(harness.phaseName == "shadowing", "without requests, only the duration ends it")
        harness.traffic.state.update { $0.shadowCounts.append(.success(Self.counts(compared: 700, rbo: 0.7))) }
        await harness.send(.timer(.shadowEnd))
        await harness.answer { $0 == .lookShadow }
        #expect(harness.journal.state.get().shadow?.compared == 700)
        #expect(shifts(harness) == [25])
    }

    @Test func nginxSilentFiveTimesFails() async {
        let harness = Self.harness()
        await harness.send(.start)
        for _ in 0..<4 { await look(harness, .failure(FakeError("connection refused"))) }
        #expect(harness.phaseName == "shadowing")
        await look(harness, .failure(FakeError("connection refused")))
        let failure = harness.machine.ending?.recorded?.failure ?? ""
        #expect(failure.contains("nginx did not answer GET /shadow 5 times in a row"), "\(failure)")
        #expect(harness.split == ["blue": 100])
    }

    @Test func anAbortDuringTheShadowRollsBack() async {
        let harness = Self.harness()
        await harness.send(.start)
        await harness.send(.control(.abort))
        #expect(harness.machine.ending?.recorded?.outcome == .rolledBack)
        #expect(harness.split == ["blue": 100])
        #expect(harness.runtime.state.get().stopped == ["green"])
        #expect(!harness.isPending { RolloutRunner.scope(of: $0) == .shadow }, "the stage's timers are cancelled")
    }

    @Test func sigtermDuringTheShadowPutsTrafficBackAndExitsAsInterrupted() async {
        let harness = Self.harness()
        await harness.send(.start)
        await harness.send(.signal(SIGTERM))
        #expect(harness.machine.ending?.recorded?.outcome == .interrupted)
        #expect(harness.machine.ending?.recorded?.failure == "interrupted by SIGTERM at 0%")
        #expect(harness.split == ["blue": 100])
        #expect(harness.runtime.state.get().stopped == ["green"])
    }

    @Test func aPromoteDuringTheShadowWaitsForStepOne() async {
        let harness = Self.harness()
        await harness.send(.start)
        await harness.send(.control(.promote))
        #expect(harness.phaseName == "shadowing", "promote decides nothing the shadow stage measures")
        await look(harness, .success(Self.counts(compared: 50, rbo: 0.8)))
        #expect(harness.phaseName == "holding")
        guard case .holding(let hold) = harness.machine.phase else { return }
        #expect(hold.skipWait && hold.requests == ["promote"], "step 1 takes the promote")
    }

    @Test func aFirstReleaseHasNoShadowStage() async {
        let harness = Self.harness(live: nil)
        await harness.send(.start)
        #expect(harness.phaseName == "holding")
        #expect(
            !harness.log.contains { effect in
                if case .startShadow = effect { return true }
                return false
            })
    }

    @Test func nginxRefusingTheShadowSplitRollsBack() async {
        let harness = Self.harness()
        harness.traffic.state.update { $0.failNextShadow = "nginx refused the split" }
        await harness.send(.start)
        let failure = harness.machine.ending?.recorded?.failure ?? ""
        #expect(failure.contains("the shadow stage could not start: nginx refused the split"), "\(failure)")
        #expect(harness.split == ["blue": 100])
        #expect(harness.runtime.state.get().stopped == ["green"])
    }
}

/// `ShadowVerdict` on hand-made counts: the mean, the quantiles, the gates.
@Suite struct ShadowVerdictTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func theP95IsTheBucketBoundOfTheRank() {
        // 100 answers: 95 in bucket 25 (1.1^25 = 10.83 ms), 5 in bucket 50.
        #expect(ShadowCounts.quantile(0.95, of: [25: 95, 50: 5]) == ShadowCounts.latencyBound(25))
        #expect(ShadowCounts.quantile(0.96, of: [25: 95, 50: 5]) == ShadowCounts.latencyBound(50))
        #expect(ShadowCounts.quantile(0.5, of: [:]) == nil)
        #expect(abs(ShadowCounts.latencyBound(25) - 10.8347) < 0.001)
    }

    @Test func everyGateIsReportedAndTheFirstFailedNamesTheFailure() {
        var counts = ShadowCounts(experiment: "e", color: "green")
        counts.compared = 10
        counts.errors = 10
        counts.rboSum = 5
        counts.overlapSum = 0.5
        let spec = ShadowSpec(
            share: 5, duration: .seconds(30), requests: 10,
            gates: ShadowGates(rboMin: 0.4, overlapMin: 0.1, errorsMax: 0.1))
        let result = ShadowVerdict.decide(
            counts, spec: spec, target: "green", live: "blue", startedOn: start, at: start + 30)
        #expect(result.meanRBO == 0.5 && result.meanOverlap == 0.05 && result.errorShare == 0.5)
        #expect(result.gates.map(\.passed) == [true, false, false])
        #expect(result.verdict.hasPrefix("shadow stage: overlap 0.05 is not >= 0.1"), "\(result.verdict)")
        #expect(!result.passed)
    }

    @Test func theSamplesKeptAreTheLowestRBOFirst() {
        var counts = ShadowCounts(experiment: "e", color: "green")
        counts.compared = 30
        counts.rboSum = 27
        counts.samples = (0..<30).map {
            .init(
                user: "u\($0)", rbo: Double($0) / 30, overlap: 1, liveMilliseconds: 1, newMilliseconds: 1, live: [],
                new: [])
        }.shuffled()
        let spec = ShadowSpec(share: 5, duration: .seconds(30), gates: ShadowGates(rboMin: 0.1))
        let result = ShadowVerdict.decide(
            counts, spec: spec, target: "green", live: "blue", startedOn: start, at: start + 30)
        #expect(result.samples.count == ShadowComparison.maximumSamples)
        #expect(result.samples.first?.user == "u0")
        #expect(result.passed, "\(result.verdict)")
    }

    /// 100 comparisons of k = 5: live recommended 60 distinct movies, its 10 most recommended took
    /// 40 % of its 500 recommendations; the candidate's `distinct` and `top10` are given.
    func catalogueCounts(distinct: Int, top10: Int) -> ShadowCounts {
        var counts = ShadowCounts(experiment: "e", color: "green")
        counts.compared = 100
        counts.rboSum = 60
        counts.overlapSum = 60
        counts.liveItems = .init(total: 500, distinct: 60, top10: 200)
        counts.newItems = .init(total: 500, distinct: distinct, top10: top10)
        return counts
    }

    static let catalogueSpec = ShadowSpec(
        share: 10, duration: .seconds(30), requests: 100,
        gates: ShadowGates(rboMin: 0.2, coverageMin: 0.5, popularityMax: 1.5))

    @Test func aPopularityCollapseFailsThePopularityGate() {
        // Every list the same 5 most popular movies: 5 distinct, all 500 in its top 10.
        let result = ShadowVerdict.decide(
            catalogueCounts(distinct: 5, top10: 500), spec: Self.catalogueSpec, target: "green", live: "blue",
            startedOn: start, at: start + 30)
        #expect(!result.passed)
        #expect(result.gates.map(\.name) == ["rbo", "coverage", "popularity"])
        #expect(result.gates.map(\.passed) == [true, false, false])
        let coverage = result.gates[1].value ?? 0
        let popularity = result.gates[2].value ?? 0
        #expect(abs(coverage - 5.0 / 60) < 1e-9 && abs(popularity - 2.5) < 1e-9)
        #expect(
            result.verdict
                == "shadow stage: coverage 0.0833 is not >= 0.5 (distinct movies green recommended over blue's: 5 against 60, over 100 live requests); no user saw green",
            "\(result.verdict)")
    }

    @Test func popularityAloneNamesTheTop10Shares() {
        // As many movies covered, but 90 % of the recommendations on 10 of them.
        var spec = Self.catalogueSpec
        spec.gates.coverageMin = nil
        let result = ShadowVerdict.decide(
            catalogueCounts(distinct: 60, top10: 450), spec: spec, target: "green", live: "blue", startedOn: start,
            at: start + 30)
        #expect(result.gates.map(\.passed) == [true, false])
        #expect(
            result.verdict.hasPrefix(
                "shadow stage: popularity 2.25 is not <= 1.5 (share of green's recommendations taken by its 10 most recommended movies over blue's: 90.0 % against 40.0 %"
            ), "\(result.verdict)")
    }

    @Test func aCandidateSpreadEnoughPassesBothAndTheBoundIsInclusive() {
        // Coverage exactly 0.5 passes; popularity 60 % against 40 %: 1.5 (to rounding) passes.
        let result = ShadowVerdict.decide(
            catalogueCounts(distinct: 30, top10: 300), spec: Self.catalogueSpec, target: "green", live: "blue",
            startedOn: start, at: start + 30)
        #expect(result.passed, "\(result.verdict)")
        let values = result.gates.map { $0.value ?? -1 }
        #expect(values.count == 3 && abs(values[0] - 0.6) < 1e-9 && values[1] == 0.5 && abs(values[2] - 1.5) < 1e-9)
        #expect(result.verdict.contains("coverage 0.5 >= 0.5, popularity 1.5 <= 1.5"), "\(result.verdict)")
    }

    @Test func withoutLiveRecommendationsTheCatalogueGatesHaveNoDataAndFail() {
        var counts = catalogueCounts(distinct: 5, top10: 500)
        counts.liveItems = .init()
        let result = ShadowVerdict.decide(
            counts, spec: Self.catalogueSpec, target: "green", live: "blue", startedOn: start, at: start + 30)
        #expect(result.gates.map { $0.value == nil } == [false, true, true])
        #expect(result.verdict.hasPrefix("shadow stage: coverage no data is not >= 0.5"), "\(result.verdict)")
    }

    @Test func nothingComparedFailsAndSaysWhy() {
        let spec = ShadowSpec(share: 5, duration: .seconds(30), gates: ShadowGates(rboMin: 0.1))
        let result = ShadowVerdict.decide(nil, spec: spec, target: "green", live: "blue", startedOn: start, at: start)
        #expect(!result.passed)
        #expect(
            result.verdict == "shadow stage: nothing compared within 30s; no live /recommend request came to shadow")
    }
}
