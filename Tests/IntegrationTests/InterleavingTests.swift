import DeploymentRuntimes
import Foundation
import HTTPTransport
import Orchestrator
import RecEngine
import TestSupport
import Testing
import Traffic

/// Team-draft interleaving in nginx (Sources/Traffic/Resources/interleave.lua), for real: the draft
/// against a Python reference on fixed lists and seeds, and real nginx in front of two real
/// `recengine serve` colours that answer different lists, one of them stopped or gone.
@Suite(.serialized) struct InterleavingTests {
    /// The reference: team draft as Chapelle et al. give it, with the coin nginx uses (the parity
    /// of the first 32 bits of the MD5 of "SEED#N"), and a round whose two proposals are the same
    /// movie placing it for neither team ("0"). Reads `a|b|length|seed` lines, writes
    /// `merged|teams` lines.
    static let reference = #"""
        import hashlib, sys

        def coin(text):
            return int(hashlib.md5(text.encode()).hexdigest()[:8], 16) % 2

        def team_draft(a, b, length, seed):
            merged, teams, placed = [], [], set()
            next_a = next_b = picks_a = picks_b = flips = 0
            while len(merged) < length:
                while next_a < len(a) and a[next_a] in placed: next_a += 1
                while next_b < len(b) and b[next_b] in placed: next_b += 1
                if next_a >= len(a) or next_b >= len(b): break
                if picks_a == picks_b and a[next_a] == b[next_b]:
                    placed.add(a[next_a])
                    merged.append(a[next_a])
                    teams.append("0")
                    continue
                if picks_a != picks_b:
                    a_picks = picks_a < picks_b
                else:
                    a_picks = coin(f"{seed}#{flips}") == 0
                    flips += 1
                if a_picks:
                    item, picks_a = a[next_a], picks_a + 1
                    teams.append("1")
                else:
                    item, picks_b = b[next_b], picks_b + 1
                    teams.append("2")
                placed.add(item)
                merged.append(item)
            return merged, teams

