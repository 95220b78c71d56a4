import Foundation
import PipelineSchema
import Provenance
import StrictYAML

extension RolloutMachine {
    /// A webhook gate being asked: the rollout waits in `.confirming` until it answers yes (a
    /// 2xx), an operator answers it by hand (`orchestrate approve` or `promote`), or the rollout
    /// stops. A pre-rollout webhook is asked the same way, but a no fails the release.
    struct Confirm: Sendable, Equatable {
        /// What comes once the gate is open.
        enum Next: Sendable, Equatable {
            /// The deploy (confirm-rollout).
            case deploy
            /// The shadow stage or the first step (pre-rollout).
            case traffic
            /// Step `index` (confirm-traffic-increase).
            case step(Int)
            /// The promotion (confirm-promotion).
            case promotion
        }

        /// Its position in `plan.webhooks`.
        var webhook: Int
        var next: Next
        /// Answers and timers of an earlier wait are told apart by it.
        var round: Int
        /// The step held before (for `promote --full` during confirm-traffic-increase).
        var hold: Hold?
        /// Observers were told that the rollout waits for it (once it first did not answer yes).
        var announced = false
    }

    /// Where a gate acts before `next`, for people, and the traffic step it comes before
    /// (counted from 1; nil before the deploy and the promotion).
    func gatePoint(_ next: Confirm.Next) -> (text: String, step: Int?) {
        switch next {
        case .deploy: ("before the deploy", nil)
        case .traffic: ("before any traffic", 1)
        case .step(let index): ("before step \(index + 1)", index + 1)
        case .promotion: ("before the promotion", nil)
        }
    }

    /// The record's entry for an answer to the gate `confirm` waits for.
    func answered(_ confirm: Confirm, _ answer: String, by: String, at now: Date) -> Effect {
        let (point, step) = gatePoint(confirm.next)
        return .recordGateAnswer(
            .init(gate: plan.webhooks[confirm.webhook].label, point: point, step: step, answer: answer, by: by, at: now)
        )
    }

    /// Observers are told a confirm gate they were told about was answered.
    func toldAnswered(_ confirm: Confirm, _ answer: String, by: String) -> [Effect] {
        let gate = plan.webhooks[confirm.webhook]
        guard gate.kind.isConfirm, confirm.announced || by != "receiver" else { return [] }
        let (point, step) = gatePoint(confirm.next)
        return [.announce(.gateAnswered(gate: gate.label, point: point, step: step, answer: answer, by: by))]
    }

    /// One request to a webhook: which, with what phase in its body, for which wait (`round`)
    /// or during which step's hold (`step`, a rollback webhook).
    struct WebhookCall: Sendable, Equatable, Hashable {
        var webhook: Int
        /// Flagger's phase: `Progressing`, `Promoting`, `Succeeded`, `Failed`.
        var phase: String
        var round: Int = 0
        var step: Int? = nil
    }

    /// What a webhook answered (after its retries).
    enum WebhookAnswer: Sendable, Equatable, CustomStringConvertible {
        case status(Int)
        /// No answer: the receiver could not be reached or did not answer in time.
        case unreachable(String)

        var isYes: Bool {
            if case .status(let code) = self { return (200..<300).contains(code) }
            return false
        }

        var description: String {
            switch self {
            case .status(let code): "HTTP \(code)"
            case .unreachable(let error): "unreachable (\(error.prefix { $0 != "\n" }))"
            }
        }
    }

    /// Opens the gates of `kind` listed after position `after` in turn, then goes on to `next`.
    mutating func gateThen(
        _ kind: WebhookGate.Kind, after: Int = -1, next: Confirm.Next, hold: Hold? = nil, at now: Date
    ) -> [Effect] {
        guard !(kind == .confirmPromotion && promotionApproved),
            let index = plan.webhooks.indices.first(where: { $0 > after && plan.webhooks[$0].kind == kind })
        else { return proceed(next, hold: hold, at: now) }
        if let stop = takePendingStop() { return stopped(stop, confirming: next, at: now) }
        webhookRound += 1
        let gate = plan.webhooks[index]
        phase = .confirming(Confirm(webhook: index, next: next, round: webhookRound, hold: hold))
        let waiting = "waiting for \(gate.label)"
        return [
            .save(RunStateChange(waiting: waiting)),
            .record(.webhook, "\(waiting) at \(weight)%", at: now),
            .progress(.webhookWaiting(webhook: gate.label, weight: weight)),
            .askWebhook(WebhookCall(webhook: index, phase: Self.flaggerPhase(next), round: webhookRound)),
        ]
    }

    static func flaggerPhase(_ next: Confirm.Next) -> String {
        next == .promotion ? "Promoting" : "Progressing"
    }

