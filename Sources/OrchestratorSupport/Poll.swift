/// The one way the controller waits for something: `check` every `interval` until it gives a
/// value or `timeout` passes.
///
/// - Returns: the first value, or nil when the time ran out (`check` is tried at least once).
/// - Throws: `CancellationError` when the task is cancelled, or what `check` throws.
package func poll<T>(every interval: Duration, for timeout: Duration, _ check: () async throws -> T?) async throws -> T?
{
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while true {
        if let value = try await check() { return value }
        if clock.now >= deadline { return nil }
        try await Task.sleep(for: min(interval, deadline - clock.now))
    }
}
