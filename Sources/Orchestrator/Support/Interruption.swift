import Synchronization

/// A request to stop the run early (SIGTERM or SIGINT, forwarded by the command line through the
/// service group's graceful shutdown). The run rolls back to the live colour, stops what it
/// started, records the release as interrupted, and ends.
public final class Interruption: Sendable {
    private struct State {
        var signal: Int32?
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Raises the interruption; the first signal is the one reported.
    public func raise(_ signal: Int32) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            if state.signal == nil { state.signal = signal }
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        waiters.forEach { $0.resume() }
    }

    /// The signal that interrupted the run, nil while it was not.
    public var signal: Int32? { state.withLock { $0.signal } }

    public var isRaised: Bool { signal != nil }

    /// Returns once the run is interrupted, or when the waiting task is cancelled.
    func wait() async {
        let id = state.withLock { state -> Int in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    if state.signal != nil || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume()
        }
    }

    /// Runs `work` unless the run is interrupted first, in which case `work` is cancelled (a
    /// child process it waits for is stopped) and nil is returned.
    func unlessInterrupted<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) async throws -> T? {
        if isRaised { return nil }
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await work() }
            group.addTask {
                await self.wait()
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next() else { return nil }
            return first
        }
    }
}
