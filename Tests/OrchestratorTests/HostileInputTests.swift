import DurableFiles
import EngineAPI
import Foundation
import Orchestrator
import OrchestratorSupport
import PipelineSchema
import Provenance
import StrictYAML
import Testing

/// Pipeline files and `--set` values written to hurt: each is refused at once with a message
/// that says where and what, never a trap, a hang, or a value leaked into a record.
@Suite struct HostileInputTests {
    static let header = "version: 1\nname: demo\n"
    static let stage = "stages:\n  - name: a\n    run: [\"true\"]\n"

    static func load(
        _ yaml: String, overrides: [String] = [], environment: [String: String] = [:], in folder: String
    ) throws -> Pipeline {
        let path = folder + "/p.yml"
        try write(yaml, to: path)
        return try PipelineLoader(environment: environment).load(path, overrides: overrides)
    }

    static func issues(_ yaml: String, overrides: [String] = [], in folder: String) -> PipelineValidationError? {
        #expect(throws: PipelineValidationError.self) { try load(yaml, overrides: overrides, in: folder) }
    }

    // MARK: Unbounded work

    @Test func aFileOverOneMebibyteIsRefusedBeforeParsing() async throws {
        try await withTemporaryDirectory { folder in
            let line = "unknown_key: value\n"
            let text = Self.header + String(repeating: line, count: InputLimits.maxFileBytes / line.utf8.count + 1)
            let error = #expect(throws: OrchestratorError.self) { try Self.load(text, in: folder) }
            #expect(error?.code == .invalidInput)
            #expect(
                error?.message.contains("is \(text.utf8.count) bytes; a pipeline file is at most 1048576 bytes")
                    == true, "\(String(describing: error))")
        }
    }

    @Test func specialFilesAreNamedNotOpened() async throws {
        try await withTemporaryDirectory { folder in
            let fifo = folder + "/fifo.yml"
            #expect(mkfifo(fifo, 0o600) == 0)
            for (path, kind) in [
                (fifo, "a FIFO (named pipe)"), ("/dev/zero", "a character device"), (folder, "a folder"),
            ] {
                let error = #expect(throws: OrchestratorError.self) { try PipelineLoader(environment: [:]).load(path) }
                #expect(error?.message == "the pipeline \(path) is \(kind), not a file")
                #expect(error?.code.exitCode == 2)
            }
        }
    }

    @Test func anAliasBombInTheFileIsRefusedQuickly() async throws {
        try await withTemporaryDirectory { folder in
            var lines = [Self.header + "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
            for level in 1...9 {
                lines.append(
                    "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ")
                        + "]")
            }
            lines.append("stages: *a9")
            let start = ContinuousClock.now
            let error = Self.issues(lines.joined(separator: "\n"), in: folder)
            #expect(ContinuousClock.now - start < .seconds(10))
            #expect(
                error?.issues.first?.message.contains("expands to more than 100000 values") == true,
                "\(String(describing: error))")
        }
    }

    @Test func anAliasBombThroughSetIsRefusedQuickly() async throws {
        try await withTemporaryDirectory { folder in
            var parts = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
            for level in 1...8 {
                parts.append(
                    "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ")
                        + "]")
            }
            let start = ContinuousClock.now
            let error = Self.issues(
                Self.header + Self.stage, overrides: ["hooks={\(parts.joined(separator: ", "))}"], in: folder)
            #expect(ContinuousClock.now - start < .seconds(10))
            let issue = try #require(error?.issues.first)
            #expect(issue.file == "--set")
            #expect(issue.message.contains("expands to more than 100000 values"))
        }
    }

    @Test func aSetKeyTooDeepIsRefusedNotRecursedInto() async throws {
        try await withTemporaryDirectory { folder in
            let key = Array(repeating: "a", count: 20_000).joined(separator: ".")
            let error = try #require(Self.issues(Self.header + Self.stage, overrides: ["\(key)=1"], in: folder))
            #expect(
                error.issues.first?.message == "the key has 20000 segments; a pipeline's values lie at most 32 deep")
            #expect(error.issues.first?.path.count ?? .max < 200, "the key is cut in the message")
        }
    }

    @Test func problemsAreCappedInTheReport() async throws {
        try await withTemporaryDirectory { folder in
            let unknown = (0..<120).map { "unknown\($0): x\n" }.joined()
            let error = try #require(Self.issues(Self.header + Self.stage + unknown, in: folder))
            #expect(error.count == 120)
            let lines = error.description.split(separator: "\n")
            #expect(lines.first == "the pipeline has 120 problems:")
            #expect(lines.count == 1 + InputLimits.maxReportedIssues + 1)
            #expect(lines.last == "  … and 70 more problems")
        }
    }

    @Test func echoedValuesAreCutAndEscaped() async throws {
        try await withTemporaryDirectory { folder in
            let long = String(repeating: "x", count: 500) + "END"
            let error = try #require(Self.issues("version: 1\nname: \"\(long)\\e[31m\"\n" + Self.stage, in: folder))
            let message = try #require(error.issues.first { $0.path == "name" }?.message)
            #expect(!message.contains(long))
            #expect(message.contains("…"))
            #expect(message.contains("(508 characters)"))
            #expect(message.contains("\\u{1b}[31m"))
            #expect(!message.contains("\u{1B}"))
        }
        #expect(echoed("a\nb\u{7}c") == "a\\nb\\u{7}c")
        #expect(echoed("short") == "short")
    }

    // MARK: What validate checks that run would refuse

    @Test func invalidUTF8IsRefusedWithItsPlace() async throws {
        try await withTemporaryDirectory { folder in
            let path = folder + "/p.yml"
            try Data("version: 1\nname: a".utf8 + [0xFF] + Data("b\n".utf8)).write(to: URL(fileURLWithPath: path))
            let error = #expect(throws: PipelineValidationError.self) {
                try PipelineLoader(environment: [:]).load(path)
            }
            #expect(
                error?.issues.first?.description == "\(path):2:8: byte 18 is not UTF-8: a pipeline file is UTF-8 text")
        }
    }

    @Test func yamlReaderErrorsHaveFileLineAndColumn() async throws {
        try await withTemporaryDirectory { folder in
            let error = try #require(Self.issues("version: 1\nname: a\u{1}b\n" + Self.stage, in: folder))
            #expect(error.issues.first?.description == "\(folder)/p.yml:2:8: YAML: control characters are not allowed")
        }
    }

    @Test(arguments: [
        ("deploy:\n  service: \"..\"\n", "\"..\" must be at most 63"),
        ("deploy:\n  service: \".\"\n", "\".\" must be at most 63"),
        ("deploy:\n  service: a/b\n", "\"a/b\" must be at most 63"),
        ("deploy:\n  service: \"\"\n", "must not be empty"),
        ("deploy:\n  colors: [blue, gr.een]\n", "colour \"gr.een\" must be at most 32 letters"),
        ("deploy:\n  colors: [blue, \"1green\"]\n", "colour \"1green\" must be at most 32 letters"),
        ("deploy: {}\ntraffic:\n  wait: 25h\n", "25h is longer than the most allowed, 24h"),
        ("deploy: {}\ntraffic:\n  wait: 999999999h\n", "is longer than the most allowed, 24h"),
        ("deploy: {}\ntraffic:\n  wait: 9223372036s1s\n", "9223372036s1s is longer than the most allowed, 24h"),
        (
            "deploy: {}\ntraffic: {}\nanalysis:\n  prometheus: http://p:9090\n  judge:\n    maxWait: 999999999h999999999h999999999h\n    metrics:\n      - name: e\n        histogram: b{c=\"{{color}}\"}\n        bad: increase\n",
            "is longer than the most allowed, 24h"
        ),
        (
            "deploy: {}\ntraffic: {}\nanalysis:\n  prometheus: http://p:9090\n  judge:\n    expectedRate: 1e300\n    metrics:\n      - name: e\n        histogram: b{c=\"{{color}}\"}\n        bad: increase\n",
            "above 0 and at most 1e9"
        ),
        ("deploy: {}\ntraffic:\n  drain: 1441m\n", "24h1m is longer than the most allowed, 24h"),
        ("history: \"my releases/h.jsonl\"\ndeploy: {}\ntraffic: {}\n", "nginx's runtime folder"),
        ("history: \"r;x/h.jsonl\"\ndeploy: {}\ntraffic: {}\n", "which nginx or Lua would misread"),
        (
            "history: \"\(String(repeating: "d", count: 90))/h.jsonl\"\ndeploy: {}\ntraffic: {}\n",
            "longer than 107 bytes"
        ),
        ("secrets: [\"NOT A NAME\"]\n", "is not a variable name"),
    ])
    func validateRejectsWhatRunCannotUse(extra: String, message: String) async throws {
        try await withTemporaryDirectory { folder in
            let yaml =
                Self.header
                + "stages:\n  - name: a\n    run: [\"true\"]\n  - name: train\n    uses: train\n    with: {ratings: r.csv, model: m}\n"
                + extra
            let error = try #require(Self.issues(yaml, in: folder))
            #expect(error.issues.contains { $0.message.contains(message) && $0.line > 0 }, "\(error)")
        }
    }

    @Test func aStageTimeoutMayBeAWeekButNoMore() async throws {
        try await withTemporaryDirectory { folder in
            let stage = "stages:\n  - name: a\n    run: [\"true\"]\n    timeout: "
            #expect(try Self.load(Self.header + stage + "168h\n", in: folder).stages[0].timeout == .seconds(168 * 3600))
            let error = try #require(Self.issues(Self.header + stage + "169h\n", in: folder))
            #expect(error.issues.first?.message == "169h is longer than the most allowed, 168h")
        }
        #expect(PipelineDuration.seconds(.max).milliseconds == .max, "saturates instead of trapping")
    }

    @Test func aHistoryPathWithSpacesWorksWithoutTraffic() async throws {
        try await withTemporaryDirectory { folder in
            let pipeline = try Self.load(
                Self.header + "history: \"my releases; x/h $(x).jsonl\"\n" + Self.stage, in: folder)
            #expect(pipeline.history == folder + "/my releases; x/h $(x).jsonl")
            let (result, _) = try await runPipeline(folder + "/p.yml")
            #expect(result.exitCode == 0)
            #expect(try ReleaseHistory(path: pipeline.history).records().count == 1)
        }
    }

    // MARK: Special files and duplicates as inputs

    @Test func specialFilesAsInputsOrOutputsAreRefusedByValidate() async throws {
        try await withTemporaryDirectory { folder in
            #expect(mkfifo(folder + "/fifo", 0o600) == 0)
            let yaml =
                Self.header
                + "stages:\n  - name: a\n    run: [\"true\"]\n    inputs: [/dev/zero]\n    outputs: [fifo]\n"
            let error = try #require(Self.issues(yaml, in: folder))
            #expect(
                error.issues.map(\.message) == [
                    "/dev/zero is a character device: a stage reads and writes regular files and folders (it would block or never end)",
                    "\(folder)/fifo is a FIFO (named pipe): a stage reads and writes regular files and folders (it would block or never end)",
                ])
            #expect(error.issues.map(\.line) == [6, 7])
        }
    }

    @Test func hashingNeverOpensSpecialFiles() async throws {
        try await withTemporaryDirectory { folder in
            try write("a", to: folder + "/data/a.txt")
            #expect(mkfifo(folder + "/data/pipe", 0o600) == 0)
            let error = #expect(throws: OrchestratorError.self) { try ArtifactDigest.of(folder + "/data/pipe") }
            #expect(error?.message.contains("is a FIFO (named pipe), not a file or folder") == true)
            #expect(throws: OrchestratorError.self) { try ArtifactDigest.of("/dev/zero") }
            // In a folder, only its regular files count: the FIFO is not opened (that would block).
            let digest = try ArtifactDigest.of(folder + "/data")
            #expect(digest.size == 1)
        }
    }

    @Test func aMetricsFileThatIsAFIFOFailsTheStageWithoutBlocking() async throws {
        try await withTemporaryDirectory { folder in
            let yaml =
                Self.header + "history: h.jsonl\nstages:\n  - name: a\n    run: [mkfifo, m.json]\n    metrics: m.json\n"
            let (result, lines) = try await runPipeline(
                try {
                    try write(yaml, to: folder + "/p.yml"); return folder + "/p.yml"
                }())
            #expect(result.exitCode == 1)
            #expect(
                lines.contains { $0.contains("the metrics file \(folder)/m.json is a FIFO (named pipe), not a file") },
                "\(lines)")
        }
    }

    @Test func aPathListedTwiceIsOneInput() async throws {
        try await withTemporaryDirectory { folder in
            try write("in", to: folder + "/in.txt")
            let yaml =
                Self.header
                + "history: h.jsonl\nstages:\n  - name: a\n    run: [cp, in.txt, out.txt]\n    inputs: [in.txt, ./in.txt, in.txt]\n    outputs: [out.txt, out.txt]\n"
            let pipeline = try Self.load(yaml, in: folder)
            #expect(pipeline.stages[0].inputs == [folder + "/in.txt"])
            #expect(pipeline.stages[0].outputs == [folder + "/out.txt"])
            let (first, _) = try await runPipeline(folder + "/p.yml")
            #expect(first.exitCode == 0)
            let (second, lines) = try await runPipeline(folder + "/p.yml")
            #expect(second.exitCode == 0)
            #expect(lines.contains { $0.contains("a: cached") }, "\(lines)")
        }
    }

    // MARK: Secrets

    static let secretPipeline = """
        version: 1
        name: demo
        history: h.jsonl
        secrets: [DEPLOY_CREDENTIAL]
        stages:
          - name: a
            run: [/bin/sh, -c, 'echo "$API_TOKEN $DEPLOY_CREDENTIAL" > got.txt; echo "{\\"n\\": 1}" > m.json', "${DEPLOY_CREDENTIAL}"]
            env: {API_TOKEN: "${API_TOKEN}", DEPLOY_CREDENTIAL: "${DEPLOY_CREDENTIAL}", DB_PASSWORD: literal-pw-123, MODE: fast}
            metrics: m.json

        """

    @Test func secretsAreRedactedInPlansRecordsAndProgressButReachTheChild() async throws {
        try await withTemporaryDirectory { folder in
            try write(Self.secretPipeline, to: folder + "/p.yml")
            let environment = ["API_TOKEN": "tok-ABCDEF-987", "DEPLOY_CREDENTIAL": "cred-XYZ-555"]
            let secrets = ["tok-ABCDEF-987", "cred-XYZ-555", "literal-pw-123"]
            let pipeline = try PipelineLoader(environment: environment).load(folder + "/p.yml")
            #expect(Set(pipeline.redaction.values) == Set(secrets))
            #expect(pipeline.stages[0].env["API_TOKEN"] == "tok-ABCDEF-987", "the child gets the real value")

            let (result, lines) = try await runPipeline(folder + "/p.yml", environment: environment)
            #expect(result.exitCode == 0)
            #expect(read(folder + "/got.txt") == "tok-ABCDEF-987 cred-XYZ-555\n")
            let history = read(folder + "/h.jsonl")
            #expect(history.contains("[redacted]"))
            #expect(history.contains("MODE"), "other values stay")
            for secret in secrets {
                #expect(!history.contains(secret))
                #expect(!lines.joined().contains(secret))
            }
            #expect(
                try ReleaseHistory(path: folder + "/h.jsonl").records().count == 1,
                "the redacted record is still a valid record")
        }
    }

    @Test func aValidationMessageDoesNotQuoteASecret() async throws {
        try await withTemporaryDirectory { folder in
            try write(
                "version: \"${API_TOKEN}\"\nname: \"${MY_CRED}\"\nsecrets: [MY_CRED]\n" + Self.stage,
                to: folder + "/p.yml")
            let error = #expect(throws: PipelineValidationError.self) {
                try PipelineLoader(environment: ["API_TOKEN": "tok-ABCDEF-987", "MY_CRED": "cr ed"]).load(
                    folder + "/p.yml")
            }
            let text = String(describing: error)
            #expect(text.contains("expected a whole number, got \"[redacted]\""), "\(text)")
            #expect(!text.contains("tok-ABCDEF-987") && !text.contains("cr ed"))
        }
    }

    @Test func dryRunPrintsNoSecretInTextOrJSON() async throws {
        try await withTemporaryDirectory { folder in
            try write(Self.secretPipeline, to: folder + "/p.yml")
            for format in ["text", "json"] {
                let result = try await runCommand(
                    CLITests.binary,
                    [
                        "run", "p.yml", "--dry-run", "--output", format, "--set",
                        "stages.a.env.SERVICE_KEY=set-KEY-4242",
                    ],
                    environment: ["API_TOKEN": "tok-ABCDEF-987", "DEPLOY_CREDENTIAL": "cred-XYZ-555"], in: folder)
                #expect(result.status == 0, "\(result.stderr)")
                #expect(result.stdout.contains("[redacted]"))
                for secret in ["tok-ABCDEF-987", "cred-XYZ-555", "literal-pw-123", "set-KEY-4242"] {
                    #expect(!result.stdout.contains(secret), "\(format): \(result.stdout)")
                    #expect(!result.stderr.contains(secret))
                }
            }
        }
    }

    @Test func redactionCoversNestedStringsAndKeys() {
        let redaction = Redaction(values: ["s3", "s3cr3t", ""])
        #expect(redaction.values == ["s3cr3t", "s3"], "longest first, empty ignored")
        #expect(redaction.redact("a s3cr3t b") == "a [redacted] b")
        #expect(redaction.redacted(["k-s3cr3t": ["x", "s3"]]) == ["k-[redacted]": ["x", "[redacted]"]])
        let digests = Redaction(values: ["ab"]).redacted([
            "sha256": "00ab", "fingerprint": "ab01", "previous_sha256": "abab", "note": "ab",
        ])
        #expect(
            digests == ["sha256": "00ab", "fingerprint": "ab01", "previous_sha256": "abab", "note": "[redacted]"],
            "digests stay intact")
        #expect(
            Redaction.isSecretName("github_token") && Redaction.isSecretName("SSH_KEY")
                && !Redaction.isSecretName("MODE"))
    }
}

