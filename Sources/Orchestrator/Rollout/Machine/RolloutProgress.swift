import Foundation
public import Provenance

/// What a rollout tells people as it goes: a typed event, rendered as a line of text on stderr
/// (`text`, word for word what the controller always printed) or as one JSON object per line
/// (`orchestrate run --output json`).
public enum RolloutProgress: Sendable, Equatable, Codable {
    case plan(live: String?, liveRelease: String?, target: String)
    case deployStarting(target: String, model: String)
    case deployFailed(error: String)
    case deployHealthy(target: String, addresses: [String])
    /// A stop before any traffic moved: the new colour was stopped, traffic left as it was.
    case stoppedBeforeTraffic(stop: String, moment: String, target: String)
    case step(number: Int, of: Int, target: String, weight: Int, live: String?, liveWeight: Int)
    case gate(GateMeasurement)
    /// The shadow stage began: `share` % of the live requests also go to `target`, compared.
    case shadowStarted(target: String, live: String, share: Int, ending: String)
    /// What the shadow stage compared so far.
    case shadowLook(elapsed: Double, compared: Int, meanRBO: Double?, meanOverlap: Double?, errors: Int)
    case shadowDecided(passed: Bool, verdict: String)
    case judge(JudgeLook)
    case promoteRequested
    case promoteFullRequested
    case stepFailed(number: Int, failure: String)
    case holding(failure: String)
    case holdingUntilDecided(why: String, target: String, weight: Int)
    case promotedDespite(failure: String)
    case promoted(target: String, modelVersion: String)
    case draining(color: String, drain: String)
    /// A killed nginx master's workers replaced by a fresh nginx when a split was put in force.
    case workersReplaced(detail: String)
    /// A colour with traffic was lost during a step.
    case colourLost(detail: String)
    /// The step's split was put in force again (nginx restarted, instances moved).
    case splitReapplied(detail: String)
    case splitNotReapplied(why: String, error: String)
    case rollingBack(reason: String)
    case trafficRestored(color: String)
    /// The split put back is in force, but its state file could not be written.
    case stateFileBehind(detail: String)
    case trafficNotRestored(color: String, error: String)
    /// The live colour is lost: all traffic on the new one until it is redeployed.
    case allTrafficOnTarget(detail: String)
    case allTrafficNotOnTarget(target: String, error: String)
    case redeployingLive(color: String, release: String, model: String)
    case liveNotRedeployed(color: String, error: String)
    case targetStopped(color: String)
    case targetNotStopped(color: String, error: String)
    /// `orchestrate abort` during the drain put the previous release back.
    case returnedToPrevious(color: String, release: String)
    case abortCannotReturn(previous: String, target: String)
    case abortCannotWriteLive(release: String, error: String, target: String)
    /// A webhook gate is asked until it answers yes.
    case webhookWaiting(webhook: String, weight: Int)
    case webhookAnswered(webhook: String, answer: String)
    case webhookApproved(webhook: String, by: String)

