import NIOCore
import Synchronization

/// The server's open connections, and since when each has been waiting for a request.
///
/// At the cap a new connection closes the one that has waited longest, idle or sending its
/// request head slowly: a flood of idle or slow clients cannot use up the descriptors and keep
/// out the health checks and the metrics scrape. Only when every connection is busy with a
/// request is the new one closed instead.
final class ConnectionTable: Sendable {
    /// What `admit(_:)` did with a new connection.
    enum Admission: Equatable {
        case admitted
        /// Admitted after closing the connection that had waited longest for a request.
        case admittedClosingTheLongestWaiting
        /// Every open connection is busy with a request: the new one is to be closed.
        case refused
    }

    private struct Entry {
        let channel: any Channel
        /// Since when the connection has been waiting for a request head; nil during a request.
        var waitingSince: ContinuousClock.Instant?
    }

    /// Open connections at most.
    let maximum: Int
    private let entries = Mutex<[ObjectIdentifier: Entry]>([:])

    init(maximum: Int) {
        self.maximum = max(maximum, 1)
    }

    /// Connections open now.
    var count: Int {
        entries.withLock { $0.count }
    }

    /// Counts a new connection in, closing the longest-waiting one at the cap.
    func admit(_ channel: any Channel) -> Admission {
        let (admission, closing): (Admission, (any Channel)?) = entries.withLock { entries in
            var closing: (any Channel)?
            if entries.count >= maximum {
                var longest: (key: ObjectIdentifier, since: ContinuousClock.Instant)?
                for (key, entry) in entries {
                    if let since = entry.waitingSince, longest.map({ since < $0.since }) ?? true {
                        longest = (key, since)
                    }
                }
                guard let longest, let entry = entries.removeValue(forKey: longest.key) else { return (.refused, nil) }
                closing = entry.channel
            }
            entries[ObjectIdentifier(channel)] = Entry(channel: channel, waitingSince: .now)
            return (closing == nil ? .admitted : .admittedClosingTheLongestWaiting, closing)
        }
        closing?.close(promise: nil)
        return admission
    }

    /// A request head arrived: the connection is busy until its answer is written.
    func requestStarted(on channel: any Channel) {
        entries.withLock { $0[ObjectIdentifier(channel)]?.waitingSince = nil }
    }

    /// The answer is written: the connection waits for the next request.
    func requestFinished(on channel: any Channel) {
        entries.withLock { $0[ObjectIdentifier(channel)]?.waitingSince = .now }
    }

    /// The connection closed.
    func remove(_ channel: any Channel) {
        entries.withLock { entries in
            // An identifier is unique only while its channel lives; the closing channel still does.
            if entries[ObjectIdentifier(channel)]?.channel === channel {
                entries[ObjectIdentifier(channel)] = nil
            }
        }
    }
}
