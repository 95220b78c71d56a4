import Foundation
import HTTPTypes
public import Hummingbird
import HummingbirdCore
public import Logging
import NIOCore
import Prometheus
public import RecEngine
import RecEngineContract
import ServiceLifecycle
import UnixSignals

/// Where and as what the inference server runs.
public struct InferenceServerConfiguration: Sendable {
    /// The address to bind; loopback by default.
    public var host: String
    /// The port to bind; 0 picks a free one.
    public var port: Int
    /// The deployment colour this server is (`blue` or `green` in a blue/green release).
    public var color: String
    /// Share of `/recommend` answers that fail with 500 on purpose, for testing rollbacks.
    public var faultRate: Double
    /// Faults injected on purpose, for drills and the judge's benchmark: a worse model, a slower tail.
    public var faults: Faults
    /// How long a recommendation can convert, and how much is remembered.
    public var engagement: EngagementTracker.Limits
    /// How long clients may take and how many may be connected: what keeps idle and slow
    /// clients from starving `/health` and the metrics scrape.
    public var connections: ConnectionLimits

    /// How long a connection may wait and how many may be open.
    public struct ConnectionLimits: Sendable, Equatable {
        /// From a request's first byte to the end of its head; after it the connection gets a 408
        /// and is closed (a slowloris client sends its head a byte at a time).
        public var headerTimeout: Duration
        /// A connection that sends nothing for this long (an idle keep-alive connection, or a
        /// pause inside a request) is closed.
        public var idleTimeout: Duration
        /// Open connections at most. At the cap a new connection closes the one that has waited
        /// longest for a request; when every connection is busy with one, the new one is closed.
        public var maximumConnections: Int

        /// Descriptors `defaultMaximumConnections(descriptorLimit:)` keeps for everything but
        /// connections: the listening socket, the event loops, standard streams, the state file.
        public static let reservedDescriptors = 64

        public init(
            headerTimeout: Duration = .seconds(10), idleTimeout: Duration = .seconds(60), maximumConnections: Int = 960
        ) {
            self.headerTimeout = headerTimeout
            self.idleTimeout = idleTimeout
            self.maximumConnections = maximumConnections
        }

        /// The connection cap for a process allowed `descriptorLimit` open files: all but
        /// `reservedDescriptors` of them (at least 1).
        public static func defaultMaximumConnections(descriptorLimit: UInt64) -> Int {
            let usable =
                descriptorLimit > UInt64(reservedDescriptors) ? descriptorLimit - UInt64(reservedDescriptors) : 1
            return Int(clamping: usable)
        }
    }

    /// Faults a drill injects into a healthy server (named as such: never for real traffic).
    public struct Faults: Sendable, Equatable {
        /// Share of the movies in each answer replaced by random ones: a known-worse model.
        public var randomShare: Double
        /// Extra latency added to a share of `/recommend` answers: a tail regression with the same median.
        public var latency: Duration
        public var latencyShare: Double
        /// Share of `/recommend` answers replaced by the most rated movies, the same list for every
        /// user: a popularity collapse (healthy, fast, and wrong for everyone with a taste).
        public var popularShare: Double

        public init(
            randomShare: Double = 0, latency: Duration = .zero, latencyShare: Double = 0, popularShare: Double = 0
        ) {
            self.randomShare = randomShare
            self.latency = latency
            self.latencyShare = latencyShare
            self.popularShare = popularShare
        }
    }

    public init(
        host: String = "127.0.0.1", port: Int = 8080, color: String = "blue", faultRate: Double = 0,
        faults: Faults = .init(),
        engagement: EngagementTracker.Limits = .init(), connections: ConnectionLimits = .init()
    ) {
        self.host = host
        self.port = port
        self.color = color
        self.faultRate = faultRate
        self.faults = faults
        self.engagement = engagement
        self.connections = connections
    }
}

/// The HTTP inference server: `/recommend/{userId}`, `/health` and `/metrics`.
public enum InferenceServer {
    /// The default number of recommendations, as the seed answered.
    public static let defaultCount = 20
    public static let maximumCount = 100
    public static let maximumUserIDLength = 64