/// What the controller creates is never writable by others, whatever the umask.
@Suite struct FileModeTests {
    @Test func underUmaskZeroNothingCreatedIsWorldWritable() async throws {
        try await withTemporaryDirectory { folder in
            try write(
                "version: 1\nname: modes\nhistory: out/releases/h.jsonl\nstages:\n  - name: a\n    run: [\"true\"]\n",
                to: folder + "/p.yml")
            // umask is process-wide: a child process has its own, the tests running beside this one keep theirs.
            let result = try await runCommand(
                "/bin/sh", ["-c", "umask 000 && exec \"$0\" run p.yml", CLITests.binary], in: folder)
            #expect(result.status == 0, "\(result.stderr)")
            let created = try FileManager.default.subpathsOfDirectory(atPath: folder + "/out")
            #expect(created.contains("releases/h.jsonl") && created.contains { $0.hasSuffix("a.log") }, "\(created)")
            for relative in created + [""] {
                var info = stat()
                #expect(lstat(folder + "/out/" + relative, &info) == 0)
                #expect(
                    info.st_mode & S_IWOTH == 0,
                    "\(relative) is writable by others: \(String(info.st_mode & 0o777, radix: 8))")
                if (info.st_mode & S_IFMT) == S_IFDIR { #expect(info.st_mode & 0o777 == 0o755, "\(relative)") }
            }
        }
    }

    @Test func atomicWritesTakeTheModeAskedWhateverTheUmask() async throws {
        try await withTemporaryDirectory { folder in
            try AtomicFile.write(Data("x".utf8), to: folder + "/a/b/secret.json", permissions: 0o600)
            var info = stat()
            #expect(stat(folder + "/a/b/secret.json", &info) == 0)
            #expect(info.st_mode & 0o777 == 0o600)
            #expect(stat(folder + "/a", &info) == 0)
            #expect(info.st_mode & 0o777 == 0o755)
            #expect(throws: AtomicFileError.self) { try AtomicFile.createFolder(folder + "/a/b/secret.json/c") }
        }
    }
}
