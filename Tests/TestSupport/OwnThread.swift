import Foundation

/// Runs `work`, which blocks (`waitpid`, `poll`, a synchronous ingest), on a thread of its own.
///
/// Swift's cooperative pool has one thread per core: two on the CI machine. A test that blocks
/// one of them (even inside `Task.detached`) stalls the timers and I/O of every test running in
/// parallel; on CI a 500 ms stage timeout was measured at 109 s that way.
public func onOwnThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: work()) }.start()
    }
}

/// `onOwnThread` for work that throws.
public func onOwnThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}
