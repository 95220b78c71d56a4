import Foundation
import PipelineSchema
import Provenance
import StrictYAML

extension RolloutMachine {
    /// Rolls back for a signal or an abort, with traffic at `weight`.
    mutating func rollBack(_ stop: Stop, at weight: Int, now: Date) -> [Effect] {
        switch stop {
        case .aborted: rollBack(reason: .aborted, outcome: .rolledBack, at: now)
        case .interrupted(let signal):
            rollBack(reason: .interrupted(signal: signal, weight: weight), outcome: .interrupted, at: now)
        }
    }

    /// Rolls back because the run cannot go on: a state that could not be saved, or `error`.
    mutating func rollBackOnError(_ error: String?, at now: Date) -> [Effect] {
        let reason = saveFailure.map(RolloutFailure.Reason.unsaved) ?? .error(error ?? "")
        if let signal {
            return rollBack(reason: .interruptedWhile(signal: signal, reason), outcome: .interrupted, at: now)
        }
        return rollBack(reason: reason, outcome: .rolledBack, at: now)
    }

    /// Traffic back to the live colour first (restored first when it is lost), then the journal,
    /// then the new colour stopped, then the on-rollback hooks. Putting traffic back waits for no
    /// disk write: what could not be saved is still in the record the controller appends, and
    /// `run.json` as last saved lets recovery converge to the same place. A rollback that could
    /// not put traffic back on the live release is recorded as failed, never as rolled back.
    mutating func rollBack(reason: RolloutFailure.Reason, outcome: ReleaseOutcome, at now: Date) -> [Effect] {
        var rollback = Rollback(
            reason: reason, outcome: outcome, began: now, restored: live == nil, stage: .locatingLive)
        let line = Effect.progress(.rollingBack(reason: reason.description))
        if let live, plan.trafficSwitch {
            phase = .rollingBack(rollback)
            return [line, .locate(live.color, .servingOrLastKnown)]
        }
        if live == nil && plan.trafficSwitch {
            // Nothing was live before: no colour may keep traffic, so the load balancer stops.
            rollback.stage = .stoppingTrafficSwitch
            phase = .rollingBack(rollback)
            return [line, .stopTrafficSwitch]
        }
        return [line] + journalRollback(rollback, at: now)
    }

    mutating func rollingBack(_ state: Rollback, _ event: Event, at now: Date) -> [Effect] {
        guard let live else {
            if case (.stoppingTrafficSwitch, .trafficSwitchStopped) = (state.stage, event) {
                var rollback = state
                weight = 0
                rollback.done.append(
                    .init(at: now, kind: .shift, detail: "nothing was live before this release: nginx stopped"))
                return journalRollback(rollback, at: now)
            }
            return afterTraffic(state, event, at: now)
        }
        var rollback = state
        let hint =
            "traffic stays on \(target), whose model was not approved: `orchestrate rollback --to \(live.releaseID)` redeploys the live release on the idle colour"
        let model = live.modelSHA256.prefix(12)
        switch (state.stage, event) {
        case (.locatingLive, .located(live.color)):
            rollback.stage = .restoringLive
            phase = .rollingBack(rollback)
            return [.sendAllTraffic(to: live.color)]
        case (.locatingLive, .notLocated(live.color)):
            // The live colour is lost (it stopped, or answers no health check): all traffic goes
            // at once to the new colour, the only one that serves, then the live release's model
            // is deployed again on the live colour.
            rollback.stage = .locatingTarget
            phase = .rollingBack(rollback)
            return [.locate(target, .serving)]
        case (.locatingTarget, .located(target)):
            rollback.stage = .sendingToTarget
            phase = .rollingBack(rollback)
            return [.sendAllTraffic(to: target)]
        case (.locatingTarget, .notLocated(target)):
            return findLiveModel(rollback)
        case (.sendingToTarget, .trafficSent(target, let replaced, _)):
            weight = 100
            let detail =
                "\(target) 100% (\(live.color), the live colour, is lost: all traffic on the only colour that serves, whose model was not approved, until \(live.color) is restored)"
            rollback.done.append(.init(at: now, kind: .shift, detail: detail))
            var effects = replacement(replaced, at: now)
            effects += [.save(RunStateChange(weight: 100)), .progress(.allTrafficOnTarget(detail: detail))]
            return effects + findLiveModel(rollback)
        case (.sendingToTarget, .trafficNotSent(target, let error)):
            return [.progress(.allTrafficNotOnTarget(target: target, error: error))] + findLiveModel(rollback)
        case (.findingModel, .storedModel(found: false)):
            rollback.problems.append(.liveModelMissing(color: live.color, model: String(model), hint: hint))
            rollback.done.append(
                .init(
                    at: now, kind: .deploy,
                    detail: "\(live.color) is lost and cannot be redeployed: model \(model) is not in the model store"))
            return journalRollback(rollback, at: now)
        case (.findingModel, .storedModel(found: true)):
            rollback.done.append(
                .init(
                    at: now, kind: .deploy,
                    detail:
                        "\(live.color) is lost: redeploying the live release \(live.releaseID) (model \(model)) on it"))
            rollback.stage = .redeployingLive
            phase = .rollingBack(rollback)
            return [
                .progress(.redeployingLive(color: live.color, release: live.releaseID, model: live.modelSHA256)),
                .deploy(color: live.color, model: .stored(sha256: live.modelSHA256)),
            ]
        case (.redeployingLive, .deployed(let instance)) where instance.color == live.color:
            rollback.done.append(
                .init(
                    at: now, kind: .healthy,
                    detail:
                        "\(live.color) serves the live release \(live.releaseID) again at \(instance.addresses.joined(separator: ", "))"
                ))
            rollback.stage = .restoringLive
            phase = .rollingBack(rollback)
            return [.sendAllTraffic(to: live.color)]
        case (.redeployingLive, .deployFailed(live.color, let error)):
            rollback.problems.append(.liveNotRedeployed(color: live.color, error: error, hint: hint))
            rollback.done.append(
                .init(at: now, kind: .deploy, detail: "\(live.color) could not be redeployed: \(error)"))
            return [.stopColourQuietly(live.color), .progress(.liveNotRedeployed(color: live.color, error: error))]
                + journalRollback(rollback, at: now)
        case (.restoringLive, .trafficSent(live.color, let replaced, let behind)):
            weight = 0
            rollback.restored = true
            rollback.done.append(.init(at: now, kind: .shift, detail: "\(live.color) 100% (traffic restored)"))
            var effects = replacement(replaced, at: now) + [.progress(.trafficRestored(color: live.color))]
            if let behind {
                rollback.done.append(.init(at: now, kind: .shift, detail: Self.stateFileBehind(behind)))
                effects.append(.progress(.stateFileBehind(detail: Self.stateFileBehind(behind))))
            }
            return effects + journalRollback(rollback, at: now)
        case (.restoringLive, .trafficNotSent(live.color, let error)):
            rollback.problems.append(.trafficNotRestored(color: live.color, error: error))
            rollback.done.append(
                .init(at: now, kind: .shift, detail: "could not restore traffic to \(live.color): \(error)"))
            return [.progress(.trafficNotRestored(color: live.color, error: error))]
                + journalRollback(rollback, at: now)
        default:
            return afterTraffic(state, event, at: now)
        }
    }

