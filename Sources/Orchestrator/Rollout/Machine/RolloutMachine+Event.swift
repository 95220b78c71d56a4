import Foundation
import Provenance
import Traffic

extension RolloutMachine {
    /// Everything the rollout reacts to, from one stream: what the effects it asked for came back
    /// with, what the services were seen doing, requests of an operator, signals and timers.
    enum Event: Sendable, Equatable {
        /// The rollout begins (the stages succeeded).
        case start
        /// Every change so far is saved, and no stop was pending when it was checked (the answer
        /// to `Effect.checkpoint`).
        case saved
        /// A save of the run's state or record failed (the first line of the error): the files
        /// on disk are behind the run, so it must not move traffic forward any more.
        case journalSaveFailed(String)

        case hookFinished(Hook, succeeded: Bool)
        /// A colour answers its health check (the new colour, or the live one redeployed).
        case deployed(Instance)
        case deployFailed(color: String, error: String)

        /// A step's split is in force; `replaced` says when it replaced a killed nginx master's workers.
        case shiftApplied(weight: Int, replaced: String?)
        case shiftFailed(weight: Int, error: String)
        /// All traffic is on `color`; `stateFileBehind` when the split could not be saved for a
        /// restarted nginx (a full disk), which never stops traffic going back.
        case trafficSent(color: String, replaced: String?, stateFileBehind: String?)
        case trafficNotSent(color: String, error: String)
        /// The load balancer was stopped (nothing was live before).
        case trafficSwitchStopped
        /// The step's split is in force again, with the upstream it lists.
        case splitReapplied(step: Int, upstream: [Upstream], replaced: String?)
        case splitNotReapplied(step: Int, error: String)

        /// Whether a colour runs (and answers, as asked), from `Effect.locate`.
        case located(String)
        case notLocated(String)
        /// Whether the live release's model is still in the model store.
        case storedModel(found: Bool)
        case colourStopped(String)
        case colourStopFailed(String, error: String)
        /// `current.json` was written (the commit point of a rollout, or of an abort during the drain).
        case liveSaved
        case liveSaveFailed(String)

        /// A look at nginx and both colours during a step.
        case looked(step: Int, StepWatch.Look)
        /// A measurement of a PromQL gate.
        case gateSample(step: Int, gate: String, GateSample, at: Date)
        /// The judge read both colours' counters at the start of the step.
        case judgeStarted(step: Int)
        /// The judge's judgements of every metric since the step started.
        case judgeLooked(step: Int, JudgeObservation)

        /// The shadow stage's split is in force (`replaced` as for a shift), or could not be.
        case shadowStarted(replaced: String?)
        case shadowNotStarted(error: String)
        /// What nginx counted of the shadow comparison so far.
        case shadowLooked(ShadowLook)

        /// A webhook's answer (after its retries).
        case webhookAnswered(WebhookCall, WebhookAnswer)

        /// `orchestrate abort`, `approve`, `promote` or `promote --full`.
        case control(ControlRequest)
        /// Who made the request that follows (`orchestrate approve --by`, `$USER` by default; nil:
        /// not said), so that an earlier request's name is never given to a later one.
        case requestedBy(String?)
        /// SIGTERM or SIGINT.
        case signal(Int32)
        case timer(Timer)
    }

    /// What the rollout waits for on the clock.
    enum Timer: Sendable, Equatable, Hashable {
        /// The step's wait (`traffic.wait`) has passed.
        case stepWait(step: Int)
        /// A gate's next measurement is due (its `initialDelay`, then its `interval`).
        case gateDue(step: Int, gate: String)
        /// A gate without data (`onNoData: inconclusive`) fails from now on.
        case inconclusiveDeadline(step: Int)
        /// The judge's next look is due.
        case judgeDue(step: Int)
        /// The judge's `maxWait` has passed: its next look decides.
        case judgeMaxWait(step: Int)
        /// The next look at nginx and both colours is due (once a second).
        case watchDue(step: Int)
        /// The shadow stage's next look at nginx's counts is due.
        case shadowDue
        /// The shadow stage's `duration` has passed: its next look decides.
        case shadowEnd
        /// The old colour has drained.
        case drain
        /// Requests already on their way to the new colour have finished before it stops.
        case rollbackPause
        /// A confirm (or pre-rollout) webhook is asked again.
        case webhookDue(round: Int)
        /// A rollback webhook is asked again during step `step`.
        case rollbackWebhookDue(step: Int, webhook: Int)

        /// The step this timer belongs to; it is cancelled when the step ends.
        var step: Int? {
            switch self {
            case .stepWait(let step), .gateDue(let step, _), .inconclusiveDeadline(let step), .judgeDue(let step),
                .judgeMaxWait(let step),
                .watchDue(let step), .rollbackWebhookDue(let step, _):
                step
            case .drain, .rollbackPause, .shadowDue, .shadowEnd, .webhookDue:
                nil
            }
        }
    }

    /// A hook of the pipeline, by phase and position.
    enum Hook: Sendable, Equatable, Hashable {
        case preRollout(Int)
        /// Started with step `step` and stopped when it ends.
        case duringStep(step: Int, Int)
        case postRollout(Int)
        case onRollback(Int)
    }

    /// What a gate's query returned.
    enum GateSample: Sendable, Equatable {
        case value(Double)
        /// An empty result.
        case noData
        /// NaN: no data, which never passes.
        case notANumber
        /// The query failed (Prometheus away, an answer over its bound).
        case error(String)
    }

    /// One look of the judge, before it is decided: what each metric shows since the step started.
    struct JudgeObservation: Sendable, Equatable {
        var judgements: [MetricJudgement]
        /// Seconds since the step started.
        var elapsed: Double
        var at: Date
        /// The sample ratio check's counts of each colour since the step started (none without
        /// `sampleRatio`, or when their queries failed).
        var ratios: [JudgeRules.RatioCounts] = []
    }

    /// A look at the shadow comparison: nginx's counts (nil before the first sampled request of
    /// the experiment), or why nginx did not answer.
    enum ShadowLook: Sendable, Equatable {
        case counts(ShadowCounts?)
        case error(String)
    }

    /// A colour that answers its health check.
    struct Instance: Sendable, Equatable {
        var color: String
        var addresses: [String]
        var modelSHA256: String
        var modelVersion: String
    }

    /// A colour's addresses in a split put in force.
    struct Upstream: Sendable, Equatable {
        var color: String
        var addresses: [String]
    }

    /// Why a rollout stops before its end: an interruption (SIGTERM, SIGINT) or `orchestrate abort`.
    enum Stop: Sendable, Equatable {
        case interrupted(Int32)
        case aborted

        /// "aborted by orchestrate abort", "interrupted by SIGTERM".
        var description: String {
            switch self {
            case .aborted: "aborted by orchestrate abort"
            case .interrupted: "interrupted by \(signalName)"
            }
        }

        var signalName: String {
            guard case .interrupted(let signal) = self else { return "abort" }
            return RolloutMachine.signalName(signal)
        }
    }

    static func signalName(_ signal: Int32) -> String {
        signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "signal \(signal)"
    }

    /// How a rollout ended.
    enum Ending: Sendable, Equatable {
        case finished(ReleaseOutcome, failure: RolloutFailure?)
        /// An action after the commit point failed (stopping the old colour, returning to it
        /// after an abort): the error is the run's, as before the machine.
        case failed(String)
    }
}
