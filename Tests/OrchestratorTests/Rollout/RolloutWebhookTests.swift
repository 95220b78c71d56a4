import Foundation
import OrchestratorSupport
import StrictYAML
import Testing

@testable import Orchestrator
@testable import PipelineSchema
@testable import Provenance

/// The webhook gates on plain values: the machine with the fakes of `RolloutFakes` (blue live,
/// green new, steps 50/100, a gate, no judge), each webhook call held until the test answers it.
@Suite struct RolloutWebhookTests {
    static func plan(_ webhooks: [WebhookGate], automaticRollback: Bool = true) -> RolloutMachine.Plan {
        var plan = FakePlan.plan(steps: [50, 100], automaticRollback: automaticRollback, judge: false, hooks: false)
        plan.webhooks = webhooks
        return plan
    }

    static func gate(
        _ kind: WebhookGate.Kind, _ name: String = "gate", onUnreachable: WebhookGate.OnUnreachable? = nil
    ) -> WebhookGate {
        WebhookGate(name: name, kind: kind, url: "http://127.0.0.1:9/\(name)", onUnreachable: onUnreachable)
    }

    /// The webhook calls waiting for their answer.
    static func calls(_ harness: RolloutHarness) -> [RolloutMachine.WebhookCall] {
        harness.pending.compactMap {
            if case .askWebhook(let call) = $0 { return call }
            return nil
        }
    }

    /// Answers the one webhook call waiting.
    static func answer(_ harness: RolloutHarness, _ answer: RolloutMachine.WebhookAnswer) async throws {
        let call = try #require(calls(harness).first, "a webhook call waits for its answer")
        await harness.send(.webhookAnswered(call, answer))
    }

    /// Both steps pass: the rollout reaches the promotion's gate.
    static func reachPromotion(_ harness: RolloutHarness) async {
        await harness.send(.start)
        await harness.passStep()
        await harness.passStep()
    }

    static func details(_ harness: RolloutHarness) -> [String] {
        harness.recorded.filter { $0.kind == .webhook }.map(\.detail)
    }

    // MARK: confirm-promotion

