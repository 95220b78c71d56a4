import Foundation
import RecEngine
import Synchronization

/// Remembers what the server recommended to whom, for a time window and within a memory bound,
/// and turns user events into conversions: a recommended movie watched, or rated 4 or more, by
/// that user within the window. Each recommended (user, movie) pair converts at most once.
public final class EngagementTracker: Sendable {
    public struct Limits: Sendable {
        /// How long a recommendation can convert.
        public var window: Duration
        /// Users remembered at once; the least recently recommended are forgotten first.
        public var maximumUsers: Int
        /// Recommended movies remembered per user; the oldest are forgotten first.
        public var maximumItemsPerUser: Int

        public init(window: Duration = .seconds(600), maximumUsers: Int = 100_000, maximumItemsPerUser: Int = 200) {
            self.window = window
            self.maximumUsers = maximumUsers
            self.maximumItemsPerUser = maximumItemsPerUser
        }
    }

    /// A user event in the movie log's terms.
    public struct Event: Sendable, Codable, Equatable {
        public enum Kind: String, Sendable, Codable {
            /// `GET /data/m/<movie>/<minute>.mpg`: the user watched (a minute of) the movie.
            case watch
            /// `GET /rate/<movie>=<rating>`.
            case rate
        }

        public var user: String
        public var movie: String
        public var kind: Kind
        public var rating: Int?

        public init(user: String, movie: String, kind: Kind, rating: Int? = nil) {
            self.user = user
            self.movie = movie
            self.kind = kind
            self.rating = rating
        }
    }

    /// What an event did.
    public enum Outcome: String, Sendable, CaseIterable {
        /// It converted a recommendation.
        case conversion
        /// The user was not recommended that movie within the window (or it converted already).
        case noMatch = "no_match"
        /// A rating below 4: not a conversion, and the recommendation stays open.
        case lowRating = "low_rating"
        /// An event of a user in nginx's interleaving sample: nginx credits it to a colour, this
        /// server leaves it out of its own engagement (see `InferenceServer.interleavedHeader`).
        case interleaved
    }

    private struct Pending {
        var movie: String
        var at: ContinuousClock.Instant
    }

    private struct State {
        var users: [String: [Pending]] = [:]
        var operations = 0
    }

    public let limits: Limits
    private let state = Mutex(State())

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Remembers a recommendation answer; returns whether the user had nothing pending (a newly
    /// recommended user in this window).
    @discardableResult
    public func recommended(_ movies: [String], to user: String, at now: ContinuousClock.Instant = .now) -> Bool {
        state.withLock { state in
            var pending = (state.users[user] ?? []).filter { now - $0.at < limits.window }
            let isNew = pending.isEmpty
            let recommendedNow = Set(movies)
            pending.removeAll { recommendedNow.contains($0.movie) }
            pending += movies.map { Pending(movie: $0, at: now) }
            if pending.count > limits.maximumItemsPerUser {
                pending.removeFirst(pending.count - limits.maximumItemsPerUser)
            }
            state.users[user] = pending
            state.operations += 1
            if state.operations % 4096 == 0 || state.users.count > limits.maximumUsers {
                evict(&state, now: now)
            }
            return isNew
        }
    }

    /// Applies an event.
    public func record(_ event: Event, at now: ContinuousClock.Instant = .now) -> Outcome {
        if event.kind == .rate, (event.rating ?? 0) < 4 { return .lowRating }
        return state.withLock { state in
            guard var pending = state.users[event.user],
                let index = pending.firstIndex(where: { $0.movie == event.movie && now - $0.at < limits.window })
            else { return .noMatch }
            pending.remove(at: index)
            state.users[event.user] = pending.isEmpty ? nil : pending
            return .conversion
        }
    }

    /// Users remembered now (for tests and the memory bound).
    public var rememberedUsers: Int {
        state.withLock { $0.users.count }
    }

    /// Forgets users whose recommendations all left the window and, beyond the bound, the users
    /// recommended longest ago (a tenth of the bound at a time, so eviction stays rare).
    private func evict(_ state: inout State, now: ContinuousClock.Instant) {
        state.users = state.users.filter { now - ($0.value.last?.at ?? now) < limits.window }
        guard state.users.count > limits.maximumUsers else { return }
        let excess = state.users.count - limits.maximumUsers + max(1, limits.maximumUsers / 10)
        let oldest = state.users.sorted { ($0.value.last?.at ?? now) < ($1.value.last?.at ?? now) }.prefix(excess).map(
            \.key)
        for user in oldest { state.users[user] = nil }
    }
}