    /// The line for people.
    public var text: String {
        switch self {
        case .plan(let live, let release, let target):
            "rollout: live colour \(live.map { "\($0) (release \(release ?? ""))" } ?? "none"), releasing to \(target)"
        case .deployStarting(let target, let model): "deploy: starting \(target) with \(model)"
        case .deployFailed(let error): "deploy: FAILED: \(error)"
        case .deployHealthy(let target, let addresses):
            "deploy: \(target) is healthy at \(addresses.joined(separator: ", "))"
        case .stoppedBeforeTraffic(let stop, let moment, let target):
            "deploy: \(stop) \(moment); \(target) stopped, traffic untouched"
        case .step(let number, let count, let target, let weight, let live, let liveWeight):
            "step \(number)/\(count): \(target) \(weight)%\(live.map { ", \($0) \(liveWeight)%" } ?? "")"
        case .gate(let measurement):
            "    gate \(measurement.gate) \(measurement.condition): \(measurement.value.map(formatMetric) ?? (measurement.error ?? "-")) \(measurement.outcome)"
        case .judge(let look):
            "    judge \(String(format: "%.1f", look.elapsed)) s: \(look.metrics.map { "\($0.metric) \($0.classification.rawValue)\($0.cuped.map { String(format: " (CUPED variance %+.0f %%)", -$0.varianceReduction * 100) } ?? "")" }.joined(separator: ", ")) -> \(look.decision.rawValue) (\(look.rule))"
                + (look.sampleRatio ?? []).map {
                    "; split \($0.count) "
                        + String(
                            format: "new %.1f %% (expected %.1f %%), p %.2g", $0.observedShare * 100,
                            $0.expectedShare * 100, $0.pValue)
                }.joined()
        case .shadowStarted(let target, let live, let share, let ending):
            "shadow: \(share)% of the live /recommend requests also go to \(target) (0% of users; \(live) answers them all), compared; \(ending)"
        case .shadowLook(let elapsed, let compared, let rbo, let overlap, let errors):
            "    shadow \(String(format: "%.1f", elapsed)) s: \(compared) compared, mean RBO \(rbo.map { String(format: "%.3f", $0) } ?? "-"), "
                + "overlap \(overlap.map { String(format: "%.3f", $0) } ?? "-"), \(errors) errors"
        case .shadowDecided(let passed, let verdict): passed ? "shadow: \(verdict)" : "shadow: FAILED: \(verdict)"
        case .promoteRequested: "promote requested: ending this step's wait"
        case .promoteFullRequested: "promote --full requested"
        case .stepFailed(let number, let failure): "step \(number): FAILED: \(failure)"
        case .holding(let failure): "hold: \(failure)"
        case .holdingUntilDecided(let why, let target, let weight):
            "hold: \(why): traffic stays at \(target) \(weight)%; `orchestrate abort` rolls back, `orchestrate promote` goes on"
        case .promotedDespite(let failure): "hold: promoted by the operator despite: \(failure)"
        case .promoted(let target, let version): "promoted: \(target) is live (model \(version))"
        case .draining(let color, let drain):
            "draining \(color) for \(drain), then stopping it (orchestrate abort now returns to it)"
        case .workersReplaced(let detail), .colourLost(let detail), .splitReapplied(let detail): "    \(detail)"
        case .splitNotReapplied(let why, let error):
            "    \(why), and the split could not be put in force again: \(error)"
        case .rollingBack(let reason): "rollback: \(reason)"
        case .trafficRestored(let color): "rollback: traffic back on \(color) (100%)"
        case .stateFileBehind(let detail), .allTrafficOnTarget(let detail): "rollback: \(detail)"
        case .trafficNotRestored(let color, let error): "rollback: could not restore traffic to \(color): \(error)"
        case .allTrafficNotOnTarget(let target, let error): "rollback: could not put all traffic on \(target): \(error)"
        case .redeployingLive(let color, let release, let model):
            "rollback: \(color) is lost: redeploying the live release \(release) (model \(model.prefix(12))) on it"
        case .liveNotRedeployed(let color, let error): "rollback: \(color) could not be redeployed: \(error)"
        case .targetStopped(let color): "rollback: \(color) stopped"
        case .targetNotStopped(let color, let error): "rollback: \(color) could not be stopped: \(error)"
        case .returnedToPrevious(let color, let release): "rollback: traffic back on \(color); \(release) is live again"
        case .abortCannotReturn(let previous, let target):
            "abort: \(previous) is no longer running; \(target) stays live"
        case .abortCannotWriteLive(let release, let error, let target):
            "abort: current.json cannot be written back to \(release): \(error); \(target) stays live"
        case .webhookWaiting(let webhook, let weight):
            "webhook: waiting for \(webhook) at \(weight)% (orchestrate approve answers it by hand)"
        case .webhookAnswered(let webhook, let answer): "webhook: \(webhook): \(answer)"
        case .webhookApproved(let webhook, let by): "webhook: \(webhook) approved by hand (\(by))"
        }
    }

    /// The event's name in JSON and in the log's metadata (`rollout.step`, `rollout.gate`).
    public var name: String {
        // A case with values reflects as one child labelled with its name.
        "rollout." + (Mirror(reflecting: self).children.first?.label ?? String(describing: self))
    }
}
