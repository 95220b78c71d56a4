import Foundation
import PipelineSchema
import StrictYAML
import TestSupport
import Testing

/// `traffic.shadow`: what it reads, and each mistake named with its file, line and path.
@Suite struct ShadowSpecTests {
    static let pipeline =
        PipelineValidationTests.header + PipelineValidationTests.train
        + PipelineValidationTests.deploy + "traffic:\n"

    @Test func aShadowStageIsRead() async throws {
        try await withTemporaryDirectory { folder in
            let path = folder + "/pipeline.yml"
            try write(
                Self.pipeline + """
                      shadow:
                        share: 10
                        duration: 90s
                        requests: 400
                        gates:
                          rbo: {min: 0.2}
                          overlap: {min: 0.1}
                          p95_latency_ratio: {max: 1.5}
                          errors: {max: 0.01}
                          coverage: {min: 0.5}
                          popularity: {max: 1.5}

                    """, to: path)
            let shadow = try #require(try PipelineLoader(environment: [:]).load(path).traffic?.shadow)
            #expect(shadow.share == 10 && shadow.duration == .seconds(90) && shadow.requests == 400)
            #expect(
                shadow.gates
                    == ShadowGates(
                        rboMin: 0.2, overlapMin: 0.1, p95LatencyRatioMax: 1.5, errorsMax: 0.01, coverageMin: 0.5,
                        popularityMax: 1.5))
        }
    }

    @Test func withOnlyRequestsTheStageWaitsTenMinutesAtMost() async throws {
        try await withTemporaryDirectory { folder in
            let path = folder + "/pipeline.yml"
            try write(Self.pipeline + "  shadow: {share: 5, requests: 100, gates: {rbo: {min: 0.3}}}\n", to: path)
            let shadow = try #require(try PipelineLoader(environment: [:]).load(path).traffic?.shadow)
            #expect(shadow.duration == .seconds(600) && shadow.minimumComparisons == 100)
        }
    }

    static let cases: [PipelineValidationTests.Case] = [
        .init(
            yaml: pipeline + "  shadow: {duration: 60s, gates: {rbo: {min: 0.2}}} # <-\n",
            message: "missing required key \"share\""),
        .init(
            yaml: pipeline + "  shadow: {share: 0, duration: 60s, gates: {rbo: {min: 0.2}}} # <-\n",
            message: "must be from 1 to 100, got 0"),
        .init(
            yaml: pipeline + "  shadow: {share: 10, gates: {rbo: {min: 0.2}}} # <-\n",
            message: "give how long the shadow stage runs (duration: 60s)"),
        .init(
            yaml: pipeline + "  shadow: {share: 10, duration: 60s} # <-\n", message: "missing required key \"gates\""),
        .init(
            yaml: pipeline + "  shadow: {share: 10, duration: 60s, gates: {}} # <-\n",
            message: "a shadow stage without gates decides nothing"),
        .init(
            yaml: pipeline + "  shadow:\n    share: 10\n    duration: 60s\n    gates:\n      rbo: {min: 1.5} # <-\n",
            message: "the mean rank-biased overlap is from 0 (disjoint) to 1 (the same lists), got 1.5"),
        .init(
            yaml: pipeline + "  shadow:\n    share: 10\n    duration: 60s\n    gates:\n      rbo: {max: 0.5} # <-\n",
            message: "unknown key \"max\""),
        .init(
            yaml: pipeline
                + "  shadow:\n    share: 10\n    duration: 60s\n    gates:\n      p95_latency_ratoi: {max: 2} # <-\n",
            message: "did you mean \"p95_latency_ratio\"?"),
        .init(
            yaml: pipeline + "  shadow:\n    share: 10\n    duration: 60s\n    gates:\n      errors: {max: 5} # <-\n",
            message: "the share of shadow requests that failed is from 0 to 1 (0.01: 1 %), got 5"),
        .init(
            yaml: pipeline
                + "  shadow:\n    share: 10\n    duration: 60s\n    gates:\n      coverage: {min: -0.5} # <-\n",
            message:
                "catalogue coverage over the live one's is a ratio from 0 to 100 (0.5: half as many distinct movies), got -0.5"
        ),
        .init(
            yaml: pipeline
                + "  shadow:\n    share: 10\n    duration: 60s\n    gates:\n      popularity: {max: 0} # <-\n",
            message: "popularity concentration (top-10 share) over the live one's is a ratio from 0.01 to 100"),
        .init(
            yaml: pipeline
                + "  shadow:\n    share: 10\n    duration: 60s\n    gates:\n      popularity: {min: 1} # <-\n",
            message: "unknown key \"min\""),
        .init(
            yaml: pipeline
                + "  shadow:\n    share: 10\n    duration: 60s\n    gates:\n      coverage: {min: lots} # <-\n",
            message: "traffic.shadow.gates.coverage.min"),
        .init(
            yaml: pipeline + "  shadow:\n    share: 10\n    duration: 500ms # <-\n    gates: {rbo: {min: 0.2}}\n",
            message: "the shadow stage runs 1s to 24h"),
        .init(
            yaml: pipeline + "  shadow:\n    share: 10\n    requests: 0 # <-\n    gates: {rbo: {min: 0.2}}\n",
            message: "traffic.shadow.requests"),
        .init(
            yaml: pipeline
                + "  shadow:\n    share: 10\n    duration: 60s\n    requets: 5 # <-\n    gates: {rbo: {min: 0.2}}\n",
            message: "did you mean \"requests\"?"),
    ]

    @Test(arguments: cases)
    func aMistakeIsNamedWithItsLine(_ testCase: PipelineValidationTests.Case) async throws {
        try await withTemporaryDirectory { folder in
            let path = folder + "/pipeline.yml"
            try write(testCase.yaml, to: path)
            let expectedLine =
                try #require(
                    testCase.yaml.split(separator: "\n", omittingEmptySubsequences: false).firstIndex {
                        $0.contains("# <-")
                    }) + 1
            let error = #expect(throws: PipelineValidationError.self) {
                try PipelineLoader(environment: [:]).load(path)
            }
            let issue = try #require(
                error?.issues.first { $0.message.contains(testCase.message) || $0.path.contains(testCase.message) },
                "\(String(describing: error))")
            #expect(issue.line == expectedLine, "\(issue)")
            #expect(issue.path.hasPrefix("traffic.shadow"), "\(issue)")
        }
    }
}
