import Foundation

/// The limit on open files (`RLIMIT_NOFILE`) of this process, as `raiseDescriptorLimit()` found
/// and left it.
public struct DescriptorLimit: Sendable, Equatable {
    /// The soft limit before the raise: often 1,024, which a server runs out of first.
    public var previous: UInt64
    /// The soft limit now in force.
    public var soft: UInt64
    /// The hard limit: the most the soft limit may be raised to without privileges.
    public var hard: UInt64
}

/// Raises the soft limit on open files to the hard limit, as servers do at start: the common
/// default of 1,024 is used up by a thousand idle connections (or children's pipes) long before
/// memory or the CPU are.
///
/// - Returns: the limits before and after; nil when they cannot be read. When the raise is
///   refused the soft limit stays as it was (`soft == previous`).
public func raiseDescriptorLimit() -> DescriptorLimit? {
    var limit = rlimit()
    #if os(Linux)
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
        let resource = RLIMIT_NOFILE
    #endif
    guard getrlimit(resource, &limit) == 0 else { return nil }
    let previous = UInt64(limit.rlim_cur)
    if limit.rlim_cur < limit.rlim_max {
        var raised = limit
        raised.rlim_cur = limit.rlim_max
        if setrlimit(resource, &raised) == 0 { limit = raised }
    }
    return DescriptorLimit(previous: previous, soft: UInt64(limit.rlim_cur), hard: UInt64(limit.rlim_max))
}
