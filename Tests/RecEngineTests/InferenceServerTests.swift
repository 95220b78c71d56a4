import Foundation
import HTTPTypes
import Logging
import NIOCore
import RecEngine
import Testing

@testable import RecEngineServer

/// The inference server served for real on a free loopback port, asked over HTTP as nginx and
/// the controller ask it.
@Suite struct InferenceServerTests {
    /// Runs `body` against a server of `model` (`RecommendTests.model` by default), coloured
    /// green, stopped when `body` ends.
    static func withServer(
        model: RecommenderModel = RecommendTests.model, _ body: (LiveServer.Client) async throws -> Void
    ) async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        try await LiveServer.run(
            { onServerRunning in
                InferenceServer.application(
                    model: model, configuration: .init(port: 0, color: "green"), logger: logger,
                    onServerRunning: onServerRunning)
            }, body)
    }

    static func modelHeaders(_ response: LiveServer.Response) {
        #expect(response.headers[.init("X-Model-Color")!] == "green")
        #expect(response.headers[.init("X-Model-Version")!] == RecommendTests.model.manifest.displayVersion)
    }

    @Test func recommendAnswersCommaSeparatedIDs() async throws {
        try await Self.withServer { client in
            try await client.execute(uri: "/recommend/u7?k=5", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("text/plain") == true)
                Self.modelHeaders(response)
                let ids = String(buffer: response.body).split(separator: ",").map(String.init)
                let expected = RecommendTests.model.recommend(user: "u7", count: 5).items.map {
                    RecommendTests.model.itemIDs[Int($0)]
                }
                #expect(ids == expected)
            }
            try await client.execute(uri: "/recommend/u7", method: .get) { response in
                #expect(String(buffer: response.body).split(separator: ",").count == InferenceServer.defaultCount)
            }
        }
    }

    /// The server answers from an EASE model as from any other: the user's list leaves out what
    /// they interacted with, scores unclipped, in the model's order.
    @Test func anEASEModelIsServed() async throws {
        let ratings = clusteredInteractions(users: 40, items: 30, perUser: 8, seed: 6)
        let model = try RecommenderModel.trainEASE(
            on: RatingsFile(path: "t.csv", ratings: ratings, format: .csv, sha256: ""),
            parameters: EASEParameters(regularization: 10))
        try await Self.withServer(model: model) { client in
            try await client.execute(uri: "/recommend/u3?k=4", method: .get, headers: [.accept: "application/json"]) {
                response in
                #expect(response.status == .ok)
                let body =
                    try JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8)) as? [String: Any]
                let items = try #require(body?["items"] as? [String])
                #expect(items == model.recommend(user: "u3", count: 4).items.map { model.itemIDs[Int($0)] })
                #expect(body?["personalised"] as? Bool == true)
                let user = try #require(model.userIndex(of: "u3"))
                let seen = Set(model.ratedItems(of: user).map { model.itemIDs[Int($0)] })
                #expect(items.count == 4 && seen.isDisjoint(with: items))
            }
        }
    }

    @Test func recommendAnswersJSONWhenAsked() async throws {
        try await Self.withServer { client in
            try await client.execute(
                uri: "/recommend/stranger?k=3", method: .get, headers: [.accept: "application/json"]
            ) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/json")
                let body =
                    try JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8)) as? [String: Any]
                #expect((body?["items"] as? [String])?.count == 3)
                #expect(body?["personalised"] as? Bool == false)
                #expect(body?["color"] as? String == "green")
            }
        }
    }

    @Test func anEventBodyOverTheLimitGets413NotedAsTooLarge() async throws {
        try await Self.withServer { client in
            let body = ByteBuffer(string: String(repeating: " ", count: Handlers.maximumEventBody + 1))
            try await client.execute(
                uri: "/events", method: .post, headers: [.contentType: "application/json"], body: body
            ) { response in
                #expect(response.status == .contentTooLarge)
                #expect(String(buffer: response.body).contains("larger than"))
            }
        }
    }

    @Test(arguments: [
        "/recommend/bad%20id", "/recommend/" + String(repeating: "x", count: 65), "/recommend/a;b",
        "/recommend/u7?k=0", "/recommend/u7?k=101", "/recommend/u7?k=ten", "/recommend/u7?k=",
    ])
    func badInputGets400WithAMessage(uri: String) async throws {
        try await Self.withServer { client in
            try await client.execute(uri: uri, method: .get) { response in
                #expect(response.status == .badRequest)
                #expect(String(buffer: response.body).hasPrefix("error: "))
                Self.modelHeaders(response)
            }
            try await client.execute(uri: uri, method: .get, headers: [.accept: "application/json"]) { response in
                #expect(response.status == .badRequest)
                let body =
                    try JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8))
                    as? [String: String]
                #expect(body?["error"]?.isEmpty == false)
            }
        }
    }

    @Test func unknownRoutesStillCarryTheModelHeaders() async throws {
        try await Self.withServer { client in
            try await client.execute(uri: "/nothing-here", method: .get) { response in
                #expect(response.status == .notFound)
                Self.modelHeaders(response)
            }
        }
    }

    @Test func eventsConvertRecommendationsAndAreCountedPerColour() async throws {
        try await Self.withServer { client in
            var recommended: [String] = []
            try await client.execute(uri: "/recommend/u3?k=3", method: .get) { response in
                recommended = String(buffer: response.body).split(separator: ",").map(String.init)
            }
            let body =
                #"{"events": [{"movie": "\#(recommended[0])", "kind": "watch"}, {"movie": "\#(recommended[1])", "kind": "rate", "rating": 4}, {"movie": "\#(recommended[2])", "kind": "rate", "rating": 2}, {"movie": "nope", "kind": "watch"}]}"#
            try await client.execute(uri: "/events/u3", method: .post, body: ByteBuffer(string: body)) { response in
                #expect(response.status == .ok)
                let report =
                    try JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8)) as? [String: Int]
                #expect(report == ["accepted": 4, "conversions": 2, "no_match": 1, "low_rating": 1])
            }
            try await client.execute(
                uri: "/events", method: .post,
                body: ByteBuffer(string: #"{"events": [{"movie": "x", "kind": "watch"}]}"#)
            ) { response in
                #expect(response.status == .badRequest, "without a user in the path every event needs one")
            }
            try await client.execute(uri: "/events/u3", method: .post, body: ByteBuffer(string: "not json")) {
                response in
                #expect(response.status == .badRequest)
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                let text = String(buffer: response.body)
                #expect(text.contains(#"recengine_conversions_total{color="green",model_version=""#))
                // Counted in the user's bucket (the judge measures variance between buckets of users).
                let bucket = ServerMetrics.userBucket("u3")
                #expect(text.contains(#"kind="watch",user_bucket="\#(bucket)"} 1"#), "\(text)")
                #expect(text.contains(#"kind="rate",user_bucket="\#(bucket)"} 1"#))
                let served = text.split(separator: "\n").filter {
                    $0.hasPrefix("recengine_recommendations_served_total{")
                }
                #expect(served.count == ServerMetrics.userBuckets, "one series per bucket")
                #expect(text.contains(#"outcome="no_match"} 1"#))
                #expect(text.contains(#"recengine_users_recommended_total{color="green""#))
            }
        }
    }

    @Test func healthReportsColourAndDigest() async throws {
        try await Self.withServer { client in
            try await client.execute(uri: "/health", method: .get) { response in
                #expect(response.status == .ok)
                Self.modelHeaders(response)
                let body =
                    try JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8)) as? [String: Any]
                #expect(body?["status"] as? String == "ok")
                #expect(body?["color"] as? String == "green")
                #expect(body?["model_digest"] as? String == RecommendTests.model.manifest.modelSHA256)
                #expect((body?["uptime_seconds"] as? Double ?? -1) >= 0)
            }
        }
    }

    @Test func metricsCountRequestsPerColour() async throws {
        try await Self.withServer { client in
            for _ in 0..<3 {
                try await client.execute(uri: "/recommend/u1?k=4", method: .get) { #expect($0.status == .ok) }
            }
            try await client.execute(uri: "/recommend/u1?k=0", method: .get) { #expect($0.status == .badRequest) }
            try await client.execute(uri: "/metrics", method: .get) { response in
                let text = String(buffer: response.body)
                #expect(
                    text.contains(
                        #"recengine_http_requests_total{route="/recommend/{userId}",status="200",color="green"} 3"#))
                #expect(
                    text.contains(
                        #"recengine_http_requests_total{route="/recommend/{userId}",status="400",color="green"} 1"#))
                #expect(text.contains(#"recengine_recommendations_served_total{color="green",model_version=""#))
                #expect(text.contains("recengine_http_request_duration_seconds_bucket{"))
                #expect(text.contains(#"recengine_model_info{color="green""#))
                // Every series carries the colour.
                for line in text.split(separator: "\n") where !line.hasPrefix("#") {
                    #expect(line.contains(#"color="green""#), "\(line)")
                }
            }
        }
    }

    /// HEAD answers as GET does: the same status and headers (the length included), no body.
    /// `/health`'s uptime and `/metrics`' counters move between the two requests, so their
    /// lengths are compared only roughly (after a first request has made every series).
    @Test(arguments: [
        ("/health", false), ("/recommend/u7?k=5", true), ("/recommend/bad%20id", true), ("/metrics", false),
    ])
    func headAnswersLikeGetWithoutABody(uri: String, sameLength: Bool) async throws {
        try await Self.withServer { client in
            _ = try await client.execute(uri: uri, method: .get)
            let get = try await client.execute(uri: uri, method: .get)
            let head = try await client.execute(uri: uri, method: .head)
            #expect(head.status == get.status)
            #expect(head.body.readableBytes == 0)
            #expect(get.body.readableBytes > 0)
            Self.modelHeaders(head)
            #expect(head.headers[.contentType] == get.headers[.contentType])
            let length = try #require(
                head.headers[.contentLength].flatMap { Int($0) }, "HEAD gives the length GET would")
            #expect(
                abs(length - get.body.readableBytes) <= (sameLength ? 0 : 200),
                "\(length) against \(get.body.readableBytes)")
        }
    }

    @Test func headRecommendationsAreNotCountedAsServed() async throws {
        try await Self.withServer { client in
            try await client.execute(uri: "/recommend/u2?k=3", method: .head) { #expect($0.status == .ok) }
            try await client.execute(uri: "/recommend/u2?k=3", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/metrics", method: .get) { response in
                let text = String(buffer: response.body)
                let bucket = ServerMetrics.userBucket("u2")
                let served = text.split(separator: "\n").first {
                    $0.hasPrefix("recengine_recommendations_served_total{") && $0.contains(#"user_bucket="\#(bucket)""#)
                }
                #expect(served?.hasSuffix(" 3") == true, "3 items, from the GET alone: \(served ?? "no series")")
                #expect(
                    text.contains(
                        #"recengine_http_requests_total{route="/recommend/{userId}",status="200",color="green"} 2"#))
            }
        }
    }
}