    /// Builds the server application for a loaded model.
    public static func application(
        model: RecommenderModel,
        configuration: InferenceServerConfiguration,
        logger: Logger,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let metrics = ServerMetrics(
            color: configuration.color, modelVersion: model.manifest.displayVersion,
            modelDigest: model.manifest.modelSHA256)
        let handlers = Handlers(
            model: model, color: configuration.color, metrics: metrics, started: .now,
            faultRate: configuration.faultRate, faults: configuration.faults,
            tracker: EngagementTracker(limits: configuration.engagement))
        // HEAD answers as GET does, without the body.
        let router = Router(options: .autoGenerateHeadEndpoints)
        router.add(
            middleware: ResponseMiddleware(
                color: configuration.color, modelVersion: model.manifest.displayVersion, metrics: metrics))
        router.get("/recommend/:userId", use: handlers.recommend)
        router.get("/health", use: handlers.health)
        router.get("/metrics", use: handlers.metrics)
        router.post("/events", use: handlers.events)
        router.post("/events/:userId", use: handlers.events)
        let limits = configuration.connections
        let connections = ConnectionTable(maximum: limits.maximumConnections)
        return Application(
            router: router,
            server: HTTPServerBuilder { responder in
                LimitedHTTP1Channel(responder: responder, limits: limits, connections: connections)
            },
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port), serverName: "recengine"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? configuration.port) },
            logger: logger)
    }

    /// Loads nothing, binds, and serves until SIGTERM or SIGINT, then finishes the requests in
    /// flight and returns.
    public static func run(
        model: RecommenderModel,
        configuration: InferenceServerConfiguration,
        logger: Logger,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws {
        let app = application(
            model: model, configuration: configuration, logger: logger, onServerRunning: onServerRunning)
        let group = ServiceGroup(
            configuration: .init(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }

    /// Whether `id` is a user id the server accepts: 1 to 64 letters, digits and `._+-`.
    public static func isValidUserID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= maximumUserIDLength
            && id.utf8.allSatisfy { byte in
                (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                    || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                    || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: ".")
                    || byte == UInt8(ascii: "_")
                    || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-")
            }
    }
}

/// Route handlers over one loaded model.
struct Handlers: Sendable {
    let model: RecommenderModel
    let color: String
    let metrics: ServerMetrics
    let started: ContinuousClock.Instant
    let faultRate: Double
    let faults: InferenceServerConfiguration.Faults
    let tracker: EngagementTracker

    /// Largest `POST /events` body accepted.
    static let maximumEventBody = 1 << 20

    struct EventBatch: Decodable {
        struct Entry: Decodable {
            var user: String?
            var movie: String
            var kind: EngagementTracker.Event.Kind
            var rating: Int?
        }

        var events: [Entry]
    }

    struct EventReport: Encodable {
        var accepted: Int
        var conversions: Int
        var noMatch: Int
        var lowRating: Int

        enum CodingKeys: String, CodingKey {
            case accepted, conversions
            case noMatch = "no_match"
            case lowRating = "low_rating"
        }
    }

    /// `POST /events[/{userId}]` with `{"events": [{"user", "movie", "kind": "watch"|"rate", "rating"}]}`;
    /// with a user in the path, events may leave out `user` (and nginx routes the batch to the
    /// colour that user is pinned to).
    @Sendable func events(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let pathUser = context.parameters.get("userId")
        if let pathUser, !InferenceServer.isValidUserID(pathUser) {
            return Self.badRequest(
                "userId must be 1 to \(InferenceServer.maximumUserIDLength) characters of letters, digits and ._+-",
                json: true)
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: Self.maximumEventBody)
        } catch is NIOTooManyBytesError {
            let message = "the body is larger than \(Self.maximumEventBody) bytes: send smaller batches"
            return (try? Self.json(["error": message], status: .contentTooLarge))
                ?? Self.text("error: \(message)\n", status: .contentTooLarge)
        } catch {
            return Self.badRequest("the body did not arrive whole (\(error)): send it again", json: true)
        }
        let batch: EventBatch
        do {
            batch = try JSONDecoder().decode(EventBatch.self, from: Data(body.readableBytesView))
        } catch {
            return Self.badRequest(
                "expected {\"events\": [{\"user\", \"movie\", \"kind\": \"watch\" or \"rate\", \"rating\"}]}",
                json: true)
        }
        let interleaved = InferenceServer.isInterleaved(request)
        var report = EventReport(accepted: 0, conversions: 0, noMatch: 0, lowRating: 0)
        for entry in batch.events {
            guard let user = entry.user ?? pathUser, InferenceServer.isValidUserID(user), !entry.movie.isEmpty else {
                return Self.badRequest(
                    "every event needs a valid user (in the event or the path) and a movie", json: true)
            }
            if entry.kind == .rate, !(1...5).contains(entry.rating ?? 0) {
                return Self.badRequest("a rate event needs a rating from 1 to 5", json: true)
            }
        }
        for entry in batch.events {
            let event = EngagementTracker.Event(
                user: entry.user ?? pathUser ?? "", movie: entry.movie, kind: entry.kind, rating: entry.rating)
            let outcome: EngagementTracker.Outcome = interleaved ? .interleaved : tracker.record(event)
            metrics.recordEvent(event, outcome: outcome)
            report.accepted += 1
            switch outcome {
            case .conversion: report.conversions += 1
            case .noMatch: report.noMatch += 1
            case .lowRating: report.lowRating += 1
            case .interleaved: break
            }
        }
        return try Self.json(report)
    }

    struct RecommendationBody: Encodable {
        var user: String
        var items: [String]
        var personalised: Bool
        var color: String
        var modelVersion: String

        enum CodingKeys: String, CodingKey {
            case user, items, personalised, color
            case modelVersion = "model_version"
        }
    }

    struct HealthBody: Encodable {
        var status = "ok"
        var color: String
        var modelVersion: String
        var modelDigest: String
        var uptimeSeconds: Double
        var users: Int
        var items: Int

        enum CodingKeys: String, CodingKey {
            case status, color, users, items
            case modelVersion = "model_version"
            case modelDigest = "model_digest"
            case uptimeSeconds = "uptime_seconds"
        }
    }

    @Sendable func recommend(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let wantsJSON = request.headers[.accept]?.contains("application/json") ?? false
        let user = context.parameters.get("userId") ?? ""
        guard InferenceServer.isValidUserID(user) else {
            return Self.badRequest(
                "userId must be 1 to \(InferenceServer.maximumUserIDLength) characters of letters, digits and ._+-",
                json: wantsJSON)
        }
        var count = InferenceServer.defaultCount
        if let text = request.uri.queryParameters.get("k") {
            guard let value = Int(text), (1...InferenceServer.maximumCount).contains(value) else {
                return Self.badRequest(
                    "k must be a whole number from 1 to \(InferenceServer.maximumCount)", json: wantsJSON)
            }
            count = value
        }
        if faultRate > 0 && Double.random(in: 0..<1) < faultRate {
            return Self.text("error: injected fault (--fault-rate)\n", status: .internalServerError)
        }
        if faults.latencyShare > 0 && Double.random(in: 0..<1) < faults.latencyShare {
            try await Task.sleep(for: faults.latency)
        }
        let recommendations = model.recommend(user: user, count: count)
        var ids = recommendations.items.map { model.itemIDs[Int($0)] }
        if faults.popularShare > 0 && Double.random(in: 0..<1) < faults.popularShare {
            // A collapsed model, on purpose: the most rated movies, whoever asks.
            ids = model.popularItems.prefix(count).map { model.itemIDs[Int($0)] }
        }
        if faults.randomShare > 0 {
            // A worse model, on purpose: a share of the answer replaced by random movies.
            for index in ids.indices where Double.random(in: 0..<1) < faults.randomShare {
                ids[index] = model.itemIDs[Int.random(in: 0..<model.itemIDs.count)]
            }
        }
        // A HEAD answer shows nobody a movie: it is neither served nor able to convert. Nor is a
        // list nginx interleaves: it counts that user's engagement itself.
        if InferenceServer.isInterleaved(request) {
            metrics.recordInterleavedAnswer()
        } else if request.method != .head {
            metrics.recordRecommendations(recommendations, user: user, newUser: tracker.recommended(ids, to: user))
        }
        if wantsJSON {
            return try Self.json(
                RecommendationBody(
                    user: user, items: ids, personalised: recommendations.personalised, color: color,
                    modelVersion: model.manifest.displayVersion))
        }
        return Self.text(ids.joined(separator: ","))
    }

    @Sendable func health(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try Self.json(
            HealthBody(
                color: color, modelVersion: model.manifest.displayVersion, modelDigest: model.manifest.modelSHA256,
                uptimeSeconds: (ContinuousClock.now - started).seconds, users: model.userIDs.count,
                items: model.itemIDs.count))
    }

    @Sendable func metrics(_ request: Request, context: BasicRequestContext) async throws -> Response {
        var buffer: [UInt8] = []
        metrics.registry.emit(into: &buffer)
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
    }

    static func text(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }

    static func badRequest(_ message: String, json: Bool) -> Response {
        if json, let response = try? Self.json(["error": message], status: .badRequest) {
            return response
        }
        return text("error: \(message)\n", status: .badRequest)
    }
}