    @Test func confirmPromotionWaitsUntilTheWebhookAnswers2xx() async throws {
        let harness = RolloutHarness(plan: Self.plan([Self.gate(.confirmPromotion, "approve-100")]))
        await Self.reachPromotion(harness)
        #expect(harness.phaseName == "confirming")
        #expect(harness.split == ["green": 100])
        #expect(harness.journal.state.get().waiting == "waiting for confirm-promotion approve-100")
        #expect(Self.calls(harness).map(\.phase) == ["Promoting"])

        try await Self.answer(harness, .status(403))
        #expect(harness.phaseName == "confirming", "a no keeps it waiting")
        #expect(harness.isPending { $0 == .startTimer(.webhookDue(round: 1), after: .seconds(5)) })
        #expect(Self.calls(harness).isEmpty, "asked again only after its interval")
        await harness.send(.timer(.webhookDue(round: 1)))
        try await Self.answer(harness, .status(200))

        #expect(harness.phaseName == "draining")
        #expect(harness.journal.state.get().live?.color == "green")
        #expect(harness.journal.state.get().waiting == nil)
        #expect(
            Self.details(harness) == [
                "waiting for confirm-promotion approve-100 at 100%", "confirm-promotion approve-100: HTTP 403",
                "confirm-promotion approve-100: HTTP 200",
            ])
    }

    @Test(arguments: [ControlRequest.approve, .promote])
    func anOperatorAnswersTheGateByHand(_ request: ControlRequest) async throws {
        let harness = RolloutHarness(plan: Self.plan([Self.gate(.confirmPromotion, "approve-100")]))
        await Self.reachPromotion(harness)
        try await Self.answer(harness, .status(500))
        await harness.send([.requestedBy("alice"), .control(request)])

        #expect(harness.phaseName == "draining")
        #expect(
            Self.details(harness).last
                == "confirm-promotion approve-100: approved by hand by alice (orchestrate \(request.rawValue))")
        // An answer still on its way from before is not taken for another wait.
        await harness.send(.webhookAnswered(.init(webhook: 0, phase: "Promoting", round: 1), .status(200)))
        #expect(harness.phaseName == "draining")
    }

    /// Observers hear once that the rollout waits (at the first no) and who answered; the record
    /// keeps every decisive answer, the receiver's too.
    @Test func aWaitIsAnnouncedOnceAndTheAnswersAreRecordedWithWhoGaveThem() async throws {
        let harness = RolloutHarness(
            plan: Self.plan([Self.gate(.confirmTrafficIncrease, "more"), Self.gate(.confirmPromotion, "go")]))
        await harness.send(.start)
        await harness.passStep()
        try await Self.answer(harness, .status(200))  // confirm-traffic-increase: yes at once, nobody told
        await harness.passStep()
        try await Self.answer(harness, .status(503))
        await harness.send(.timer(.webhookDue(round: 2)))
        try await Self.answer(harness, .status(503))
        await harness.send([.requestedBy("alice"), .control(.approve)])

        #expect(harness.phaseName == "draining")
        #expect(
            harness.notifier.announcements.get().filter {
                if case .gateWaiting = $0 { return true }
                if case .gateAnswered = $0 { return true }
                return false
            } == [
                .gateWaiting(gate: "confirm-promotion go", point: "before the promotion", step: nil, weight: 100),
                .gateAnswered(
                    gate: "confirm-promotion go", point: "before the promotion", step: nil,
                    answer: "approved (orchestrate approve)", by: "alice"),
            ])
        #expect(
            harness.journal.state.get().gateAnswers.map { [$0.gate, $0.point, "\($0.step ?? 0)", $0.answer, $0.by] }
                == [
                    ["confirm-traffic-increase more", "before step 2", "2", "yes (HTTP 200)", "receiver"],
                    ["confirm-promotion go", "before the promotion", "0", "approved (orchestrate approve)", "alice"],
                ])
    }

    @Test func aRequestThatDoesNotSayWhoIsNeverGivenAnEarlierRequestersName() async throws {
        let harness = RolloutHarness(plan: Self.plan([Self.gate(.confirmPromotion, "go")]))
        await Self.reachPromotion(harness)
        await harness.send(.requestedBy("alice"))  // a request of hers, taken earlier
        await harness.send([.requestedBy(nil), .control(.approve)])
        #expect(harness.phaseName == "draining")
        #expect(harness.journal.state.get().gateAnswers.map(\.by) == ["unknown"])
    }

    @Test func anAbortWhileWaitingRollsBack() async throws {
        let harness = RolloutHarness(plan: Self.plan([Self.gate(.confirmPromotion)]))
        await Self.reachPromotion(harness)
        await harness.send(.control(.abort))

        #expect(harness.machine.ending == .finished(.rolledBack, failure: RolloutFailure(.aborted)))
        #expect(harness.split == ["blue": 100])
        #expect(harness.journal.state.get().live == nil, "never promoted")
    }

    @Test func aSignalWhileWaitingRollsBackAsInterrupted() async throws {
        let harness = RolloutHarness(plan: Self.plan([Self.gate(.confirmPromotion)]))
        await Self.reachPromotion(harness)
        await harness.send(.signal(SIGTERM))

        #expect(harness.split == ["blue": 100])
        let ending = try #require(harness.machine.ending)
        #expect(RolloutMachine.exitStatus(ending, signal: harness.machine.signal) == 128 + SIGTERM)
    }

    // MARK: The receiver down

    @Test func aConfirmGateWhoseReceiverIsDownWaitsByDefault() async throws {
        let harness = RolloutHarness(plan: Self.plan([Self.gate(.confirmPromotion)]))
        await Self.reachPromotion(harness)
        try await Self.answer(harness, .unreachable("transfer-failed"))
        #expect(harness.phaseName == "confirming")
        #expect(harness.split == ["green": 100])
    }

    @Test func aConfirmGateWhoseReceiverIsDownFailsUnderFail() async throws {
        let harness = RolloutHarness(plan: Self.plan([Self.gate(.confirmPromotion, onUnreachable: .fail)]))
        await Self.reachPromotion(harness)
        try await Self.answer(harness, .unreachable("transfer-failed"))
        #expect(harness.machine.ending?.outcomeForTests == .rolledBack)
        #expect(harness.split == ["blue": 100])
        #expect(
            harness.failure?.contains("webhook confirm-promotion gate is unreachable") == true,
            "\(harness.failure ?? "")")
    }

    @Test func aConfirmGateWhoseReceiverIsDownOpensUnderPass() async throws {
        let harness = RolloutHarness(plan: Self.plan([Self.gate(.confirmPromotion, onUnreachable: .pass)]))
        await Self.reachPromotion(harness)
        try await Self.answer(harness, .unreachable("transfer-failed"))
        #expect(harness.phaseName == "draining")
    }

    @Test func aPreRolloutWebhookThatIsDownFailsTheReleaseBeforeAnyTraffic() async throws {
        let harness = RolloutHarness(plan: Self.plan([Self.gate(.preRollout, "smoke")]))
        await harness.send(.start)
        #expect(harness.phaseName == "confirming")
        #expect(harness.runtime.state.get().running.contains("green"))
        try await Self.answer(harness, .unreachable("transfer-failed"))

        #expect(harness.machine.ending?.outcomeForTests == .failed)
        #expect(harness.split == ["blue": 100])
        #expect(!harness.runtime.state.get().running.contains("green"))
        #expect(!harness.log.contains { if case .shift = $0 { true } else { false } }, "no traffic moved")
    }

    @Test func aPreRolloutWebhookThatSaysNoFailsTheRelease() async throws {
        let harness = RolloutHarness(plan: Self.plan([Self.gate(.preRollout, "smoke", onUnreachable: .pass)]))
        await harness.send(.start)
        try await Self.answer(harness, .status(500))
        #expect(harness.machine.ending?.outcomeForTests == .failed)
        #expect(harness.failure == "webhook pre-rollout smoke answered HTTP 500")
    }

    @Test func aPreRolloutWebhookThatIsDownPassesUnderPass() async throws {
        let harness = RolloutHarness(plan: Self.plan([Self.gate(.preRollout, "smoke", onUnreachable: .pass)]))
        await harness.send(.start)
        try await Self.answer(harness, .unreachable("timed-out"))
        #expect(harness.phaseName == "holding")
        #expect(harness.split == ["blue": 50, "green": 50])
    }

    // MARK: rollback

    @Test func aRollbackWebhookAnswering2xxRollsBackWhateverRollbackAutomaticSays() async throws {
        let harness = RolloutHarness(
            plan: Self.plan([Self.gate(.rollback, "kill-switch")], automaticRollback: false))
        await harness.send(.start)
        #expect(harness.split == ["blue": 50, "green": 50])
        try await Self.answer(harness, .status(404))
        #expect(harness.phaseName == "holding", "anything but a 2xx lets the step go on")
        #expect(harness.isPending { $0 == .startTimer(.rollbackWebhookDue(step: 0, webhook: 0), after: .seconds(5)) })
        await harness.send(.timer(.rollbackWebhookDue(step: 0, webhook: 0)))
        try await Self.answer(harness, .status(200))

        #expect(harness.machine.ending?.outcomeForTests == .rolledBack)
        #expect(harness.split == ["blue": 100])
        #expect(harness.failure == "webhook rollback kill-switch answered HTTP 200: rolled back")
    }

    @Test func aRollbackWebhookThatIsDownDoesNotAbortByDefault() async throws {
        let harness = RolloutHarness(plan: Self.plan([Self.gate(.rollback, "kill-switch")]))
        await harness.send(.start)
        try await Self.answer(harness, .unreachable("transfer-failed"))
        #expect(harness.phaseName == "holding")
        await harness.passStep()
        #expect(harness.split == ["green": 100], "the next step")
    }

    // MARK: confirm-traffic-increase and confirm-rollout

    @Test func confirmTrafficIncreaseHoldsTheSplitUntilApproved() async throws {
        let harness = RolloutHarness(plan: Self.plan([Self.gate(.confirmTrafficIncrease, "more")]))
        await harness.send(.start)
        #expect(Self.calls(harness).isEmpty, "not before the first step")
        await harness.passStep()
        #expect(harness.phaseName == "confirming")
        #expect(harness.split == ["blue": 50, "green": 50])
        try await Self.answer(harness, .status(200))
        #expect(harness.phaseName == "holding")
        #expect(harness.split == ["green": 100])
    }

    @Test func promoteFullWhileWaitingGoesTo100AndAnswersConfirmPromotion() async throws {
        let harness = RolloutHarness(
            plan: Self.plan([Self.gate(.confirmTrafficIncrease, "more"), Self.gate(.confirmPromotion, "done")]))
        await harness.send(.start)
        await harness.passStep()
        await harness.send(.control(.promoteFull))
        #expect(harness.split == ["green": 100])
        #expect(harness.phaseName == "draining")
        #expect(Self.details(harness).contains { $0.hasPrefix("waiting for confirm-promotion") } == false)
    }

    @Test func confirmRolloutWaitsBeforeTheDeployAndAnAbortChangesNothing() async throws {
        let harness = RolloutHarness(plan: Self.plan([Self.gate(.confirmRollout, "window")]))
        await harness.send(.start)
        #expect(harness.phaseName == "confirming")
        #expect(!harness.log.contains { if case .deploy = $0 { true } else { false } })
        await harness.send(.control(.abort))
        #expect(harness.machine.ending?.outcomeForTests == .rolledBack)
        #expect(!harness.log.contains { if case .deploy = $0 { true } else { false } })
        #expect(harness.split == ["blue": 100])
    }

    @Test func postRolloutWebhooksAreToldAndRecorded() async throws {
        let harness = RolloutHarness(plan: Self.plan([Self.gate(.postRollout, "tell")]))
        harness.webhooks.answers.update { $0["tell"] = .status(502) }
        await harness.send(.start)
        await harness.passStep()
        await harness.passStep()
        #expect(harness.phaseName == "draining")
        #expect(harness.webhooks.calls.get().map(\.phase) == ["Succeeded"])
        #expect(Self.details(harness) == ["post-rollout tell (Succeeded): HTTP 502"])
    }
}

extension RolloutMachine.Ending {
    var outcomeForTests: ReleaseOutcome? {
        if case .finished(let outcome, _) = self { return outcome }
        return nil
    }
}

extension RolloutHarness {
    /// The failure the rollout ended on.
    var failure: String? {
        if case .finished(_, let failure)? = machine.ending { return failure?.description }
        return nil
    }
}
