import EngineAPI
import Foundation
import Orchestrator
import OrchestratorSupport
import PipelineSchema
import Provenance
import RecEngine
import Testing

/// The fuzzers' corpora (`Fuzz/Corpus/<target>`: seeds, and every input a fuzzer once crashed on,
/// kept as a seed after its fix) replayed through the loaders the fuzzers target, in the ordinary
/// build, so that CI keeps them as regression tests; the fuzzing itself (`scripts/fuzz`, a second
/// build with sanitizers) runs by hand or on a schedule. Each input is read as its fuzzer reads
/// it (`Fuzz/Sources/Fuzz<Target>/main.swift`); a trap fails the whole run.
@Suite struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("Fuzz/Corpus").path

    /// Every input of a target, which must have some: an empty corpus would pass vacuously.
    static func inputs(_ target: String) throws -> [Data] {
        let folder = corpus + "/" + target
        let names = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        try #require(names.count >= 5, "the \(target) corpus has \(names.count) inputs")
        return try names.map { try Data(contentsOf: URL(fileURLWithPath: folder + "/" + $0)) }
    }

    /// A folder where the loaders that read a path find the input.
    static func withFolder<T>(_ body: (String) throws -> T) throws -> T {
        let folder = NSTemporaryDirectory() + "fuzz-corpus-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        return try body(folder)
    }

    /// The bytes before and after the first `separator` (the model and history fuzzers' layout).
    static func split(_ data: Data, at separator: String) -> (Data, Data?) {
        guard let range = data.firstRange(of: Data(separator.utf8)) else { return (data, nil) }
        return (data[..<range.lowerBound], data[range.upperBound...])
    }

    @Test func pipelines() throws {
        let accepted = try Self.withFolder { folder in
            try Self.inputs("pipeline").filter { bytes in
                try bytes.write(to: URL(fileURLWithPath: folder + "/pipeline.yml"))
                return (try? PipelineLoader(environment: [:]).load(folder + "/pipeline.yml")) != nil
            }.count
        }
        #expect(accepted >= 1, "a valid seed loads: the loader was reached")
    }

    @Test func models() throws {
        let accepted = try Self.withFolder { folder in
            try Self.inputs("model").filter { bytes in
                let (manifest, tensors) = Self.split(bytes, at: "\n%%safetensors%%\n")
                let tensorBytes = tensors ?? Data()
                let patched = String(decoding: manifest, as: UTF8.self).replacingOccurrences(
                    of: "$TENSORS_SHA256", with: sha256Hex(tensorBytes))
                try Data(patched.utf8).write(to: URL(fileURLWithPath: folder + "/manifest.json"))
                try tensorBytes.write(to: URL(fileURLWithPath: folder + "/model.safetensors"))
                return (try? ModelDirectory.load(from: folder)) != nil
            }.count
        }
        #expect(accepted >= 1, "a valid seed loads: the loader was reached")
    }

    @Test func movieLogLines() throws {
        let parsed = try Self.inputs("movielogline").filter { bytes in
            if case .success = MovieLogLine.parse(Substring(String(decoding: bytes, as: UTF8.self))) { return true }
            return false
        }
        #expect(parsed.count >= 1, "a valid seed parses")
    }

    @Test func histories() throws {
        let verified = try Self.withFolder { folder in
            try Self.inputs("history").filter { bytes in
                let (head, history) = Self.split(bytes, at: "\n")
                let path = folder + "/history.jsonl"
                try (history ?? head).write(to: URL(fileURLWithPath: path))
                try? FileManager.default.removeItem(atPath: path + ".head")
                if history != nil { try head.write(to: URL(fileURLWithPath: path + ".head")) }
                return (try? ReleaseHistory(path: path).verify())?.isEmpty == true
            }.count
        }
        #expect(verified >= 1, "a valid seed verifies")
    }

    @Test func composeFiles() throws {
        let loaded = try Self.withFolder { folder in
            try Self.inputs("compose").filter { bytes in
                let path = folder + "/compose.yml"
                try bytes.write(to: URL(fileURLWithPath: path))
                _ = try? ComposeFile.projectName(of: path)
                guard let file = try? ComposeFile.load(path, variables: ["TAG": "1"]) else { return false }
                _ = file.startOrder(Array(file.services.keys))
                return true
            }.count
        }
        #expect(loaded >= 1, "a valid seed loads")
    }
}