    /// What comes after the gates of a point.
    private mutating func proceed(_ next: Confirm.Next, hold: Hold?, at now: Date) -> [Effect] {
        switch next {
        case .deploy: return startDeploy(at: now)
        case .traffic: return beginShadowOrSteps(at: now)
        case .step(let index): return beginStep(index, at: now, confirmed: true)
        case .promotion: return beginPromotion(at: now, confirmed: true)
        }
    }

    mutating func confirming(_ confirm: Confirm, _ event: Event, at now: Date) -> [Effect] {
        let gate = plan.webhooks[confirm.webhook]
        switch event {
        case .webhookAnswered(let call, let answer) where call.round == confirm.round && call.step == nil:
            let recorded = Effect.record(.webhook, "\(gate.label): \(answer)", at: now)
            let line = Effect.progress(.webhookAnswered(webhook: gate.label, answer: answer.description))
            func decided(_ text: String) -> [Effect] {
                [recorded, line, answered(confirm, text, by: "receiver", at: now)]
                    + toldAnswered(confirm, text, by: "receiver")
            }
            if answer.isYes {
                return decided("yes (\(answer))") + opened(confirm, at: now)
            }
            if answerIsUnreachable(answer) && gate.onUnreachable == .pass {
                return decided("\(answer): passed (onUnreachable: pass)") + opened(confirm, at: now)
            }
            if answerIsUnreachable(answer) && gate.onUnreachable == .fail {
                return decided("\(answer): the release failed (onUnreachable: fail)")
                    + failed(confirm, .webhookUnreachable(webhook: gate.label, error: answer.description), at: now)
            }
            if gate.kind == .preRollout && !answerIsUnreachable(answer) {
                return decided("no (\(answer)): the release failed")
                    + failed(confirm, .webhookRefused(webhook: gate.label, answer: answer.description), at: now)
            }
            var effects = [recorded, line]
            if gate.kind.isConfirm && !confirm.announced {
                var told = confirm
                told.announced = true
                phase = .confirming(told)
                let (point, step) = gatePoint(confirm.next)
                effects.append(.announce(.gateWaiting(gate: gate.label, point: point, step: step, weight: weight)))
            }
            return effects + [.startTimer(.webhookDue(round: confirm.round), after: gate.interval.duration)]
        case .timer(.webhookDue(let round)) where round == confirm.round:
            return [
                .askWebhook(WebhookCall(webhook: confirm.webhook, phase: Self.flaggerPhase(confirm.next), round: round))
            ]
        case .signal(let signal):
            return stopped(.interrupted(signal), confirming: confirm.next, at: now)
        case .control(.abort):
            let by = requester ?? "unknown"
            return [
                .record(.abort, "orchestrate abort while \(waitingText(gate))", at: now),
                answered(confirm, "aborted (orchestrate abort)", by: by, at: now),
            ] + toldAnswered(confirm, "aborted (orchestrate abort)", by: by)
                + stopped(.aborted, confirming: confirm.next, at: now)
        case .control(.approve), .control(.promote):
            let how = event == .control(.approve) ? "orchestrate approve" : "orchestrate promote"
            let by = requester ?? "unknown"
            return [
                .record(.webhook, "\(gate.label): approved by hand by \(by) (\(how))", at: now),
                .progress(.webhookApproved(webhook: gate.label, by: "\(by), \(how)")),
                answered(confirm, "approved (\(how))", by: by, at: now),
            ] + toldAnswered(confirm, "approved (\(how))", by: by) + opened(confirm, at: now)
        case .control(.promoteFull):
            // By hand: every gate up to the promotion is answered, and traffic goes to 100 % now.
            promotionApproved = true
            let by = requester ?? "unknown"
            var effects: [Effect] =
                [
                    .record(.webhook, "\(gate.label): approved by hand by \(by) (orchestrate promote --full)", at: now),
                    .progress(.webhookApproved(webhook: gate.label, by: "\(by), orchestrate promote --full")),
                    answered(confirm, "approved (orchestrate promote --full)", by: by, at: now),
                ] + toldAnswered(confirm, "approved (orchestrate promote --full)", by: by) + [
                    .save(RunStateChange(clearsWaiting: true))
                ]
            if case .step = confirm.next, var hold = confirm.hold {
                hold.promoteFull = true
                phase = .promotingFully(hold, shifting: false)
                effects += [
                    .record(.promote, "promote --full: \(target) to 100% now", at: now),
                    .save(RunStateChange(phase: .shifting, weight: 100)), .checkpoint,
                ]
                return effects
            }
            return effects + opened(confirm, at: now)
        case .journalSaveFailed:
            return rollBackOnError(nil, at: now)
        default:
            return []
        }
    }

    private func answerIsUnreachable(_ answer: WebhookAnswer) -> Bool {
        if case .unreachable = answer { return true }
        return false
    }

