import Foundation
import HTTPTransport
import OrchestratorSupport
import Synchronization

/// HTTP requests sent off the rollout's path: observers queue them (never waiting), and one
/// sender per destination delivers them in order, with a timeout per attempt and retries with
/// backoff. A destination's queue is bounded (`capacity`); what does not fit is dropped and
/// counted. When the run ends, what is still queued gets at most `flushLimit` to go out; then
/// the senders are cancelled and a warning says how much was given up.
final class Outbox: Sendable {
    /// How long the end of a run waits for queued requests (documented in the README).
    static let flushLimit: Duration = .seconds(5)
    /// The most of a receiver's answer read: only its status matters (documented in the README).
    static let answerLimit = HTTPClient.BodyLimit(
        64 << 10, for: "a webhook receiver's answer",
        hint: "a receiver acknowledges with a status and a short body; check the receiver")

    /// One receiver.
    struct Destination: Sendable {
        /// How people know it in warnings (never its URL), e.g. `notify team-slack`.
        var name: String
        var timeout: Duration
        var retries: Int
        /// The first pause between attempts; it doubles after each.
        var backoff: Duration = .seconds(1)
        /// Requests kept waiting at most; with `latestOnly` only the newest is kept (a state
        /// snapshot replaces the one before it).
        var capacity: Int = 64
        var latestOnly = false
    }

    struct Request: Sendable {
        var method: String
        var url: String
        var headers: [String]
        var body: Data
        /// What it says, for warnings (e.g. `promoted`).
        var what: String
    }

    private struct Lane: Sendable {
        var destination: Destination
        var stream: AsyncStream<Request>
        var continuation: AsyncStream<Request>.Continuation
    }

    private struct Counts {
        var queued = 0
        var dropped = 0
        var failed = 0
    }

    private let lanes: [String: Lane]
    private let counts = Mutex<[String: Counts]>([:])
    private let warn: @Sendable (String) -> Void
    /// Secrets (URLs, tokens) taken out of every warning.
    private let redaction: Redaction

    init(destinations: [Destination], redaction: Redaction, warn: @escaping @Sendable (String) -> Void) {
        var lanes: [String: Lane] = [:]
        for destination in destinations {
            let (stream, continuation) = AsyncStream<Request>.makeStream(
                bufferingPolicy: destination.latestOnly ? .bufferingNewest(1) : .bufferingOldest(destination.capacity))
            lanes[destination.name] = Lane(destination: destination, stream: stream, continuation: continuation)
        }
        self.lanes = lanes
        self.redaction = redaction
        self.warn = warn
    }

    /// Queues `request` for `destination`; returns at once.
    func send(_ request: Request, to destination: String) {
        guard let lane = lanes[destination] else { return }
        switch lane.continuation.yield(request) {
        case .enqueued:
            counts.withLock { $0[destination, default: Counts()].queued += 1 }
        case .dropped:
            // Under `latestOnly` the older snapshot was replaced: nothing is lost that matters.
            if !lane.destination.latestOnly {
                let first = counts.withLock { counts -> Bool in
                    counts[destination, default: Counts()].dropped += 1
                    return counts[destination]?.dropped == 1
                }
                if first {
                    warn(
                        "\(destination): more than \(lane.destination.capacity) requests waiting: \(request.what) and later ones are dropped"
                    )
                }
            }
        case .terminated:
            break
        @unknown default:
            break
        }
    }

    /// Runs `body` (the run) while the senders deliver; then waits at most `flushLimit` for
    /// what is still queued.
    func delivering<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        guard !lanes.isEmpty else { return try await body() }
        let result = await withTaskGroup(of: Bool.self) { group -> Result<T, any Error> in
            for lane in lanes.values {
                group.addTask { [self] in
                    await drain(lane)
                    return true
                }
            }
            let result: Result<T, any Error>
            do {
                result = .success(try await body())
            } catch {
                result = .failure(error)
            }
            for lane in lanes.values { lane.continuation.finish() }
            group.addTask {
                try? await Task.sleep(for: Self.flushLimit)
                return false
            }
            var running = lanes.count
            while running > 0, let senderEnded = await group.next() {
                if senderEnded {
                    running -= 1
                } else {
                    let pending = counts.withLock { $0.values.reduce(0) { $0 + $1.queued } }
                    warn(
                        "notify/metrics: \(pending) request(s) still unsent \(Self.flushLimit) after the run ended: given up"
                    )
                    break
                }
            }
            group.cancelAll()
            return result
        }
        // Only a destination's first failure was told as it happened.
        for (name, count) in counts.withLock({ $0 }) where count.failed > 1 {
            warn("\(name): \(count.failed) requests not delivered during this run")
        }
        return try result.get()
    }

    private func drain(_ lane: Lane) async {
        for await request in lane.stream {
            if Task.isCancelled { return }
            await deliver(request, lane.destination)
            counts.withLock { $0[lane.destination.name, default: Counts()].queued -= 1 }
        }
    }

    /// One request, retried with backoff; a failure is a warning, never an error of the run.
    private func deliver(_ request: Request, _ destination: Destination) async {
        var pause = destination.backoff
        var problem = ""
        for attempt in 0...destination.retries {
            if attempt > 0 {
                do { try await Task.sleep(for: pause) } catch { return }
                pause *= 2
            }
            do {
                let response = try await HTTPClient.send(
                    HTTPClient.Request(
                        // "Expect:" keeps libcurl from waiting for a 100 Continue before a body over 1 KiB.
                        method: request.method, url: request.url, headers: request.headers + ["Expect:"],
                        body: .data(request.body),
                        timeout: destination.timeout, limit: Self.answerLimit))
                if (200..<300).contains(response.status) { return }
                problem = "HTTP \(response.status)"
                // A request the receiver refuses will be refused again (but 408 and 429 may pass later).
                if (400..<500).contains(response.status) && response.status != 408 && response.status != 429 { break }
            } catch let error as HTTPClient.TransportError
                where error.code == .answerTooLarge && (200..<300).contains(error.status)
            {
                return  // delivered: the receiver took it, only its answer was cut off
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                problem = "\(error)".replacingOccurrences(of: request.url, with: Redaction.placeholder)
            }
        }
        let first = counts.withLock { counts -> Bool in
            counts[destination.name, default: Counts()].failed += 1
            return counts[destination.name]?.failed == 1
        }
        if first {
            warn(
                redaction.redact(
                    "\(destination.name): \(request.what) not delivered after \(destination.retries + 1) attempt(s): \(problem)"
                ))
        }
    }
}