/// Puts `X-Model-Color` and `X-Model-Version` on every answer, errors included, and records
/// each request's route, status and latency.
struct ResponseMiddleware<Context: RequestContext>: RouterMiddleware {
    let color: String
    let modelVersion: String
    let metrics: ServerMetrics

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let start = ContinuousClock.now
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            response = Handlers.text("error: \(error.status.reasonPhrase)\n", status: error.status)
        } catch {
            response = Handlers.text("error: internal server error\n", status: .internalServerError)
        }
        response.headers[.modelColor] = color
        response.headers[.modelVersion] = modelVersion
        metrics.recordRequest(
            route: context.endpointPath ?? "unmatched", status: response.status.code,
            duration: ContinuousClock.now - start)
        return response
    }
}

extension InferenceServer {
    /// Set by nginx (Sources/Traffic/Resources/interleave.lua) on the requests of users in its
    /// interleaving sample: their recommendations and events stay out of this colour's engagement
    /// counts, so that the interleaved users do not bias the comparison of the colours' own users.
    public static let interleavedHeader = "X-Orchestrate-Interleaved"

    static func isInterleaved(_ request: Request) -> Bool {
        request.headers[.orchestrateInterleaved] == "1"
    }
}

extension HTTPField.Name {
    static let orchestrateInterleaved = HTTPField.Name(InferenceServer.interleavedHeader) ?? .server
    // Both literals are valid header tokens, so the fallback is never taken.
    static let modelColor = HTTPField.Name("X-Model-Color") ?? .server
    static let modelVersion = HTTPField.Name("X-Model-Version") ?? .server
}
