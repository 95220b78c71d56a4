import Foundation
import Provenance

/// What a run tells its observers (webhooks, the Pushgateway) as it goes. The journal, through
/// which every change of the run passes, hands each event to every observer.
struct RunEvent: Sendable {
    enum Kind: Sendable {
        /// The run began; `live` is the colour serving before it.
        case started(live: String?)
        /// The phase, the target or its weight changed.
        case progress(RunState)
        /// A gate was measured during a step.
        case measured(GateMeasurement)
        /// `note`: what the verdict must say (a judge that passed without its critical metric deciding).
        case stepPassed(step: Int, steps: Int, weight: Int, measurements: [GateMeasurement], note: String? = nil)
        /// A gate or the judge failed a step: why, and every measurement of the step.
        case gateFailed(weight: Int, failure: String, measurements: [GateMeasurement])
        case rolledBack(reason: String, interrupted: Bool)
        case promoted(color: String, modelVersion: String)
        /// A confirm gate did not answer yes: the rollout waits (`point`: "before step 2").
        case gateWaiting(gate: String, point: String, step: Int?, weight: Int)
        /// A confirm gate the rollout waited for was answered, by its receiver or by hand (`by`).
        case gateAnswered(gate: String, point: String, step: Int?, answer: String, by: String)
        /// A run a killed controller left behind was converged; its record.
        case recovered(ReleaseRecord)
        /// The run's record was appended to the history.
        case finished(ReleaseRecord)
    }

    var releaseID: String
    var at: Date
    var kind: Kind
}

/// Something told about a run as it goes. `observe` is called on the run's path: it must return
/// at once (queue the work, never wait for a peer).
protocol RunObserver: Sendable {
    func observe(_ event: RunEvent)
}

/// The observers of one run.
struct RunObservers: Sendable {
    static let none = RunObservers(observers: [])

    var observers: [any RunObserver]

    func observe(_ event: RunEvent) {
        for observer in observers { observer.observe(event) }
    }
}