    private func waitingText(_ gate: WebhookGate) -> String { "waiting for \(gate.label)" }

    /// The gate is open: the next gate of its kind, or what comes after them.
    private mutating func opened(_ confirm: Confirm, at now: Date) -> [Effect] {
        let gate = plan.webhooks[confirm.webhook]
        return [.save(RunStateChange(clearsWaiting: true))]
            + gateThen(gate.kind, after: confirm.webhook, next: confirm.next, hold: confirm.hold, at: now)
    }

    /// A stop while a gate is asked: before the deploy nothing was changed, before any traffic
    /// the new colour is stopped, later traffic goes back to the live colour.
    private mutating func stopped(_ stop: Stop, confirming next: Confirm.Next, at now: Date) -> [Effect] {
        switch next {
        case .deploy:
            let ending = Ending.finished(
                stop == .aborted ? .rolledBack : .interrupted, failure: RolloutFailure(.stoppedBeforeDeploy(stop)))
            phase = .done(ending)
            return [.save(RunStateChange(clearsWaiting: true)), .finish(ending)]
        case .traffic:
            return stoppedBeforeTraffic(stop, "before the first traffic step", at: now)
        case .step, .promotion:
            return rollBack(stop, at: weight, now: now)
        }
    }

    /// A gate that fails the release (a pre-rollout webhook's no, an unreachable receiver under
    /// `onUnreachable: fail`).
    private mutating func failed(_ confirm: Confirm, _ reason: RolloutFailure.Reason, at now: Date) -> [Effect] {
        switch confirm.next {
        case .deploy:
            let ending = Ending.finished(.failed, failure: RolloutFailure(reason))
            phase = .done(ending)
            return [.finish(ending)]
        case .traffic:
            let ending = Ending.finished(.failed, failure: RolloutFailure(reason))
            phase = .done(ending)
            return [
                .progress(.rollingBack(reason: reason.description)), .stopColourQuietly(target),
                .save(RunStateChange(weight: 0)), .record(.stop, "\(target) stopped; traffic untouched", at: now),
                .finish(ending),
            ]
        case .step, .promotion:
            return rollBack(reason: reason, outcome: .rolledBack, at: now)
        }
    }

    /// The post-rollout webhooks, told once the release is promoted or rolled back (best
    /// effort: each answer is recorded, none changes the outcome).
    func postRolloutWebhooks(phase: String) -> [Effect] {
        plan.webhooks.indices.filter { plan.webhooks[$0].kind == .postRollout }.map {
            .tellWebhook(WebhookCall(webhook: $0, phase: phase))
        }
    }

    // MARK: Rollback webhooks during a step

    /// The rollback webhooks asked at once when a step begins to hold (then every `interval`).
    func rollbackWebhookCalls(step: Int) -> [Effect] {
        plan.webhooks.indices.filter { plan.webhooks[$0].kind == .rollback }.map {
            .askWebhook(WebhookCall(webhook: $0, phase: "Progressing", step: step))
        }
    }

    /// A rollback webhook's answer during a step: a 2xx rolls back (its own failure reason),
    /// anything else asks again after its `interval` (an unreachable one fails the step under
    /// `onUnreachable: fail`).
    mutating func rollbackWebhookAnswered(
        _ hold: inout Hold, _ call: WebhookCall, _ answer: WebhookAnswer, at now: Date
    ) -> (effects: [Effect], ends: Bool) {
        let gate = plan.webhooks[call.webhook]
        let during = ReleaseRecord.RolloutRecord.GateAnswer(
            gate: gate.label, point: "during step \(hold.step + 1)", step: hold.step + 1, answer: "", by: "receiver",
            at: now)
        if answer.isYes {
            hold.passed = false
            hold.failure = .rollbackWebhook(webhook: gate.label, answer: answer.description)
            hold.webhookRollback = true
            var recorded = during
            recorded.answer = "\(answer): rolled back"
            return (
                [
                    .record(.webhook, "\(gate.label): \(answer): rolling back", at: now),
                    .progress(.webhookAnswered(webhook: gate.label, answer: "\(answer): rolling back")),
                    .recordGateAnswer(recorded),
                ], true
            )
        }
        if answerIsUnreachable(answer) && gate.onUnreachable == .fail {
            hold.passed = false
            hold.failure = .webhookUnreachable(webhook: gate.label, error: answer.description)
            hold.webhookRollback = true
            var recorded = during
            recorded.answer = "\(answer): rolled back (onUnreachable: fail)"
            return ([.record(.webhook, "\(gate.label): \(answer)", at: now), .recordGateAnswer(recorded)], true)
        }
        return (
            [.startTimer(.rollbackWebhookDue(step: hold.step, webhook: call.webhook), after: gate.interval.duration)],
            false
        )
    }
}