    private mutating func findLiveModel(_ state: Rollback) -> [Effect] {
        guard let live else { return [] }
        var rollback = state
        rollback.stage = .findingModel
        phase = .rollingBack(rollback)
        return [.findStoredModel(sha256: live.modelSHA256)]
    }

    /// Once traffic is where it can be: the journal, what was done, the observers; then the new
    /// colour stopped (after a short pause for requests already on their way to it).
    private mutating func journalRollback(_ state: Rollback, at now: Date) -> [Effect] {
        var rollback = state
        let interrupted = rollback.outcome == .interrupted
        var effects: [Effect] = [
            .save(RunStateChange(phase: .rollingBack, weight: rollback.restored ? 0 : nil)),
            .record(interrupted ? .interrupt : .rollback, rollback.reason.description, at: rollback.began),
        ]
        effects += rollback.done.map { .record($0.kind, $0.detail, at: $0.at) }
        effects.append(.announce(.rolledBack(reason: rollback.reason.description, interrupted: interrupted)))
        guard rollback.restored && (plan.stopNew || live == nil) else { return effects + afterStopping(rollback) }
        if live != nil {
            rollback.stage = .pausing
            phase = .rollingBack(rollback)
            return effects + [.startTimer(.rollbackPause, after: min(plan.drain.duration, .seconds(1)))]
        }
        rollback.stage = .stoppingTarget
        phase = .rollingBack(rollback)
        return effects + [.stopColour(target)]
    }

    /// The stages of a rollback after traffic: the pause, the new colour stopped, the hooks.
    private mutating func afterTraffic(_ state: Rollback, _ event: Event, at now: Date) -> [Effect] {
        var rollback = state
        switch (state.stage, event) {
        case (.pausing, .timer(.rollbackPause)):
            rollback.stage = .stoppingTarget
            phase = .rollingBack(rollback)
            return [.stopColour(target)]
        case (.stoppingTarget, .colourStopped(target)):
            return [.record(.stop, "\(target) stopped", at: now), .progress(.targetStopped(color: target))]
                + afterStopping(rollback)
        case (.stoppingTarget, .colourStopFailed(target, let error)):
            rollback.problems.append(.targetNotStopped(color: target, error: error))
            return [
                .record(.stop, "\(target) could not be stopped: \(error)", at: now),
                .progress(.targetNotStopped(color: target, error: error)),
            ]
                + afterStopping(rollback)
        case (.hook(let index), .hookFinished(.onRollback(let finished), let ok)) where finished == index:
            let detail = "on-rollback \(shellQuoted(plan.hooks.onRollback[index])): \(ok ? "ok" : "failed")"
            return [.record(.hook, detail, at: now)] + rollbackHook(index + 1, rollback)
        default:
            return []
        }
    }

    private mutating func afterStopping(_ rollback: Rollback) -> [Effect] {
        [.writeTargets] + rollbackHook(0, rollback)
    }

    private mutating func rollbackHook(_ index: Int, _ state: Rollback) -> [Effect] {
        var rollback = state
        guard index < plan.hooks.onRollback.count else {
            // Without a load balancer there is no traffic to put back.
            let tookEffect = rollback.restored || !plan.trafficSwitch || rollback.outcome == .interrupted
            let ending = Ending.finished(
                tookEffect ? rollback.outcome : .failed,
                failure: RolloutFailure(rollback.reason, problems: rollback.problems))
            phase = .done(ending)
            return [.clearDeployment] + postRolloutWebhooks(phase: "Failed") + [.finish(ending)]
        }
        rollback.stage = .hook(index)
        phase = .rollingBack(rollback)
        return [.runHook(.onRollback(index), plan.hooks.onRollback[index])]
    }
}
