import Foundation
import PipelineSchema
import Provenance
import StrictYAML
import Traffic

/// The shadow stage, between the new colour's health check and the first step: nginx sends a
/// share of the live `/recommend` requests to the new colour too, once the live answer is sent,
/// and compares both lists; no user is answered by the new colour. nginx's counts are looked at
/// every 2 s; the stage ends when its comparisons are in (`requests`) or its `duration` passed,
/// and `ShadowVerdict` decides: a pass goes on to step 1, a failure rolls back (traffic back on the
/// live colour alone, the new colour stopped) with the verdict as the reason.
extension RolloutMachine {
    struct Shadowing: Sendable, Equatable {
        var startedOn: Date
        var started = false
        /// `duration` has passed: the next look decides.
        var final = false
        /// A look at nginx is under way.
        var looking = false
        var consecutiveErrors = 0
        var counts: ShadowCounts?
    }

    /// How often nginx's counts are read.
    static let shadowInterval: Duration = .seconds(2)

    /// The experiment nginx counts the comparisons under.
    var shadowExperiment: String { "\(plan.releaseID)-shadow" }

    /// The shadow stage when the plan has one, else step 1.
    mutating func beginShadowOrSteps(at now: Date) -> [Effect] {
        guard let spec = plan.shadow, live != nil, plan.trafficSwitch else { return beginStep(0, at: now) }
        if let stop = takePendingStop() { return stoppedBeforeTraffic(stop, "before the shadow stage", at: now) }
        phase = .shadowing(Shadowing(startedOn: now))
        return [.startShadow(percent: spec.share, experiment: shadowExperiment)]
    }

    mutating func shadowing(_ state: Shadowing, _ event: Event, at now: Date) -> [Effect] {
        guard let spec = plan.shadow, let live else { return [] }
        var shadow = state
        switch event {
        case .shadowStarted(let replaced) where !shadow.started:
            shadowed = true
            shadow.started = true
            shadow.startedOn = now
            phase = .shadowing(shadow)
            let ending =
                spec.requests.map { "ends after \($0) comparisons, at most \(spec.duration)" }
                ?? "runs \(spec.duration)"
            return replacement(replaced, at: now) + [
                .record(
                    .shadow,
                    "\(spec.share)% of the live /recommend requests also sent to \(target) (0% of users), compared with \(live.color)'s answers",
                    at: now),
                .progress(.shadowStarted(target: target, live: live.color, share: spec.share, ending: ending)),
                .startTimer(.shadowDue, after: Self.shadowInterval),
                .startTimer(.shadowEnd, after: spec.duration.duration),
            ]
        case .shadowNotStarted(let error) where !shadow.started:
            // nginx may hold the shadow split or the one before: the rollback puts the live one back.
            shadowed = true
            return rollBack(
                reason: .trafficStepFailed(weight: 0, error: "the shadow stage could not start: \(error)"),
                outcome: .rolledBack, at: now)
        case .timer(.shadowDue):
            guard shadow.started, !shadow.looking else { return [] }
            shadow.looking = true
            phase = .shadowing(shadow)
            return [.lookShadow]
        case .timer(.shadowEnd):
            shadow.final = true
            let look = !shadow.looking
            shadow.looking = true
            phase = .shadowing(shadow)
            return look ? [.lookShadow] : []
        case .shadowLooked(let look):
            shadow.looking = false
            switch look {
            case .counts(let counts):
                shadow.consecutiveErrors = 0
                shadow.counts = counts
            case .error(let error):
                shadow.consecutiveErrors += 1
                if shadow.consecutiveErrors >= 5 {
                    var comparison = ShadowVerdict.decide(
                        shadow.counts, spec: spec, target: target, live: live.color, startedOn: shadow.startedOn,
                        at: now)
                    comparison.passed = false
                    comparison.verdict =
                        "shadow stage: nginx did not answer GET /shadow 5 times in a row (\(error)); no user saw \(target)"
                    return endShadow(comparison, at: now)
                }
            }
            if ShadowVerdict.isDue(shadow.counts, spec: spec, final: shadow.final) {
                return endShadow(
                    ShadowVerdict.decide(
                        shadow.counts, spec: spec, target: target, live: live.color, startedOn: shadow.startedOn,
                        at: now), at: now)
            }
            phase = .shadowing(shadow)
            let counts = shadow.counts
            let compared = Double(counts?.compared ?? 0)
            return [
                .progress(
                    .shadowLook(
                        elapsed: now.timeIntervalSince(shadow.startedOn), compared: counts?.compared ?? 0,
                        meanRBO: compared > 0 ? (counts?.rboSum ?? 0) / compared : nil,
                        meanOverlap: compared > 0 ? (counts?.overlapSum ?? 0) / compared : nil,
                        errors: counts?.errors ?? 0)),
                .startTimer(.shadowDue, after: Self.shadowInterval),
            ]
        case .signal(let signal):
            return [.endShadow] + rollBack(.interrupted(signal), at: 0, now: now)
        case .control(.abort):
            return [.endShadow, .record(.abort, "orchestrate abort during the shadow stage", at: now)]
                + rollBack(.aborted, at: 0, now: now)
        case .journalSaveFailed:
            return [.endShadow] + rollBackOnError(nil, at: now)
        default:
            // `promote` waits for step 1; a stop that came during a save is kept.
            keep(event)
            return []
        }
    }

