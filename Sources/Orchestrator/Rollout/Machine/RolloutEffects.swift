import Foundation
import PipelineSchema
import Provenance

/// Carries out one effect of the rollout against its ports and returns the events it answers
/// with. What waits for a task to end (cancelling a deploy, a hook, a step) is the runner's.
struct RolloutEffects: Sendable {
    var plan: RolloutMachine.Plan
    var ports: RolloutPorts

    typealias Event = RolloutMachine.Event

    /// The events `effect` answers with, and the error behind a failure event (the run's error
    /// when the machine ends on it).
    func perform(_ effect: RolloutMachine.Effect) async -> (events: [Event], error: (any Error)?) {
        let journal = ports.journal
        switch effect {
        case .save(let change):
            await journal.save(change)
        case .record(let kind, let detail, let time):
            await journal.record(kind, detail, at: time)
        case .recordRollout(let live, let target, let mode):
            await journal.recordRollout(live: live, target: target, mode: mode)
        case .recordStep(let step):
            await journal.recordStep(step)
        case .recordGateAnswer(let answer):
            await journal.recordGateAnswer(answer)
        case .recordDeployment(let color, let digest):
            await journal.recordDeployment(color: color, modelSHA256: digest)
        case .clearDeployment:
            await journal.clearDeployment()
        case .saveMeasurement(let measurement):
            await journal.saveMeasurement(measurement)
        case .setLive(let live):
            do {
                try await journal.commit(live)
                return ([.liveSaved], nil)
            } catch {
                return ([.liveSaveFailed("\(error)")], error)
            }
        case .progress(let progress):
            ports.notifier.progress(progress)
        case .announce(let announcement):
            await ports.notifier.announce(announcement)
        case .deploy(let color, let model):
            do {
                return ([.deployed(try await ports.runtime.deploy(color, model: model))], nil)
            } catch {
                return ([.deployFailed(color: color, error: "\(error)")], error)
            }
        case .locate(let color, let how):
            return ([await ports.runtime.locate(color, how) ? .located(color) : .notLocated(color)], nil)
        case .stopColour(let color):
            do {
                try await ports.runtime.stop(color)
                return ([.colourStopped(color)], nil)
            } catch {
                return ([.colourStopFailed(color, error: "\(error)")], error)
            }
        case .stopColourQuietly(let color):
            try? await ports.runtime.stop(color)
        case .findStoredModel(let digest):
            return ([.storedModel(found: ports.runtime.hasStoredModel(sha256: digest))], nil)
        case .writeTargets:
            await ports.runtime.writeTargets()
        case .shift(let weight):
            do {
                let change = try await ports.traffic.shift(weight: weight)
                return ([.shiftApplied(weight: weight, replaced: change.replaced)], nil)
            } catch {
                return ([.shiftFailed(weight: weight, error: "\(error)")], error)
            }
        case .sendAllTraffic(let color):
            do {
                let change = try await ports.traffic.sendAllTraffic(to: color)
                return (
                    [.trafficSent(color: color, replaced: change.replaced, stateFileBehind: change.stateFileBehind)],
                    nil
                )
            } catch {
                return ([.trafficNotSent(color: color, error: "\(error)")], error)
            }
        case .stopTrafficSwitch:
            await ports.traffic.stop()
            return ([.trafficSwitchStopped], nil)
        case .reapply(let step, let weight):
            do {
                let change = try await ports.traffic.reapply(weight: weight)
                return ([.splitReapplied(step: step, upstream: change.upstream, replaced: change.replaced)], nil)
            } catch {
                return ([.splitNotReapplied(step: step, error: "\(error)")], error)
            }
        case .startShadow(let percent, let experiment):
            do {
                let change = try await ports.traffic.startShadow(percent: percent, experiment: experiment)
                return ([.shadowStarted(replaced: change.replaced)], nil)
            } catch {
                return ([.shadowNotStarted(error: "\(error)")], error)
            }
        case .lookShadow:
            do {
                return ([.shadowLooked(.counts(try await ports.traffic.lookShadow()))], nil)
            } catch {
                return ([.shadowLooked(.error("\(error)".prefix { $0 != "\n" }.description))], nil)
            }
        case .recordShadow(let comparison):
            await journal.recordShadow(comparison)
        case .look(let step, let weight):
            return ([.looked(step: step, await ports.runtime.look(weight: weight))], nil)
        case .sampleGate(let step, let name):
            guard step < plan.steps.count, let tally = plan.steps[step].gates.first(where: { $0.gate.name == name })
            else { return ([], nil) }
            // A measurement is dated when it is asked for.
            let time = ports.clock.now()
            return ([.gateSample(step: step, gate: name, await ports.metrics.sample(tally.query), at: time)], nil)
        case .startJudge(let step):
            await ports.metrics.startJudge(step: step)
            return ([.judgeStarted(step: step)], nil)
        case .lookJudge(let step):
            return ([.judgeLooked(step: step, await ports.metrics.lookJudge(step: step))], nil)
        case .runHook(let hook, let argv):
            return ([.hookFinished(hook, succeeded: await ports.hooks.run(hook, argv))], nil)
        case .startTimer(let timer, let duration):
            do {
                try await ports.clock.sleep(for: duration)
                return ([.timer(timer)], nil)
            } catch {
                return ([], nil)
            }
        case .askWebhook(let call):
            guard plan.webhooks.indices.contains(call.webhook) else { return ([], nil) }
            return (
                [.webhookAnswered(call, await ports.webhooks.call(plan.webhooks[call.webhook], phase: call.phase))], nil
            )
        case .tellWebhook(let call):
            guard plan.webhooks.indices.contains(call.webhook) else { return ([], nil) }
            let webhook = plan.webhooks[call.webhook]
            let answer = await ports.webhooks.call(webhook, phase: call.phase)
            await journal.record(.webhook, "\(webhook.label) (\(call.phase)): \(answer)", at: ports.clock.now())
        case .checkpoint:
            return (checkpoint(saveFailure: await journal.saveFailure()), nil)
        case .cancelDeploy, .cancelHook, .endStep, .endShadow, .finish:
            // The runner's: they stop tasks it started.
            break
        }
        return ([], nil)
    }

    /// The answer to `Effect.checkpoint`: a stop already requested first (no stop is overtaken
    /// by a step), then whether every change so far is saved.
    func checkpoint(saveFailure: String?) -> [Event] {
        var events: [Event] = []
        if let signal = ports.control.signal { events.append(.signal(signal)) }
        if let (request, by) = ports.control.takeAttributedRequest() {
            events += [.requestedBy(by), .control(request)]
        }
        events.append(saveFailure.map { .journalSaveFailed($0) } ?? .saved)
        return events
    }
}
