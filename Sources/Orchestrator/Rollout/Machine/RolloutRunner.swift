import Foundation
import Provenance
import Synchronization

/// Runs a rollout: feeds the machine one stream of events and carries its effects out, in order.
/// Effects that take time (a deploy, a hook, a look, a query, a timer) run as tasks beside the
/// loop and answer through the stream; the others are carried out before the next event is
/// taken, and their answers come first (but a checkpoint's, which comes through the stream behind
/// the requests already in it). Signals and requests from other processes join the same
/// stream, and so does a save that failed on its own (a measurement, a hook's entry).
struct RolloutRunner: Sendable {
    var plan: RolloutMachine.Plan
    var ports: RolloutPorts
    /// How often requests from other processes and the journal are looked at.
    var pollInterval: Duration = .milliseconds(100)

    /// The machine's end, and the error behind it when it ended on one.
    struct Outcome: Sendable {
        var ending: RolloutMachine.Ending
        var signal: Int32?
        var error: (any Error)?
    }

    func run() async -> Outcome {
        let (stream, continuation) = AsyncStream.makeStream(of: RolloutMachine.Event.self)
        let effects = RolloutEffects(plan: plan, ports: ports)
        let tasks = TaskSet()
        var machine = RolloutMachine(plan: plan)
        var lastError: (any Error)?
        var queue: [RolloutMachine.Event] = []
        if let failure = await ports.journal.saveFailure() { queue.append(.journalSaveFailed(failure)) }
        queue.append(.start)

        // The sources of the stream. A request is taken and put in the stream in one step, under
        // `requests`, as the checkpoint does: a request the poller took is in the stream before
        // the checkpoint's answer, so no stop is ever overtaken by a step.
        let control = ports.control
        let journal = ports.journal
        let interval = pollInterval
        let requests = OneAtATime()
        tasks.start(.source) {
            await control.waitForSignal()
            if let signal = control.signal { continuation.yield(.signal(signal)) }
        }
        tasks.start(.source) {
            var reported = false
            while !Task.isCancelled {
                requests.run {
                    if let (request, by) = control.takeAttributedRequest() {
                        continuation.yield(.requestedBy(by))
                        continuation.yield(.control(request))
                    }
                }
                if !reported, let failure = await journal.saveFailure() {
                    reported = true
                    continuation.yield(.journalSaveFailed(failure))
                }
                try? await Task.sleep(for: interval)
            }
        }

        var iterator = stream.makeAsyncIterator()
        while !machine.isDone {
            let event: RolloutMachine.Event
            if !queue.isEmpty {
                event = queue.removeFirst()
            } else if let next = await iterator.next() {
                event = next
            } else {
                break
            }
            for effect in machine.handle(event, at: ports.clock.now()) {
                switch effect {
                case .cancelDeploy:
                    await tasks.cancel(.deploy)
                case .cancelHook(let hook):
                    await tasks.cancel(.hook(hook))
                case .endStep(let step):
                    await tasks.cancel(.step(step))
                case .endShadow:
                    await tasks.cancel(.shadow)
                case .finish:
                    break
                case .checkpoint:
                    // Answered through the stream, behind every request and signal already in it.
                    let failure = await journal.saveFailure()
                    requests.run {
                        for event in effects.checkpoint(saveFailure: failure) { continuation.yield(event) }
                    }
                case let effect where effect.runsBeside:
                    tasks.start(Self.scope(of: effect)) {
                        let (events, _) = await effects.perform(effect)
                        guard !Task.isCancelled else { return }
                        for event in events { continuation.yield(event) }
                    }
                default:
                    let (events, error) = await effects.perform(effect)
                    if let error { lastError = error }
                    queue += events
                }
            }
        }
        await tasks.cancelAll()
        continuation.finish()
        let ending = machine.ending ?? .finished(.failed, failure: RolloutFailure(.error("it stopped without an end")))
        return Outcome(ending: ending, signal: machine.signal, error: lastError)
    }

    /// What cancels a task: the deploy, a hook, the end of a step, or the end of the rollout.
    enum Scope: Sendable, Hashable {
        case source
        case deploy
        case hook(RolloutMachine.Hook)
        case step(Int)
        case shadow
        case rollout
    }

    static func scope(of effect: RolloutMachine.Effect) -> Scope {
        switch effect {
        case .deploy: .deploy
        case .runHook(.duringStep(let step, _), _): .step(step)
        case .runHook(let hook, _): .hook(hook)
        case .startTimer(.shadowDue, _), .startTimer(.shadowEnd, _), .lookShadow: .shadow
        case .startTimer(let timer, _): timer.step.map(Scope.step) ?? .rollout
        case .look(let step, _), .sampleGate(let step, _), .startJudge(let step), .lookJudge(let step): .step(step)
        case .askWebhook(let call): call.step.map(Scope.step) ?? .rollout
        default: .rollout
        }
    }
}

/// Runs one closure at a time (a lock the closures it runs share).
final class OneAtATime: Sendable {
    private let mutex = Mutex(())

    func run(_ body: () -> Void) {
        mutex.withLock { _ in body() }
    }
}

/// The tasks a rollout started, by what cancels them. Each is cancelled and waited for by
/// `cancel` or `cancelAll` (which the runner calls before it returns), so none outlives the
/// rollout: structured in effect, though started one by one. A task that ended leaves the set.
final class TaskSet: Sendable {
    private struct Entry {
        var scope: RolloutRunner.Scope
        var task: Task<Void, Never>
    }

    private let state = Mutex<(next: Int, entries: [Int: Entry])>((0, [:]))

    func start(_ scope: RolloutRunner.Scope, _ work: @escaping @Sendable () async -> Void) {
        state.withLock { state in
            let id = state.next
            state.next += 1
            // Registered before it can end: its removal then always finds it.
            state.entries[id] = Entry(
                scope: scope,
                task: Task { [weak self] in
                    await work()
                    self?.state.withLock { _ = $0.entries.removeValue(forKey: id) }
                })
        }
    }

    /// Cancels the tasks of `scope` and waits until they have ended.
    func cancel(_ scope: RolloutRunner.Scope) async {
        await cancel { $0 == scope }
    }

    func cancelAll() async {
        await cancel { _ in true }
    }

    private func cancel(where matches: (RolloutRunner.Scope) -> Bool) async {
        let tasks = state.withLock { state in
            let matching = state.entries.filter { matches($0.value.scope) }
            for id in matching.keys { state.entries.removeValue(forKey: id) }
            return matching.values.map(\.task)
        }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }
}