        for line in open(sys.argv[1]).read().splitlines():
            a, b, length, seed = line.split("|", 3)
            merged, teams = team_draft([x for x in a.split(",") if x], [x for x in b.split(",") if x], int(length), seed)
            print(",".join(merged) + "|" + ",".join(teams))
        """#

    /// A location on the control socket that runs nginx's own `team_draft` on `a|b|length|seed`
    /// lines: only in this test's configuration.
    static let draftLocation = """
                location = /test/draft {
                    client_body_buffer_size 1m;
                    client_max_body_size 1m;
                    content_by_lua_block {
                        ngx.req.read_body()
                        local function list(text)
                            local items = {}
                            for item in text:gmatch("[^,]+") do
                                items[#items + 1] = item
                            end
                            return items
                        end
                        local out = {}
                        for line in ngx.req.get_body_data():gmatch("[^\\n]+") do
                            local a, b, length, seed = line:match("^([^|]*)|([^|]*)|(%d+)|(.*)$")
                            local merged, teams = orchestrate_interleave.team_draft(list(a), list(b), tonumber(length), seed)
                            out[#out + 1] = table.concat(merged, ",") .. "|" .. table.concat(teams, ",")
                        end
                        ngx.print(table.concat(out, "\\n") .. "\\n")
                    }
                }


        """

    /// Runs the Python reference on `cases` (`a|b|length|seed` lines).
    static func referenceDrafts(_ cases: [String], in folder: String) async throws -> [String] {
        try reference.write(toFile: folder + "/team_draft.py", atomically: true, encoding: .utf8)
        try cases.joined(separator: "\n").write(toFile: folder + "/cases.txt", atomically: true, encoding: .utf8)
        let python = try await runCommand(
            "/usr/bin/env", ["python3", folder + "/team_draft.py", folder + "/cases.txt"])
        try #require(python.status == 0, "python3 failed: \(python.stderr)")
        return python.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }

    /// Two colours of different models (other seeds and factors: other lists) behind nginx.
    static func withTwoColours(
        _ body: (Playground, _ blue: ColorInstance, _ green: ColorInstance) async throws -> Void
    ) async throws {
        let playground = try Playground()
        do {
            try playground.writeRatings()
            var instances: [ColorInstance] = []
            for (color, seed, factors) in [("blue", "1", "8"), ("green", "2", "4")] {
                let model = playground.folder + "/model-\(color)"
                let train = try await runCommand(
                    Playground.recengine,
                    [
                        "train", "--ratings", playground.folder + "/ratings.csv", "--out", model, "--factors", factors,
                        "--epochs", "5", "--seed", seed,
                    ])
                try #require(train.status == 0, "\(train.stderr)")
                instances.append(
                    try await playground.runtime.deploy(color: color, modelDirectory: model, timeout: .seconds(30)))
            }
            try await body(playground, instances[0], instances[1])
        } catch {
            await playground.stop()
            throw error
        }
        await playground.stop()
    }

    /// A JSON answer's fields.
    static func json(_ data: Data) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
    }

    /// A colour's own list, asked as nginx's subrequest does (left out of the colour's counts).
    static func list(of instance: ColorInstance, user: String, k: Int) async throws -> [String] {
        let answer = try await HTTPClient.get(
            "http://\(instance.address)/recommend/\(user)?k=\(k)", limit: .forTests,
            headers: ["Accept: application/json", "X-Orchestrate-Interleaved: 1"])
        return json(answer.body)["items"] as? [String] ?? []
    }

    /// The sum of a colour's series of `name` with every one of `labels` (its own /metrics).
    static func metric(_ instance: ColorInstance, _ name: String, _ labels: [String] = []) async throws -> Double {
        let text = String(
            decoding: try await HTTPClient.get("http://\(instance.address)/metrics", limit: .forTests).body,
            as: UTF8.self)
        return text.split(separator: "\n").filter { line in
            line.hasPrefix(name + "{") && labels.allSatisfy { line.contains($0) }
        }
        .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
    }

    static func interleaving(
        _ blue: ColorInstance, _ green: ColorInstance, blueWeight: Int = 100, percent: Int, experiment: String = "e1"
    ) -> TrafficSplit {
        TrafficSplit(
            mode: .sticky,
            backends: [
                .init(color: "blue", address: blue.address, weight: blueWeight),
                .init(color: "green", address: green.address, weight: 100 - blueWeight),
            ],
            interleave: .init(percent: percent, window: 600, seed: "s1", experiment: experiment))
    }

    @Test func sampledUsersSeeBothColoursMergedByTheDraftAndTheirEventsCreditTheTeamThatPlacedTheMovie() async throws {
        try await Self.withTwoColours { playground, blue, green in
            try await playground.nginx.apply(Self.interleaving(blue, green, percent: 100))
            let base = "http://127.0.0.1:\(playground.nginxPort)"
            var cases: [String] = []
            var answers: [String] = []
            var teamsOf: [String: [String: String]] = [:]
            var differ = 0
            for number in 0..<40 {
                let user = "u\(number)"
                // The plain text answer is interleaved too (asked first: a movie placed again is
                // credited to the team of its latest placement, the JSON answer's below).
                if number == 0 {
                    let text = try await HTTPClient.get("\(base)/recommend/\(user)?k=6", limit: .forTests)
                    #expect(String(decoding: text.body, as: UTF8.self).split(separator: ",").count == 6)
                }
                let answer = try await HTTPClient.get(
                    "\(base)/recommend/\(user)?k=6", limit: .forTests, headers: ["Accept: application/json"])
                #expect(answer.status == 200)
                let body = Self.json(answer.body)
                #expect(body["color"] as? String == "interleaved", "\(String(decoding: answer.body, as: UTF8.self))")
                let items = body["items"] as? [String] ?? []
                let draft = body["interleaving"] as? [String: Any] ?? [:]
                let teams = draft["teams"] as? [String] ?? []
                let seed = draft["seed"] as? String ?? ""
                #expect(items.count == 6 && teams.count == 6 && seed.hasPrefix(user + ":"))
                let a = try await Self.list(of: blue, user: user, k: 6)
                let b = try await Self.list(of: green, user: user, k: 6)
                if a != b { differ += 1 }
                cases.append("\(a.joined(separator: ","))|\(b.joined(separator: ","))|6|\(seed)")
                answers.append(
                    items.joined(separator: ",") + "|"
                        + teams.map { ["neutral": "0", "blue": "1", "green": "2"][$0] ?? "?" }.joined(separator: ","))
                teamsOf[user] = Dictionary(zip(items, teams), uniquingKeysWith: { first, _ in first })
            }
            #expect(differ > 20, "the two models answer different lists for most users (\(differ) of 40)")
            // Every merged list is the reference's draft of the colours' lists with the answer's seed.
            let expected = try await Self.referenceDrafts(cases, in: playground.folder)
            let wrong = answers.indices.filter { answers[$0] != expected[$0] }
            #expect(
                wrong.isEmpty,
                "\(wrong.prefix(3).map { "\(cases[$0]): nginx \(answers[$0]), reference \(expected[$0])" })")

            // Events: per user, conversions of placed movies (and some that credit nothing), with
            // the reference's counts computed here from the teams nginx answered.
            var credits: [String: [String: Int]] = [:]
            for number in 0..<40 {
                let user = "u\(number)"
                let placed = teamsOf[user] ?? [:]
                let blueMovies = placed.filter { $0.value == "blue" }.map(\.key).sorted()
                let greenMovies = placed.filter { $0.value == "green" }.map(\.key).sorted()
                // Placed for neither team (both proposed it at once): its conversion credits nobody.
                let neutralMovies = placed.filter { $0.value == "neutral" }.map(\.key).sorted()
                var events: [[String: Any]] = []
                func convert(_ movie: String?, kind: String = "watch", rating: Int? = nil, credited: String?) {
                    guard let movie else { return }
                    var event: [String: Any] = ["movie": movie, "kind": kind]
                    if let rating { event["rating"] = rating }
                    events.append(event)
                    if let credited { credits[user, default: [:]][credited, default: 0] += 1 }
                }
                switch number % 4 {
                case 0:  // blue wins
                    convert(blueMovies.first, credited: "blue")
                case 1:  // green wins 2 to 1; the same movie watched again credits once
                    convert(greenMovies.first, credited: "green")
                    convert(greenMovies.first, credited: nil)
                    convert(greenMovies.dropFirst().first, kind: "rate", rating: 5, credited: "green")
                    convert(blueMovies.first, kind: "rate", rating: 4, credited: "blue")
                case 2:  // a tie, one each
                    convert(blueMovies.first, credited: "blue")
                    convert(greenMovies.first, credited: "green")
                default:  // nothing credited: a low rating, a movie never placed, one of neither team
                    convert(blueMovies.first, kind: "rate", rating: 3, credited: nil)
                    convert("never-placed", credited: nil)
                    convert(neutralMovies.first, credited: nil)
                }
                let payload = try JSONSerialization.data(withJSONObject: ["events": events])
                let sent = try await HTTPClient.post(
                    "\(base)/events/\(user)", body: payload, limit: .forTests,
                    headers: ["Content-Type: application/json"])
                #expect(sent.status == 200, "\(String(decoding: sent.body, as: UTF8.self))")
                #expect(
                    Self.json(sent.body)["conversions"] as? Int == 0,
                    "the colour left the interleaved user's events to nginx")
            }
            let counts = try #require(try await playground.nginx.interleaving())
            func preferring(_ color: String) -> Int {
                credits.values.filter { tally in
                    (tally[color] ?? 0) > tally.filter { $0.key != color }.values.reduce(0, +)
                }.count
            }
            #expect(counts.experiment == "e1" && counts.colors == ["blue", "green"])
            #expect(counts.users == 40 && counts.merged == 41)
            #expect(counts.credits["blue"] == credits.values.map { $0["blue"] ?? 0 }.reduce(0, +))
            #expect(counts.credits["green"] == credits.values.map { $0["green"] ?? 0 }.reduce(0, +))
            #expect(
                counts.prefer["blue"] == preferring("blue") && counts.prefer["green"] == preferring("green"),
                "\(counts)")
            #expect(counts.ties == credits.values.filter { $0["blue"] == $0["green"] }.count, "\(counts)")
            // Ten users each meant to prefer blue, green, neither: a user whose list placed too few
            // movies for a team (some for neither) ends elsewhere, as the reference above says.
            #expect(
                (counts.prefer["blue"] ?? 0) >= 5 && (counts.prefer["green"] ?? 0) >= 5 && counts.ties >= 5,
                "\(counts)")

            // Neither colour counted the interleaved users' lists or events as its own engagement.
            for instance in [blue, green] {
                #expect(
                    try await Self.metric(instance, "recengine_recommendations_served_total") == 0, "\(instance.color)")
                #expect(
                    try await Self.metric(instance, "recengine_recommendation_answers_total", [#"kind="interleaved""#])
                        > 0)
            }
            #expect(try await Self.metric(blue, "recengine_conversions_total") == 0)
            #expect(
                try await Self.metric(blue, "recengine_events_total", [#"outcome="interleaved""#]) > 0,
                "the events reached the sticky colour")

            // A new experiment (the next step) starts from nothing.
            try await playground.nginx.apply(Self.interleaving(blue, green, percent: 100, experiment: "e2"))
            _ = try await HTTPClient.get("\(base)/recommend/u1?k=6", limit: .forTests)
            let next = try #require(try await playground.nginx.interleaving())
            #expect(next.experiment == "e2" && next.users == 1 && next.credited == 0)
        }
    }

    @Test func theUsersOutsideTheSampleKeepTheStickySplitAndASlowOrDeadColourFailsNoRequest() async throws {
        try await Self.withTwoColours { playground, blue, green in
            let base = "http://127.0.0.1:\(playground.nginxPort)"
            try await playground.nginx.apply(Self.interleaving(blue, green, blueWeight: 75, percent: 30))
            func colors(_ users: [Int], timeout: Duration = .seconds(10)) async throws -> [String: String] {
                var seen: [String: String] = [:]
                for number in users {
                    let answer = try await HTTPClient.get(
                        "\(base)/recommend/u\(number)?k=5", limit: .forTests, timeout: timeout,
                        headers: ["Accept: application/json"])
                    #expect(answer.status == 200, "u\(number): \(answer.status)")
                    seen["u\(number)"] = Self.json(answer.body)["color"] as? String ?? "?"
                }
                return seen
            }
            let healthy = try await colors(Array(0..<200))
            let sampled = Set(healthy.filter { $0.value == "interleaved" }.keys)
            #expect(sampled.count > 30 && sampled.count < 90, "about 30 % of 200 users sampled: \(sampled.count)")
            let sticky = healthy.filter { $0.value != "interleaved" }
            #expect(
                Set(sticky.values) == ["blue", "green"],
                "the others are split between the colours: \(Set(sticky.values))")
            #expect(sticky.filter { $0.value == "green" }.count < sticky.count / 2, "25 % of them on green")

            // Green stopped (SIGSTOP: connections accepted, never answered): sampled users get
            // blue's list alone after the subrequest's timeout. (Green's own sticky users would
            // wait for nginx's proxy timeout, as without interleaving: not asked here.)
            let greenPID = try #require(green.pid)
            let asked = (0..<80).filter { sampled.contains("u\($0)") || healthy["u\($0)"] == "blue" }
            do {
                try await stopProcess(greenPID)
                let slow = try await colors(asked, timeout: .seconds(30))
                #expect(
                    slow.values.allSatisfy { $0 == "blue" },
                    "the live colour's list when green is slow: \(slow.filter { $0.value != "blue" })")
            } catch {
                kill(greenPID, SIGCONT)
                throw error
            }
            kill(greenPID, SIGCONT)
            let fallbackWhileSlow = try #require(try await playground.nginx.interleaving()).fallback["blue"] ?? 0
            #expect(
                fallbackWhileSlow == asked.filter { sampled.contains("u\($0)") }.count,
                "each sampled user's request answered by blue alone")

            // Green gone (its port refuses): the same without waiting; the sticky users of green
            // go to blue, as the balancer always did.
            try await playground.runtime.stop(color: "green")
            let dead = try await colors(Array(0..<200))
            for user in sampled { #expect(dead[user] == "blue", "\(user)") }
            #expect(dead.values.allSatisfy { $0 == "blue" })
        }
    }

    @Test func theTeamDraftInNginxMatchesTheReferenceOnKnownListsAndSeeds() async throws {
        let folder = "/tmp/i22il-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let template = NginxConfig.defaultTemplate.replacingOccurrences(
            of: "        location = /interleaving {", with: Self.draftLocation + "        location = /interleaving {")
        let nginx = NginxController(
            config: NginxConfig(template: template, listenPort: try freePort(), runtimeFolder: folder + "/nginx"),
            configPath: folder + "/nginx.conf")
        do {
            try await nginx.apply(
                TrafficSplit(mode: .sticky, backends: [.init(color: "blue", address: "127.0.0.1:1", weight: 100)]))
            // Known lists, each checked by hand: the coins of "u7:abc#0", "#1", "#2" are 1, 0, 1
            // (b, a, b pick first), those of "u1:r1" all 1.
            let known: [(input: String, merged: String)] = [
                // b places m3; a its best unplaced m1; the coin gives a m2; b skips m1 (placed) for m5.
                ("m1,m2,m3,m4|m3,m1,m5,m6|4|u7:abc", "m3,m1,m2,m5|2,1,1,2"),
                // The same list on both sides: one copy of each movie, each proposed by both
                // teams at once, so placed for neither (0) and credited to nobody.
                ("m1,m2,m3|m1,m2,m3|3|u7:abc", "m1,m2,m3|0,0,0"),
                // Lists that agree at some rounds: m1 and m3 for neither team; the round between
                // them flips the first coin (b picks m5 first).
                ("m1,m2,m3,m4|m1,m5,m3,m4|4|u7:abc", "m1,m5,m2,m3|0,2,1,0"),
                ("a,b,c,d|e,f,g,h|4|u1:r1", "e,a,f,b|2,1,2,1"),
                // The draft ends when a list has nothing left to place (Chapelle et al.): a for
                // neither team, b picks c first, a picks b, then a has nothing left.
                ("a,b|a,c,d,e|5|u1:r1", "a,c,b|0,2,1"),
                // An empty list interleaves nothing.
                ("|a,b|3|u1:r1", "|"),
                // A list that repeats a movie places it once: b places z, a x, the coin gives a y;
                // then a has nothing left to place, so the draft ends before b's w.
                ("x,x,y|z,x,w|4|u7:abc", "z,x,y|2,1,1"),
            ]
            var generator = SeededGenerator(seed: 22)
            var cases = known.map(\.input)
            for number in 0..<300 {
                func list() -> String {
                    (0..<generator.nextIndex(below: 13)).map { _ in "m\(generator.nextIndex(below: 30))" }.joined(
                        separator: ",")
                }
                cases.append(
                    "\(list())|\(list())|\(generator.nextIndex(below: 16))|u\(number):\(String(generator.nextIndex(below: 1 << 30), radix: 16))"
                )
            }
            let answer = try await HTTPClient.send(
                HTTPClient.Request(
                    method: "POST", url: "http://nginx/test/draft",
                    body: .data(Data((cases.joined(separator: "\n") + "\n").utf8)), limit: .forTests,
                    unixSocket: nginx.config.controlSocket))
            try #require(answer.status == 200, "\(String(decoding: answer.body, as: UTF8.self))")
            let drafts = String(decoding: answer.body, as: UTF8.self).split(
                separator: "\n", omittingEmptySubsequences: false
            ).dropLast().map(String.init)
            let expected = try await Self.referenceDrafts(cases, in: folder)
            try #require(drafts.count == cases.count && expected.count == cases.count)
            for (index, known) in known.enumerated() {
                #expect(drafts[index] == known.merged, "nginx, \(known.input)")
                #expect(expected[index] == known.merged, "the reference, \(known.input)")
            }
            let differing = cases.indices.filter { drafts[$0] != expected[$0] }
            #expect(
                differing.isEmpty,
                "\(differing.prefix(5).map { "\(cases[$0]): nginx \(drafts[$0]), reference \(expected[$0])" })")
            // Both teams lead about equally often over the random cases: the coin is fair.
            let led = drafts.filter { !$0.hasPrefix("|") }
            let bFirst = led.filter { $0.split(separator: "|").last?.hasPrefix("2") == true }.count
            #expect(
                Double(bFirst) > 0.35 * Double(led.count) && Double(bFirst) < 0.65 * Double(led.count),
                "\(bFirst) of \(led.count) drafts led by b")
        } catch {
            await nginx.stop()
            try? FileManager.default.removeItem(atPath: folder)
            throw error
        }
        await nginx.stop()
        try? FileManager.default.removeItem(atPath: folder)
    }
}
