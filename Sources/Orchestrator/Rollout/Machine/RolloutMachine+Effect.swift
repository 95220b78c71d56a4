import Foundation
import Provenance

extension RolloutMachine {
    /// What the rollout asks of the world. The executor carries effects out in the order given;
    /// those that take time (a deploy, a hook, a look, a query, a timer) run beside the others and
    /// come back as an `Event`.
    enum Effect: Sendable, Equatable {
        // MARK: The journal (run.json, record.json)

        /// Changes the run's state (`run.json`).
        case save(RunStateChange)
        /// Adds an event to the record's rollout section.
        case record(RolloutEvent.Kind, String, at: Date)
        /// Opens the record's rollout section.
        case recordRollout(live: String?, target: String, mode: String)
        case recordStep(ReleaseRecord.RolloutRecord.Step)
        /// A webhook gate's decisive answer, for the record's table of answers.
        case recordGateAnswer(ReleaseRecord.RolloutRecord.GateAnswer)
        /// The record names what is deployed (the new colour and its model), or nothing.
        case recordDeployment(color: String, modelSHA256: String)
        case clearDeployment
        /// The latest measurement of a gate, for `status --watch`.
        case saveMeasurement(GateMeasurement)
        /// Answered by `Event.saved` when every change so far is saved, else by
        /// `Event.journalSaveFailed`; a stop already requested is delivered before either (so that
        /// no stop is overtaken by a step).
        case checkpoint
        /// Writes `current.json` (answered by `liveSaved` or `liveSaveFailed`).
        case setLive(LiveRelease)

        // MARK: People and observers

        case progress(RolloutProgress)
        case announce(Announcement)

        // MARK: Colours

        /// Deploys a colour and waits for its health check (answered by `deployed` or `deployFailed`).
        case deploy(color: String, model: ModelSource)
        /// Cancels the deploy in progress and waits until it stopped.
        case cancelDeploy
        /// Finds whether the colour runs (answered by `located` or `notLocated`).
        case locate(String, Locate)
        /// Answered by `colourStopped` or `colourStopFailed`.
        case stopColour(String)
        /// Stops a colour, whatever comes of it (nothing answers).
        case stopColourQuietly(String)
        /// Answered by `storedModel`.
        case findStoredModel(sha256: String)
        /// Writes Prometheus' file_sd targets of the running colours (best effort).
        case writeTargets

        // MARK: Traffic

        /// Puts step `weight` in force, its state file saved first (answered by `shiftApplied` or `shiftFailed`).
        case shift(weight: Int)
        /// All traffic on the colour as last located or deployed; waits for no disk write
        /// (answered by `trafficSent` or `trafficNotSent`).
        case sendAllTraffic(to: String)
        /// Stops the load balancer (answered by `trafficSwitchStopped`).
        case stopTrafficSwitch
        /// Puts the step's split in force again, with the addresses that answered at the last
        /// look (answered by `splitReapplied` or `splitNotReapplied`).
        case reapply(step: Int, weight: Int)

        // MARK: The shadow stage

        /// Puts the shadow split in force: all users on the live colour, `percent` % of the
        /// `/recommend` requests also sent to the new colour at 0 % (answered by `shadowStarted`
        /// or `shadowNotStarted`).
        case startShadow(percent: Int, experiment: String)
        /// Reads nginx's counts of the comparison (answered by `shadowLooked`).
        case lookShadow
        /// The shadow stage's looks and timers are cancelled, and waited for.
        case endShadow
        /// The record keeps the comparison.
        case recordShadow(ShadowComparison)

        // MARK: Watching a step

        /// A look at nginx and both colours (answered by `looked`).
        case look(step: Int, weight: Int)
        /// Queries a gate (answered by `gateSample`).
        case sampleGate(step: Int, gate: String)
        /// The judge reads both colours' counters at the start (answered by `judgeStarted`).
        case startJudge(step: Int)
        /// The judge reads them again (answered by `judgeLooked`).
        case lookJudge(step: Int)
        case runHook(Hook, [String])
        /// Cancels a hook and waits until it stopped.
        case cancelHook(Hook)
        case startTimer(Timer, after: Duration)
        /// Ends the step: its hooks, looks, queries and timers are cancelled, and waited for.
        case endStep(Int)

        /// Asks a webhook (answered by `webhookAnswered`).
        case askWebhook(WebhookCall)
        /// Tells a post-rollout webhook, waiting for its answer, which is recorded (best effort).
        case tellWebhook(WebhookCall)

        /// The rollout is over.
        case finish(Ending)
    }

    /// A change of the run's state, as `run.json` keeps it.
    struct RunStateChange: Sendable, Equatable {
        var phase: RunPhase?
        var weight: Int?
        /// The gates' latest measurements are of the step before.
        var clearsGates = false
        /// The rollout begins: `run.json` names the live release, the target, and `stopOld`.
        var beginsRollout = false
        /// What the rollout waits for (`status --watch` shows it).
        var waiting: String? = nil
        var clearsWaiting = false
    }

    /// Where a colour's model comes from.
    enum ModelSource: Sendable, Equatable {
        /// The model directory the stages produced.
        case directory(String)
        /// A model of the model store, by digest (the live release's, redeployed).
        case stored(sha256: String)
    }

    /// How a colour is found running.
    enum Locate: Sendable, Equatable {
        /// It runs and answers its health check.
        case serving
        /// The same, and where the runtime cannot say what runs, the addresses nginx sends its
        /// share to are probed instead (tasks serve on without their manager).
        case servingOrLastKnown
        /// It runs (instances that move must answer).
        case running
    }

    /// What the run tells its observers (webhooks, the Pushgateway).
    enum Announcement: Sendable, Equatable {
        /// `note`: what the verdict must say (a judge that passed without its critical metric deciding).
        case stepPassed(step: Int, steps: Int, weight: Int, measurements: [GateMeasurement], note: String? = nil)
        case gateFailed(weight: Int, failure: String, measurements: [GateMeasurement])
        case rolledBack(reason: String, interrupted: Bool)
        case promoted(color: String, modelVersion: String)
        /// A confirm gate did not answer yes: the rollout waits for it (or `orchestrate approve`).
        case gateWaiting(gate: String, point: String, step: Int?, weight: Int)
        /// A confirm gate the rollout waited for was answered (`by`: `receiver`, or a person).
        case gateAnswered(gate: String, point: String, step: Int?, answer: String, by: String)
    }
}

extension RolloutMachine.Effect {
    /// Whether the effect runs beside the others, its answer coming later through the stream
    /// (the others are carried out in turn before the next event is taken).
    var runsBeside: Bool {
        switch self {
        case .deploy, .look, .sampleGate, .startJudge, .lookJudge, .runHook, .startTimer, .lookShadow, .askWebhook: true
        default: false
        }
    }
}
