import OrchestratorSupport
import Synchronization
import Testing

/// A request that starts something (a container, a swarm service) runs to its end even when the
/// release is cancelled meanwhile, so that the stop that follows knows what it started.
@Suite struct CompletingTests {
    @Test func workStartedBeforeACancellationEndsAndTheCancellationFollows() async throws {
        let created = Mutex(false)
        let started = AsyncStream<Void>.makeStream()
        let release = Task {
            try await completing {
                started.continuation.yield()
                try? await Task.sleep(for: .milliseconds(300))
                created.withLock { $0 = true }
                return "service-id"
            }
        }
        var iterator = started.stream.makeAsyncIterator()
        await iterator.next()
        release.cancel()
        let result = await release.result
        #expect(created.withLock { $0 }, "the work ran to its end although its caller was cancelled")
        #expect(throws: CancellationError.self) { try result.get() }
    }

    @Test func workThatEndsUncancelledGivesItsResult() async throws {
        #expect(try await completing { 42 } == 42)
    }
}
