import EngineAPI
import Foundation
import TestSupport
import Testing

/// Compose files the fuzzer (Fuzz/, scripts/fuzz) found that once trapped or never ended.
@Suite struct ComposeFileTests {
    static func load(_ text: String) async throws -> Result<ComposeFile, EngineClientError> {
        try await withTemporaryDirectory { folder in
            try write(text, to: folder + "/compose.yml")
            do {
                return .success(try ComposeFile.load(folder + "/compose.yml", variables: [:]))
            } catch let error as EngineClientError {
                return .failure(error)
            }
        }
    }

    @Test(arguments: [
        ("environment: [\"\"]", "\"\" is not NAME=VALUE"),
        ("environment: [\"=x\"]", "\"=x\" is not NAME=VALUE"),
    ])
    func anEnvironmentEntryWithoutANameIsAnError(entry: String, message: String) async throws {
        let result = try await Self.load("services:\n  web:\n    image: x\n    \(entry)\n")
        guard case .failure(let error) = result else {
            Issue.record("loaded \(result)")
            return
        }
        #expect(error.description.contains("services.web.environment"))
        #expect(error.description.contains(message))
    }

    /// Compose files follow the pipeline's rule: an explicit tag is refused with its line and column.
    @Test(arguments: [
        ("    image: !!str x\n", "3:12", "!!str"),
        ("    image: x\n    restart: !custom always\n", "4:14", "!custom"),
        ("    image: x\n    ports: !!seq [\"80\"]\n", "4:12", "!!seq"),
        ("    image: x\n    init: !!bool true\n", "4:11", "!!bool"),
        ("    image: x\n    !!binary aW1hZ2U=: y\n", "4:5", "!!binary"),
    ])
    func anExplicitTagIsRefusedWhereItStands(service: String, location: String, tag: String) async throws {
        let result = try await Self.load("services:\n  web:\n" + service)
        guard case .failure(let error) = result else {
            Issue.record("loaded \(result)")
            return
        }
        #expect(error.description.contains("compose.yml:\(location): services.web"), "\(error)")
        #expect(error.description.contains("the YAML tag \(tag) is not read"), "\(error)")
    }

    /// A compose file is read with a pipeline file's bounds: a FIFO or a device is refused
    /// without blocking or reading on, a file past 1 MiB without reading it all.
    @Test(.timeLimit(.minutes(1)), arguments: ["fifo", "device", "large"])
    func aComposeFileThatIsNotASmallRegularFileIsRefused(kind: String) async throws {
        try await withTemporaryDirectory { folder in
            var path = folder + "/compose.yml"
            switch kind {
            case "fifo": #expect(mkfifo(path, 0o600) == 0)
            case "device": path = "/dev/zero"
            default:
                try write("# " + String(repeating: "x", count: 2 << 20) + "\nservices: {web: {image: x}}\n", to: path)
            }
            let error = #expect(throws: EngineClientError.self) { try ComposeFile.load(path, variables: [:]) }
            #expect(
                error?.description.contains(kind == "large" ? "larger than 1048576 bytes" : "not a regular file")
                    == true, "\(String(describing: error))")
            #expect(throws: EngineClientError.self) { try ComposeFile.projectName(of: path) }
        }
    }

    @Test func anEnvironmentEntryWithAnEmptyValueKeepsItsName() async throws {
        let file = try await Self.load("services:\n  web:\n    image: x\n    environment: [\"A=\", \"B\", \"C=1=2\"]\n")
            .get()
        #expect(file.services["web"]?.environment == ["A": "", "B": "", "C": "1=2"])
    }

    @Test(arguments: [
        ("  a: {image: x, depends_on: [a]}\n", "a -> a"),
        (
            "  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [c]}\n  c: {image: x, depends_on: [a]}\n",
            "a -> b -> c -> a"
        ),
    ])
    func dependsOnInACircleIsAnError(services: String, cycle: String) async throws {
        let result = try await Self.load("services:\n" + services)
        guard case .failure(let error) = result else {
            Issue.record("loaded \(result)")
            return
        }
        #expect(error.description.contains("depends_on goes round in a circle (\(cycle))"))
    }

    @Test func servicesStartAfterWhatTheyDependOn() async throws {
        let file = try await Self.load(
            "services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [c]}\n  c: {image: x}\n"
        ).get()
        #expect(file.startOrder(["a", "b", "c"]) == ["c", "b", "a"])
        var circular = file
        circular.services["c"]?.dependsOn = ["a"]
        #expect(
            circular.startOrder(["a", "b", "c"]) == ["c", "b", "a"], "a circle built in code ends where it closes")
    }
}