    /// The stage's looks end and its comparison is recorded; a pass goes on to step 1, a failure
    /// rolls back before any user saw the new colour.
    private mutating func endShadow(_ comparison: ShadowComparison, at now: Date) -> [Effect] {
        let effects: [Effect] = [
            .endShadow, .recordShadow(comparison), .record(.shadow, comparison.verdict, at: now),
            .progress(.shadowDecided(passed: comparison.passed, verdict: comparison.verdict)),
        ]
        if comparison.passed { return effects + beginStep(0, at: now) }
        let failed = effects + [.announce(.gateFailed(weight: 0, failure: comparison.verdict, measurements: []))]
        if !plan.automaticRollback { return failed + holdAfterShadow(comparison.verdict, at: now) }
        return failed + rollBack(reason: .shadowFailed(comparison.verdict), outcome: .rolledBack, at: now)
    }

    // MARK: Holding after a failed shadow stage

    /// Under `rollback.automatic: false`, a failed shadow stage waits for an operator as a failed
    /// step does: no user is on the new colour, and nginx keeps shadowing (its split is left as
    /// it is, as a held step's is). A `promote` asked during the stage was asked before the
    /// verdict: it does not decide the hold.
    private mutating func holdAfterShadow(_ verdict: String, at now: Date) -> [Effect] {
        let why = "rollback.automatic is false"
        dropDeferredRequest()
        phase = .holdingAfterShadow(verdict: verdict)
        return [
            .save(RunStateChange(phase: .holding)),
            .record(.hold, "\(verdict); \(why): holding before step 1 (\(target) at 0%)", at: now),
            .progress(.holding(failure: verdict)),
            .progress(.holdingUntilDecided(why: why, target: target, weight: 0)), .checkpoint,
        ]
    }

    mutating func holdingAfterShadow(_ verdict: String, _ event: Event, at now: Date) -> [Effect] {
        switch event {
        case .saved:
            if let stop = takePendingStop() { return rollBack(stop, at: 0, now: now) }
            return []
        case .signal(let signal):
            return rollBack(.interrupted(signal), at: 0, now: now)
        case .control(.abort):
            return rollBack(.aborted, at: 0, now: now)
        case .control(.promote), .control(.promoteFull):
            return [
                .record(.promote, "orchestrate promote before step 1 despite: \(verdict)", at: now),
                .progress(.promotedDespite(failure: verdict)),
            ] + beginStep(0, at: now)
        case .journalSaveFailed:
            return rollBackOnError(nil, at: now)
        default:
            return []
        }
    }
}
