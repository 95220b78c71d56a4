/// Runs `work` to its end even when the calling task is cancelled meanwhile, then throws the
/// cancellation: for a request that starts something (a container, a service), so that whatever
/// it started is known when the caller stops it, never created behind its back a moment later.
package func completing<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) async throws -> T {
    // An unstructured task is not cancelled with its awaiting parent.
    let result = try await Task { try await work() }.value
    try Task.checkCancellation()
    return result
}
