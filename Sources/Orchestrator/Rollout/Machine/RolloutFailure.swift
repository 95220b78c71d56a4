import Foundation
import Provenance

/// Why a rollout did not end promoted, as the machine decided it: the reason, and what its
/// rollback could not do. The record's `failure` is its description, word for word what the
/// controller always wrote.
struct RolloutFailure: Sendable, Equatable, CustomStringConvertible {
    var reason: Reason
    /// What the rollback could not do, in the order it found out.
    var problems: [Problem] = []

    init(_ reason: Reason, problems: [Problem] = []) {
        self.reason = reason
        self.problems = problems
    }

    enum Reason: Sendable, Equatable, CustomStringConvertible {
        /// The controller's state could not be saved (the first line of the error).
        case unsaved(String)
        /// The same, before the rollout began: nothing was deployed.
        case unsavedDuringStages(String)
        case preRolloutHookFailed([String])
        /// `orchestrate abort` or a signal during a pre-rollout hook.
        case stoppedBeforeDeploy(RolloutMachine.Stop)
        /// `orchestrate abort` or a signal before any traffic moved (`moment`: "while deploying",
        /// "before the first traffic step").
        case stoppedBeforeTraffic(RolloutMachine.Stop, moment: String)
        case deployFailed(color: String, error: String)
        case trafficStepFailed(weight: Int, error: String)
        /// A PromQL gate failed (why, with its query).
        case gateFailed(String)
        case judgeFailed(rule: String)
        case judgeInconclusive(rule: String)
        /// The split did not send each colour its share (sample ratio mismatch): the experiment
        /// is invalid, whatever the metrics say; what was expected and seen.
        case sampleRatioMismatch(String)
        /// A colour that carries traffic stopped serving during a step (an outage, not a verdict).
        case colourLost(String)
        /// nginx was lost during a step and could not be brought back.
        case trafficSwitchLost(why: String, error: String)
        /// The shadow stage failed before any user saw the new colour (its verdict).
        case shadowFailed(String)
        /// `orchestrate abort` during the steps.
        case aborted
        /// A signal during the steps, with the new colour's share then.
        case interrupted(signal: Int32, weight: Int)
        /// An error that is no verdict on the release.
        case error(String)
        /// A signal came while the rollout failed for another reason.
        indirect case interruptedWhile(signal: Int32, Reason)
        /// `orchestrate abort` during the drain returned to the previous release.
        case abortedDuringDrain
        /// A pre-rollout webhook answered no (`webhook`: "pre-rollout NAME").
        case webhookRefused(webhook: String, answer: String)
        /// A webhook could not be reached under `onUnreachable: fail`.
        case webhookUnreachable(webhook: String, error: String)
        /// A rollback webhook answered yes during a step.
        case rollbackWebhook(webhook: String, answer: String)

        var description: String {
            switch self {
            case .unsaved(let message): RolloutMachine.unsaved(message)
            case .unsavedDuringStages(let message):
                "\(RolloutMachine.unsaved(message)) during the stages; nothing was deployed"
            case .preRolloutHookFailed(let hook): "pre-rollout hook \(shellQuoted(hook)) failed; nothing was changed"
            case .stoppedBeforeDeploy(.aborted): "aborted by orchestrate abort before the deploy; nothing was changed"
            case .stoppedBeforeDeploy(let stop):
                "interrupted by \(stop.signalName) before the deploy; nothing was changed"
            case .stoppedBeforeTraffic(.aborted, let moment):
                "aborted by orchestrate abort \(moment); traffic was not moved"
            case .stoppedBeforeTraffic(let stop, let moment):
                "interrupted by \(stop.signalName) \(moment); traffic was not moved"
            case .deployFailed(let color, let error): "deploy of \(color) failed before any traffic moved: \(error)"
            case .trafficStepFailed(let weight, let error): "traffic step \(weight)% failed: \(error)"
            case .gateFailed(let why), .colourLost(let why), .shadowFailed(let why): why
            case .judgeFailed(let rule): "judge: \(rule)"
            case .judgeInconclusive(let rule): "judge: inconclusive: \(rule)"
            case .sampleRatioMismatch(let rule): "invalid experiment: \(rule)"
            case .trafficSwitchLost(let why, let error): "\(why), and nginx could not be brought back: \(error)"
            case .aborted: "aborted by orchestrate abort"
            case .interrupted(let signal, let weight):
                "interrupted by \(RolloutMachine.signalName(signal)) at \(weight)%"
            case .error(let error): "the rollout failed: \(error)"
            case .interruptedWhile(let signal, let reason):
                "interrupted by \(RolloutMachine.signalName(signal)); \(reason)"
            case .abortedDuringDrain: "aborted by orchestrate abort during the drain"
            case .webhookRefused(let webhook, let answer): "webhook \(webhook) answered \(answer)"
            case .webhookUnreachable(let webhook, let error):
                "webhook \(webhook) is \(error) and its onUnreachable is fail"
            case .rollbackWebhook(let webhook, let answer): "webhook \(webhook) answered \(answer): rolled back"
            }
        }
    }

    /// What a rollback could not do.
    enum Problem: Sendable, Equatable, CustomStringConvertible {
        /// The live colour is lost and its model is not in the model store (traffic stays on `target`).
        case liveModelMissing(color: String, model: String, hint: String)
        /// The live colour is lost and could not be redeployed.
        case liveNotRedeployed(color: String, error: String, hint: String)
        case trafficNotRestored(color: String, error: String)
        case targetNotStopped(color: String, error: String)

        var description: String {
            switch self {
            case .liveModelMissing(let color, let model, let hint):
                "the live colour \(color) is lost and its model \(model) is not in the model store; \(hint)"
            case .liveNotRedeployed(let color, let error, let hint):
                "the live colour \(color) is lost and could not be redeployed (\(error)); \(hint)"
            case .trafficNotRestored(let color, let error): "traffic could not be restored to \(color): \(error)"
            case .targetNotStopped(let color, let error): "\(color) could not be stopped: \(error)"
            }
        }
    }

    var description: String { ([reason.description] + problems.map(\.description)).joined(separator: "; ") }
}

extension RolloutFailure.Reason {
    /// A sample ratio mismatch: the run exits `ExitStatus.invalidExperiment`, not `failed`.
    var isInvalidExperiment: Bool {
        if case .sampleRatioMismatch = self { return true }
        return false
    }
}
