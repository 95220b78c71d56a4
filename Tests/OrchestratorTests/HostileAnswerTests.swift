import EngineAPI
import Foundation
import HTTPTransport
import StrictYAML
import Synchronization
import Testing
import TextSafety

@testable import DeploymentRuntimes
@testable import Orchestrator
@testable import OrchestratorSupport
@testable import PipelineSchema
@testable import Provenance

/// What peers answer on their worst day (issue 20): a body without end, a huge one, a drip,
/// headers without end, a million series, -Inf, a redirect, escape sequences; against the real
/// clients and a hostile HTTP server on loopback.
@Suite struct HostileAnswerTests {
    static let small = HTTPClient.BodyLimit(64 << 10, for: "a test's answer", hint: "ask for less")

    // MARK: The client

    @Test func aBodyWithoutEndStopsAtTheLimitWithAnErrorThatSaysWhereAndWhatToDo() async throws {
        try await HostileHTTPServer.with({ _ in .endless() }) { server in
            let error = await #expect(throws: HTTPClient.TransportError.self) {
                try await HTTPClient.get(server.url + "/stream", limit: Self.small, timeout: .seconds(30))
            }
            #expect(error?.code == .answerTooLarge)
            #expect(error?.status == 200)
            #expect(
                error?.description.contains(server.url + "/stream") == true, "the URL: \(error.map { "\($0)" } ?? "")")
            #expect(
                error?.description.contains("larger than 64 KiB, the limit for a test's answer") == true,
                "\(error.map { "\($0)" } ?? "")")
            #expect(error?.description.contains("hint: ask for less") == true)
        }
    }

    @Test func anAnswerThatAnnouncesALargerBodyIsRefusedBeforeItsBody() async throws {
        let huge = Data(repeating: UInt8(ascii: "y"), count: 1 << 20)
        try await HostileHTTPServer.with({ _ in .body(status: 200, huge) }) { server in
            let error = await #expect(throws: HTTPClient.TransportError.self) {
                try await HTTPClient.get(server.url, limit: Self.small)
            }
            #expect(error?.code == .answerTooLarge)
        }
    }

    @Test func aBodyWithinTheLimitAndAStreamWithinItArriveWhole() async throws {
        let body = Data(repeating: UInt8(ascii: "z"), count: 64 << 10)
        try await HostileHTTPServer.with({ _ in .body(status: 200, body) }) { server in
            let answer = try await HTTPClient.get(server.url, limit: Self.small)
            #expect(answer.body == body)
        }
        try await HostileHTTPServer.with({ _ in
            .stream(status: 200) { $0 < 4 ? Data(repeating: 1, count: 16 << 10) : nil }
        }) { server in
            let answer = try await HTTPClient.get(server.url, limit: Self.small)
            #expect(answer.body.count == 64 << 10)
        }
    }

    @Test func aLargeBodyIsSentWithoutWaitingForAContinue() async throws {
        // libcurl asks for `100 Continue` before a body over 1 MiB. This receiver answers without
        // reading the body, so the transfer itself may end either way; the head is what counts.
        let body = Data(repeating: UInt8(ascii: "b"), count: (1 << 20) + 1)
        try await HostileHTTPServer.with({ _ in .body(status: 200, Data("ok".utf8)) }) { server in
            _ = try? await HTTPClient.post(server.url, body: body, limit: Self.small)
            let head = try #require(server.heads.first)
            #expect(
                !head.contains { $0.lowercased().hasPrefix("expect:") },
                "no Expect: 100-continue (libcurl waits a second for it): \(head)")
        }
    }

    @Test func theAnswersHeadersArriveNamedInLowerCaseRepeatedOnesJoined() async throws {
        let answer = HostileHTTPServer.Answer.body(
            status: 201, contentType: "text/plain", Data("ok".utf8),
            headers: ["X-Colour: green", "X-Seen: a", "x-seen:  b "])
        try await HostileHTTPServer.with({ _ in answer }) { server in
            let response = try await HTTPClient.get(server.url, limit: Self.small)
            #expect(response.status == 201)
            #expect(response.headers["content-type"] == "text/plain")
            #expect(response.headers["x-colour"] == "green")
            #expect(response.headers["x-seen"] == "a, b")
            #expect(response.body == Data("ok".utf8))
        }
    }

    /// An interim `100 Continue` answer's fields are not the final answer's.
    @Test func onlyTheFinalAnswersHeadersAreKept() async throws {
        let final = Data("HTTP/1.1 200 OK\r\nX-Final: yes\r\nContent-Length: 2\r\n\r\nok".utf8)
        try await HostileHTTPServer.with({ _ in .stream(status: 100) { $0 == 0 ? final : nil } }) { server in
            let response = try await HTTPClient.get(server.url, limit: Self.small)
            #expect(response.status == 200)
            #expect(response.headers["x-final"] == "yes")
            #expect(response.headers["content-type"] == nil, "the interim answer's")
            #expect(response.body == Data("ok".utf8))
        }
    }

    /// Each transfer blocks a thread of its own: many at once all run together. The peer answers
    /// none of them before it has them all; transfers queued behind Dispatch workers (one more a
    /// second) would take about `count` seconds to be all there, far past the deadline.
    @Test func manyTransfersAtOnceRunTogether() async throws {
        let count = 48
        let arrived = ArrivalCounter()
        let answer: @Sendable (String) -> HostileHTTPServer.Answer = { _ in
            arrived.value.add(1, ordering: .relaxed)
            return .stream(status: 200) { index in
                guard index == 0 else { return nil }
                let deadline = Date().addingTimeInterval(60)
                while arrived.value.load(ordering: .relaxed) < count && Date() < deadline {
                    Thread.sleep(forTimeInterval: 0.01)
                }
                return Data("ok".utf8)
            }
        }
        try await HostileHTTPServer.with(answer) { server in
            try await withThrowingTaskGroup(of: Data.self) { group in
                for _ in 0..<count {
                    group.addTask {
                        try await HTTPClient.get(server.url, limit: Self.small, timeout: .seconds(30)).body
                    }
                }
                for try await body in group { #expect(body == Data("ok".utf8)) }
            }
        }
    }

    final class ArrivalCounter: Sendable {
        let value = Atomic<Int>(0)
    }

    @Test func aDripEndsAtTheDeadline() async throws {
        let drip: @Sendable (String) -> HostileHTTPServer.Answer = { _ in
            .stream(status: 200, pause: .milliseconds(100)) { _ in Data("x".utf8) }
        }
        try await HostileHTTPServer.with(drip) { server in
            let error = await #expect(throws: HTTPClient.TransportError.self) {
                try await HTTPClient.get(server.url, limit: Self.small, timeout: .seconds(1))
            }
            #expect(error?.code == .timedOut)
            #expect(
                error?.description.contains("no whole answer within 1 s, the deadline") == true,
                "\(error.map { "\($0)" } ?? "")")
        }
    }

    @Test func headersWithoutEndAreCutOff() async throws {
        try await HostileHTTPServer.with({ _ in .endlessHeaders }) { server in
            let error = await #expect(throws: HTTPClient.TransportError.self) {
                try await HTTPClient.get(server.url, limit: Self.small, timeout: .seconds(30))
            }
            #expect(error?.code == .answerTooLarge, "\(error.map { "\($0)" } ?? "")")
        }
    }

    // MARK: Prometheus

    /// A Prometheus stand-in: `count((...))` of the query answers `series`, the query itself a
    /// vector of that many series.
    static func manySeries(_ count: Int) -> @Sendable (String) -> HostileHTTPServer.Answer {
        { path in
            path.contains("query=count%28%28") ? .prometheusValue(String(count)) : .prometheusVector(series: count)
        }
    }

    @Test func aGateQueryOfAMillionSeriesSaysHowManyAndToSumThemWithoutReadingThem() async throws {
        try await HostileHTTPServer.with(Self.manySeries(1_400_000)) { server in
            let error = await #expect(throws: PrometheusClient.QueryError.self) {
                try await PrometheusClient(baseURL: server.url).query("up")
            }
            #expect(error?.message == "the query returned 1400000 series; a gate needs one: wrap it in sum(...)")
        }
    }

    @Test func seriesAreCountedAsTheyArriveAlsoInJSONWithSpaces() async throws {
        try await HostileHTTPServer.with({ path in
            path.contains("query=count%28%28")
                ? .prometheusValue("1400000") : .prometheusVector(series: 1_400_000, spaced: true)
        }) { server in
            let error = await #expect(throws: PrometheusClient.QueryError.self) {
                try await PrometheusClient(baseURL: server.url).query("up")
            }
            #expect(error?.message == "the query returned 1400000 series; a gate needs one: wrap it in sum(...)")
        }
        try await HostileHTTPServer.with({ _ in .prometheusVector(series: 1, value: "3", spaced: true) }) { server in
            let sample = try await PrometheusClient(baseURL: server.url).query("up")
            #expect(sample == .value(3))
        }
    }

    @Test func aJudgeQueryOfTooManySeriesIsAnErrorWithoutReadingThemAll() async throws {
        try await HostileHTTPServer.with({ _ in .prometheusVector(series: 1_400_000) }) { server in
            let error = await #expect(throws: PrometheusClient.QueryError.self) {
                try await PrometheusClient(baseURL: server.url).queryVector("sum by (le) (x)")
            }
            #expect(
                error?.message.hasPrefix(
                    "the query returned more than 10000 series; the judge reads a histogram's buckets by le") == true,
                "\(error?.message ?? "")")
        }
        try await HostileHTTPServer.with({ _ in .prometheusVector(series: 3, value: "7") }) { server in
            let series = try await PrometheusClient(baseURL: server.url).queryVector("sum by (le) (x)")
            #expect(series.map(\.value) == [7, 7, 7])
            #expect(series.map { $0.labels["instance"] } == ["host-0", "host-1", "host-2"])
        }
    }

    @Test func aGateQueryOfTwoSeriesIsAnErrorBeforeSizeMatters() async throws {
        try await HostileHTTPServer.with(Self.manySeries(2)) { server in
            let error = await #expect(throws: PrometheusClient.QueryError.self) {
                try await PrometheusClient(baseURL: server.url).query("up")
            }
            #expect(error?.message == "the query returned 2 series; a gate needs one: wrap it in sum(...)")
        }
        // Parsed from a whole answer too (the same words).
        let two = Data(
            #"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]},{"metric":{},"value":[1,"2"]}]}}"#
                .utf8)
        #expect(throws: PrometheusClient.QueryError.self) { try PrometheusClient.parse(two, status: 200) }
    }

    @Test func anEndlessAnswerToAGateQueryIsAnErrorThatNamesTheLimit() async throws {
        try await HostileHTTPServer.with({ _ in .endless() }) { server in
            let error = await #expect(throws: PrometheusClient.QueryError.self) {
                try await PrometheusClient(baseURL: server.url).query("up")
            }
            #expect(
                error?.message.contains("larger than 1 MiB, the limit for the answer to a gate's query") == true,
                "\(error?.message ?? "")")
            #expect(error?.message.contains("sum(...)") == true)
        }
    }

    @Test func anEndlessAnswerToAJudgeQueryIsAnError() async throws {
        try await HostileHTTPServer.with({ _ in .endless() }) { server in
            let error = await #expect(throws: PrometheusClient.QueryError.self) {
                try await PrometheusClient(baseURL: server.url).queryVector("sum by (le) (x)")
            }
            #expect(error?.message.contains("larger than 4 MiB") == true, "\(error?.message ?? "")")
        }
    }

    @Test func aHugeErrorTextFullOfEscapesIsCutAndEscaped() async throws {
        // 850 KB of JSON, under the limit.
        let text = String(repeating: "\u{1B}[2J\u{1B}]0;owned\u{7}bad ", count: 25_000)
        let body = try JSONSerialization.data(withJSONObject: [
            "status": "error", "errorType": "bad_data", "error": text,
        ])
        try await HostileHTTPServer.with({ _ in .body(status: 400, body) }) { server in
            let error = await #expect(throws: PrometheusClient.QueryError.self) {
                try await PrometheusClient(baseURL: server.url).query("up")
            }
            let message = error?.message ?? ""
            #expect(
                message.hasPrefix("Prometheus answered HTTP 400, bad_data: \\u{1b}[2J\\u{1b}]0;owned\\u{7}bad"),
                "\(message.prefix(200))")
            #expect(message.utf8.count < 1_200, "cut: \(message.utf8.count) bytes")
            #expect(message.contains("more bytes cut]"))
            #expect(
                !message.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }, "no control character left")
        }
    }

    /// A gate measured as a rollout's step measures it: each sample asked of Prometheus by the
    /// rollout's metrics source (`PrometheusMetrics`), counted by the gate's tally, until it
    /// passes or fails; the step's inconclusive deadline has passed from sample `deadlineAfter` on.
    static func measure(_ gate: PromQLGate, at url: String, deadlineAfter: Int = .max) async -> GateVerdict {
        let metrics = PrometheusMetrics(prometheus: PrometheusClient(baseURL: url), judges: [:])
        var tally = GateTally(gate: gate, query: gate.query)
        var verdict = GateVerdict()
        while tally.verdict == .measuring && verdict.measurements.count < 100 {
            let sample = await metrics.sample(tally.query)
            verdict.measurements.append(
                tally.record(sample, at: Date(), deadlinePassed: verdict.measurements.count + 1 >= deadlineAfter))
        }
        verdict.passed = tally.verdict == .passed
        if case .failed(let reason) = tally.verdict { verdict.failure = reason }
        return verdict
    }

    struct GateVerdict {
        var passed = false
        var measurements: [GateMeasurement] = []
        var failure: String?
    }

    @Test func aGateMeasuringAHostileErrorRecordsItCutAndEscaped() async throws {
        let text = String(repeating: "\u{1B}[31mred ", count: 50_000)  // 700 KB of JSON
        let body = try JSONSerialization.data(withJSONObject: [
            "status": "error", "errorType": "execution", "error": text,
        ])
        try await HostileHTTPServer.with({ _ in .body(status: 422, body) }) { server in
            let gate = PromQLGate(
                name: "g", query: "up", min: nil, max: 1, interval: .seconds(0), count: 1, initialDelay: .seconds(0),
                failureLimit: 0,
                consecutiveErrorLimit: 1, onNoData: .fail)
            let verdict = await Self.measure(gate, at: server.url)
            #expect(!verdict.passed)
            #expect(verdict.measurements.count == 2)
            for measurement in verdict.measurements {
                let recorded = try #require(measurement.error)
                #expect(recorded.utf8.count < 1_200 && recorded.contains("more bytes cut]"), "\(recorded.prefix(100))")
                #expect(!recorded.contains("\u{1B}"))
            }
            #expect(verdict.failure?.contains("2 query errors in a row") == true)
            #expect(!(verdict.failure ?? "").contains("\u{1B}"))
        }
    }

    // MARK: Values that are not finite numbers

    @Test(arguments: [
        (-Double.infinity, MetricThreshold(metric: "m", max: 1)),
        (Double.infinity, MetricThreshold(metric: "m", min: 0.5)),
        (Double.nan, MetricThreshold(metric: "m", max: 1)), (Double.nan, MetricThreshold(metric: "m", min: 0)),
        (Double.infinity, MetricThreshold(metric: "m")),
        (-Double.infinity, MetricThreshold(metric: "m", min: -Double.greatestFiniteMagnitude)),
    ])
    func aValueThatIsNotFiniteIsNeverAdmitted(value: Double, threshold: MetricThreshold) {
        #expect(!threshold.admits(value))
    }

    @Test(arguments: [("-Inf", 1.0 as Double?, nil as Double?), ("+Inf", nil, 0.5), ("NaN", 1.0, nil)])
    func aGateMeasuringANonFiniteValueFails(value: String, max: Double?, min: Double?) async throws {
        try await HostileHTTPServer.with({ _ in .prometheusValue(value) }) { server in
            let gate = PromQLGate(
                name: "g", query: "up", min: min, max: max, interval: .seconds(0), count: 1, initialDelay: .seconds(0),
                failureLimit: 0,
                consecutiveErrorLimit: 0, onNoData: .fail)
            let verdict = await Self.measure(gate, at: server.url)
            #expect(!verdict.passed, "\(value) must not pass \(gate)")
            #expect(verdict.measurements.first?.outcome == "failure")
            if value != "NaN" {
                #expect(verdict.failure?.contains("not a finite number") == true, "\(verdict.failure ?? "")")
            }
        }
    }

    @Test func aNaNNeverPassesAGateEvenWhenNoDataWould() async throws {
        try await HostileHTTPServer.with({ _ in .prometheusValue("NaN") }) { server in
            let gate = PromQLGate(
                name: "g", query: "up", min: nil, max: 1, interval: PipelineDuration(milliseconds: 200), count: 1,
                initialDelay: .seconds(0),
                failureLimit: 0, consecutiveErrorLimit: 0, onNoData: .pass)
            let verdict = await Self.measure(gate, at: server.url, deadlineAfter: 3)
            #expect(!verdict.passed)
            #expect(
                verdict.measurements.allSatisfy { $0.outcome == "inconclusive" },
                "\(verdict.measurements.map(\.outcome))")
            #expect(verdict.failure?.contains("no data until the step's deadline") == true, "\(verdict.failure ?? "")")
        }
        // An empty result is an honest absence of data: onNoData: pass passes it.
        try await HostileHTTPServer.with({ _ in
            .json(#"{"status":"success","data":{"resultType":"vector","result":[]}}"#)
        }) { server in
            let gate = PromQLGate(
                name: "g", query: "up", min: nil, max: 1, interval: .seconds(0), count: 1, initialDelay: .seconds(0),
                failureLimit: 0,
                consecutiveErrorLimit: 0, onNoData: .pass)
            let verdict = await Self.measure(gate, at: server.url)
            #expect(verdict.passed)
        }
    }

    @Test func aJudgeMetricWhoseCountIsNotFiniteNeverPasses() async throws {
        // Whatever onNoData says of an honest absence of data, a count of +Inf measured nothing.
        var metric = JudgeTests.metric("errors", bad: .increase, effect: 0.01, absolute: true)
        metric.onNoData = .pass
        let spec = JudgeTests.spec([metric])
        try await HostileHTTPServer.with({ _ in .prometheusValue("+Inf") }) { server in
            let judge = StepJudge(
                spec: spec, prometheus: PrometheusClient(baseURL: server.url), target: "green", live: "blue")
            let read = await judge.read("green")
            #expect(!read.counts.keys.contains("errors"), "an infinite count is no count")
            #expect(read.errors["errors"]?.contains("not a finite count") == true, "\(read.errors)")
        }
        var failed = MetricJudgement(
            metric: "errors", classification: .noData, comparisons: [], rule: "", critical: false, weight: 1)
        failed.error = "the query failed: green: the query returned inf, not a finite count"
        #expect(JudgeRules(spec: spec).decide([failed], final: true).decision != .pass)
        let honest = MetricJudgement(
            metric: "errors", classification: .noData, comparisons: [], rule: "", critical: false, weight: 1)
        #expect(
            JudgeRules(spec: spec).decide([honest], final: true).decision == .pass,
            "onNoData: pass still passes an honest absence of data")
    }

    @Test func aNonFiniteGateValueIsRecordedAndRedactedWithoutLosingTheRecord() throws {
        let measurement = GateMeasurement(
            outcome: "failure", gate: "g", query: "q", value: -.infinity, condition: "<= 1",
            at: Date(timeIntervalSince1970: 0), error: "s3cret")
        let redacted = Redaction(values: ["s3cret"]).redacted(measurement)
        #expect(redacted.error == Redaction.placeholder, "redacted even though the value is -Inf")
        #expect(redacted.value == -.infinity)
    }

    // MARK: The Docker Engine API

    static func engine(_ server: HostileHTTPServer) throws -> DockerEngine {
        try DockerEngine(host: "tcp://127.0.0.1:\(server.port)")
    }

    @Test func anEndlessListOfContainersIsCutOffAsNoUsableAnswer() async throws {
        try await HostileHTTPServer.with({ _ in .endless(byte: UInt8(ascii: "[")) }) { server in
            let error = await #expect(throws: DockerError.self) {
                try await Self.engine(server).containers(labels: ["a": "b"])
            }
            #expect(error?.isUnreachable == true, "what runs cannot be known from it")
            #expect(error?.cause?.code == .answerTooLarge)
            #expect(
                error?.description.contains("larger than 4 MiB, the limit for a list of the Docker Engine API") == true,
                "\(error.map { "\($0)" } ?? "")")
        }
    }

    @Test func anEndlessObjectIsCutOffAtItsSmallerLimit() async throws {
        try await HostileHTTPServer.with({ _ in .endless(byte: UInt8(ascii: "{")) }) { server in
            let error = await #expect(throws: DockerError.self) { try await Self.engine(server).inspect("abc") }
            #expect(error?.description.contains("larger than 1 MiB") == true, "\(error.map { "\($0)" } ?? "")")
        }
    }

    @Test(arguments: [301, 302, 307])
    func aRedirectFromTheEngineIsReportedWithItsStatus(status: Int) async throws {
        let answer = HostileHTTPServer.Answer.body(
            status: status, contentType: "text/html", Data("moved".utf8), headers: ["Location: http://elsewhere/"])
        try await HostileHTTPServer.with({ _ in answer }) { server in
            let version = await #expect(throws: DockerError.self) { try await Self.engine(server).negotiated() }
            #expect(version?.status == status, "not 200: \(version.map { "\($0)" } ?? "")")
            #expect(version?.description.contains("redirect") == true)
            let list = await #expect(throws: DockerError.self) { try await Self.engine(server).containers(labels: [:]) }
            #expect(list?.status == status)
        }
    }

    @Test func notModifiedIsWhatStartingAStartedContainerAnswers() async throws {
        try await HostileHTTPServer.with({ _ in .body(status: 304, Data()) }) { server in
            try await Self.engine(server).start("abc")
            try await Self.engine(server).stop("abc")
            let other = await #expect(throws: DockerError.self) {
                try await Self.engine(server).kill("abc", signal: "HUP")
            }
            #expect(other?.status == 304)
        }
    }

    @Test func anEngineMessageFullOfEscapesIsEscapedAndCut() async throws {
        let message = String(repeating: "\u{1B}[2Jgone ", count: 10_000)
        let body = try JSONSerialization.data(withJSONObject: ["message": message])
        try await HostileHTTPServer.with({ _ in .body(status: 500, body) }) { server in
            let error = await #expect(throws: DockerError.self) { try await Self.engine(server).inspect("abc") }
            let text = error.map { "\($0)" } ?? ""
            #expect(!text.contains("\u{1B}") && text.contains("\\u{1b}[2Jgone"), "\(text.prefix(100))")
            #expect(text.utf8.count < 1_200 && text.contains("more bytes cut]"))
        }
    }

    // MARK: Receivers and probes

    @Test func aWebhookReceiverThatAnswersWithoutEndHasTheNotificationDeliveredOnce() async throws {
        try await HostileHTTPServer.with({ _ in .endless() }) { server in
            let warnings = LineCollector()
            let outbox = Outbox(
                destinations: [
                    Outbox.Destination(
                        name: "notify endless", timeout: .seconds(20), retries: 2, backoff: .milliseconds(10))
                ], redaction: .none,
                warn: { warnings.append($0) })
            try await outbox.delivering {
                outbox.send(
                    Outbox.Request(
                        method: "POST", url: server.url + "/hook", headers: [], body: Data("{}".utf8), what: "promoted"),
                    to: "notify endless")
            }
            #expect(server.paths == ["/hook"], "delivered once, not retried")
            #expect(warnings.lines.isEmpty, "\(warnings.lines)")
        }
    }

    // MARK: Text from outside

    @Test(arguments: [
        ("plain text", "plain text"), ("a\u{1B}[31mred", "a\\u{1b}[31mred"), ("bell\u{7}", "bell\\u{7}"),
        ("line\nbreak\ttab\r", "line\\nbreak\\ttab\\r"),
        ("c1\u{9B}31m", "c1\\u{9b}31m"), ("del\u{7F}", "del\\u{7f}"), ("rtl\u{202E}txt", "rtl\\u{202e}txt"),
        ("isolate\u{2066}x\u{2069}", "isolate\\u{2066}x\\u{2069}"),
        ("back\\slash", "back\\slash"), ("é ü 日本", "é ü 日本"),
    ])
    func controlCharactersAreWrittenOut(text: String, escaped: String) {
        #expect(OutsideText.escaped(text) == escaped)
        #expect(OutsideText.escaped(OutsideText.escaped(text)) == escaped, "escaping twice changes nothing")
    }

    /// A log's last lines for an error message (nginx's error log, a stage's or a colour's log):
    /// from a log of 4 GiB only its end is read, and a FIFO in its place gives nothing at once.
    @Test func theTailOfALogIsReadFromItsEndAndNeverFromAFIFO() throws {
        let folder = NSTemporaryDirectory() + "tail-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let log = folder + "/error.log"
        #expect(FileManager.default.createFile(atPath: log, contents: Data("first line\n".utf8)))
        let handle = try #require(FileHandle(forWritingAtPath: log))
        // A sparse hole of 4 GiB: reading it whole would not fit the test's memory bound.
        try handle.seek(toOffset: 4 << 30)
        try handle.write(contentsOf: Data("\nbind() failed\n\u{1B}[31mlast line\n".utf8))
        try handle.close()
        #expect(OutsideText.tail(ofFile: log, lines: 2) == "bind() failed\n\\u{1b}[31mlast line")

        let fifo = folder + "/fifo.log"
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(OutsideText.tail(ofFile: fifo) == "")
        #expect(OutsideText.tail(ofFile: folder + "/missing.log") == "")
    }

    @Test func linesMayBeKept() {
        #expect(OutsideText.escaped("a\nb\tc\r\u{1B}", lines: .kept) == "a\nb\tc\\r\\u{1b}")
    }

    @Test func longTextIsCutWithAMarkerOfHowMuch() {
        let text = String(repeating: "x", count: 10_485_760)
        let head = OutsideText.bounded(text, limit: 1_000)
        #expect(head == String(repeating: "x", count: 1_000) + "… [10,484,760 more bytes cut]")
        let tail = OutsideText.bounded("first\nsecond\nthird", limit: 12, lines: .kept, keeping: .tail)
        #expect(tail == "[6 earlier bytes cut] …second\nthird")
        #expect(OutsideText.bounded("short", limit: 1_000) == "short")
        // The bound is on what is kept, escapes included.
        let escapes = OutsideText.bounded(String(repeating: "\u{1B}", count: 1_000), limit: 60)
        #expect(escapes == String(repeating: "\\u{1b}", count: 10) + "… [990 more bytes cut]")
    }
}
