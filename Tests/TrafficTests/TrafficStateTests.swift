import Foundation
import Testing

@testable import Traffic

@Suite struct TrafficStateTests {
    static func split(_ mode: TrafficSplit.Mode = .sticky, blue: Int, green: Int) -> TrafficSplit {
        TrafficSplit(
            mode: mode,
            backends: [
                .init(color: "blue", address: "127.0.0.1:9001", weight: blue),
                .init(color: "green", address: "127.0.0.1:9002", weight: green),
            ])
    }

    @Test func theLineFormatHasOneFactPerLine() throws {
        let text = try TrafficState(generation: 7, split: Self.split(blue: 75, green: 25)).text()
        #expect(text == "generation 7\nmode sticky\nbackend blue 127.0.0.1:9001 75\nbackend green 127.0.0.1:9002 25\n")
    }

    @Test(arguments: [
        TrafficState(generation: 1, split: split(blue: 75, green: 25)),
        TrafficState(generation: 2, split: split(.weighted, blue: 10, green: 90)),
        TrafficState(generation: 3, split: split(blue: 0, green: 100)),
        TrafficState(
            generation: 999_999_999,
            split: TrafficSplit(
                mode: .sticky, backends: [.init(color: "c_1-x", address: "10.0.0.255:65535", weight: 100)])),
        TrafficState(
            generation: 5,
            split: TrafficSplit(
                mode: .sticky,
                backends: [
                    .init(
                        color: "blue", addresses: ["10.0.0.11:18081", "10.0.0.12:18081", "10.0.0.13:18081"], weight: 50),
                    .init(color: "green", addresses: ["10.0.0.12:18082"], weight: 50),
                ])),
    ])
    func theLineFormatReadsBackWhatWasWritten(state: TrafficState) throws {
        #expect(try TrafficState(parsing: state.text()) == state)
    }

    @Test func anInterleavingSplitHasItsOwnLineAndReadsBack() throws {
        var split = Self.split(blue: 100, green: 0)
        split.interleave = .init(percent: 20, window: 600, seed: "rel-1", experiment: "rel-1-w0")
        let state = TrafficState(generation: 3, split: split)
        #expect(
            try state.text()
                == "generation 3\nmode sticky\nbackend blue 127.0.0.1:9001 100\nbackend green 127.0.0.1:9002 0\ninterleave 20 600 rel-1 rel-1-w0\n"
        )
        #expect(try TrafficState(parsing: state.text()) == state)
        let counts = try #require(
            try InterleavingCounts(
                parsing:
                    "experiment e1\ncolour blue\ncolour green\nusers 9\nmerged 30\ncredited 7\nties 1\nfull 0\nprefer blue 2\nprefer green 4\n"
                    + "credits blue 2\ncredits green 5\nfallback blue 0\nfallback green 3\n"))
        #expect(
            counts.prefer == ["blue": 2, "green": 4] && counts.ties == 1 && counts.fallback["green"] == 3
                && counts.colors == ["blue", "green"])
        #expect(try InterleavingCounts(parsing: "experiment none\n") == nil, "no experiment: no counts")
        #expect(throws: TrafficError.self) {
            try InterleavingCounts(parsing: "experiment e1\ncolour blue\ncolour green\nusers -1\n")
        }
    }

    @Test(arguments: [
        TrafficSplit.Interleave(percent: 0, window: 600, seed: "s", experiment: "e"),
        TrafficSplit.Interleave(percent: 101, window: 600, seed: "s", experiment: "e"),
        TrafficSplit.Interleave(percent: 10, window: 0, seed: "s", experiment: "e"),
        TrafficSplit.Interleave(percent: 10, window: 600, seed: "s e", experiment: "e"),
        TrafficSplit.Interleave(percent: 10, window: 600, seed: "s", experiment: "e\nbackend x 1.2.3.4:5 100"),
        TrafficSplit.Interleave(percent: 10, window: 600, seed: "", experiment: "e"),
    ])
    func anInterleavingNginxWouldRefuseIsRefusedFirst(interleave: TrafficSplit.Interleave) {
        var split = Self.split(blue: 100, green: 0)
        split.interleave = interleave
        #expect(throws: TrafficError.self) { try TrafficState(generation: 1, split: split).text() }
    }

    @Test func anInterleavingSplitHasTwoColours() {
        let split = TrafficSplit(
            mode: .sticky, backends: [.init(color: "blue", address: "127.0.0.1:1", weight: 100)],
            interleave: .init(percent: 10, window: 600, seed: "s", experiment: "e"))
        #expect(throws: TrafficError.self) { try split.validate() }
    }

    @Test func aColourWithSeveralAddressesIsOneLineWithCommas() throws {
        let split = TrafficSplit(
            mode: .weighted,
            backends: [.init(color: "blue", addresses: ["10.0.0.11:8081", "10.0.0.12:8081"], weight: 100)])
        #expect(
            try TrafficState(generation: 2, split: split).text()
                == "generation 2\nmode weighted\nbackend blue 10.0.0.11:8081,10.0.0.12:8081 100\n")
        #expect(throws: TrafficError.self) {
            try TrafficState(parsing: "generation 2\nmode sticky\nbackend blue 10.0.0.11:8081,,10.0.0.12:8081 100\n")
        }
    }

    @Test func aStateFileWrittenWithOneAddressPerColourIsStillRead() throws {
        let old = #"{"mode":"sticky","backends":[{"color":"blue","address":"127.0.0.1:9001","weight":100}]}"#
        let split = try JSONDecoder().decode(TrafficSplit.self, from: Data(old.utf8))
        #expect(split.backends[0].addresses == ["127.0.0.1:9001"])
    }

    @Test func nginxsAnswerStartsWithTheConfigurationItRuns() throws {
        let answer = "config 0123456789abcdef\ngeneration 4\nmode weighted\nbackend green 127.0.0.1:9002 100\n"
        let expected = TrafficSplit(
            mode: .weighted, backends: [.init(color: "green", address: "127.0.0.1:9002", weight: 100)])
        #expect(try TrafficState(parsing: answer) == TrafficState(generation: 4, split: expected))
    }

    @Test(arguments: [
        TrafficSplit(mode: .sticky, backends: [.init(color: "blue; evil", address: "127.0.0.1:1", weight: 100)]),
        TrafficSplit(
            mode: .sticky, backends: [.init(color: "blue\nbackend x 1.2.3.4:5", address: "127.0.0.1:1", weight: 100)]),
        TrafficSplit(
            mode: .sticky, backends: [.init(color: "blue", address: "127.0.0.1:1; include /etc/passwd", weight: 100)]),
        TrafficSplit(mode: .sticky, backends: [.init(color: "blue", address: "127.0.0.1:1 100\nbackend", weight: 100)]),
        TrafficSplit(mode: .sticky, backends: [.init(color: "blue", address: "host}:80", weight: 100)]),
        TrafficSplit(mode: .sticky, backends: [.init(color: "blue", address: "127.0.0.1:70000", weight: 100)]),
        TrafficSplit(mode: .sticky, backends: [.init(color: "blue", address: "127.0.0.1:+80", weight: 100)]),
        TrafficSplit(mode: .sticky, backends: [.init(color: "blue", address: "127.0.0.1:1", weight: 60)]),
        TrafficSplit(mode: .sticky, backends: [.init(color: "blue", address: "127.0.0.1:1", weight: 0)]),
        TrafficSplit(
            mode: .sticky,
            backends: [
                .init(color: "blue", address: "127.0.0.1:1", weight: 101),
                .init(color: "green", address: "127.0.0.1:2", weight: -1),
            ]),
        TrafficSplit(
            mode: .sticky,
            backends: [
                .init(color: "blue", address: "127.0.0.1:1", weight: 50),
                .init(color: "blue", address: "127.0.0.1:2", weight: 50),
            ]),
        TrafficSplit(mode: .sticky, backends: []),
        TrafficSplit(mode: .sticky, backends: [.init(color: "blue", addresses: [], weight: 100)]),
        TrafficSplit(
            mode: .sticky,
            backends: [.init(color: "blue", addresses: ["127.0.0.1:1", "127.0.0.1:2 100\nbackend"], weight: 100)]),
        TrafficSplit(
            mode: .sticky, backends: [.init(color: "blue", addresses: ["127.0.0.1:1,127.0.0.1:2"], weight: 100)]),
        TrafficSplit(
            mode: .sticky, backends: [.init(color: "blue", addresses: (1...33).map { "10.0.0.\($0):80" }, weight: 100)]),
        // A name is valid in a split but nginx's balancer takes addresses: the controller resolves it first.
        TrafficSplit(mode: .sticky, backends: [.init(color: "blue", address: "localhost:8080", weight: 100)]),
    ])
    func splitsThatCouldInjectLinesOrSendTrafficNowhereAreNeverWritten(split: TrafficSplit) {
        #expect(throws: TrafficError.self) { try TrafficState(generation: 1, split: split).text() }
    }

    @Test(arguments: [
        "",
        "mode sticky\nbackend blue 127.0.0.1:1 100\n",
        "generation 1\nbackend blue 127.0.0.1:1 100\n",
        "generation 0\nmode sticky\nbackend blue 127.0.0.1:1 100\n",
        "generation -1\nmode sticky\nbackend blue 127.0.0.1:1 100\n",
        "generation 1\ngeneration 2\nmode sticky\nbackend blue 127.0.0.1:1 100\n",
        "generation 1\nmode random\nbackend blue 127.0.0.1:1 100\n",
        "generation 1\nmode sticky\nbackend blue 127.0.0.1:1 100 extra\n",
        "generation 1\nmode sticky\nbackend blue 127.0.0.1:1 1e2\n",
        "generation 1\nmode sticky\nbackend blue 127.0.0.1:1 100\nweight green 5\n",
        "generation 1\nmode  sticky\nbackend blue 127.0.0.1:1 100\n",
        "generation 1\nmode sticky\nbackend blue 256.0.0.1:1 100\n",
    ])
    func malformedTextIsRefused(text: String) {
        #expect(throws: TrafficError.self) { try TrafficState(parsing: text) }
    }

    @Test func hostNamesAreResolvedToAddressesForTheBalancer() throws {
        let split = TrafficSplit(
            mode: .sticky,
            backends: [
                .init(color: "blue", address: "localhost:8080", weight: 100),
                .init(color: "green", address: "10.1.2.3:9", weight: 0),
            ])
        let resolved = try NginxController.resolvingHostNames(split)
        #expect(resolved.backends.map(\.address) == ["127.0.0.1:8080", "10.1.2.3:9"])
        #expect(throws: TrafficError.self) {
            try NginxController.resolvingHostNames(
                TrafficSplit(
                    mode: .sticky, backends: [.init(color: "blue", address: "no-such-host.invalid:80", weight: 100)]))
        }
    }

    @Test func theStateFileIsReplacedWholeWithNoTemporaryFileLeft() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("state-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/traffic.state"
        try NginxController.writeAtomically("generation 1\n", to: path)
        try NginxController.writeAtomically("generation 2\n", to: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "generation 2\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["traffic.state"])
        #expect(throws: TrafficError.self) { try NginxController.writeAtomically("x", to: path + "/under-a-file") }
    }
}
