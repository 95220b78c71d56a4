import EngineAPI
import Foundation
import Orchestrator
import PipelineSchema
import RecEngine
import StrictYAML
@_exported import TestSupport

/// A small ratings file with structure a model can learn.
func writeRatings(to path: String, users: Int = 60, items: Int = 40, perUser: Int = 12) throws {
    var generator = SeededGenerator(seed: 5)
    var text = "user_id,movie_id,rating\n"
    for u in 0..<users {
        var chosen = Set<Int>()
        while chosen.count < perUser { chosen.insert(generator.nextIndex(below: items)) }
        for i in chosen.sorted() {
            let rating = min(5, max(1, 3 + (u % 3) - (i % 3) + generator.nextIndex(below: 2)))
            text += "u\(u),m\(i),\(rating)\n"
        }
    }
    try write(text, to: path)
}

/// Runs a pipeline file through the loader and runner, collecting progress lines.
func runPipeline(
    _ path: String, options: RunOptions = RunOptions(), environment: [String: String] = [:]
) async throws -> (ReleaseController.RunResult, [String]) {
    let pipeline = try PipelineLoader(environment: environment).load(path, overrides: options.overrides)
    let lines = LineCollector()
    let result = try await ReleaseController(pipeline: pipeline, options: options) { lines.append($0) }.run()
    return (result, lines.lines)
}

final class LineCollector: @unchecked Sendable {
    // Guarded by `lock`; the runner reports from one task at a time, the lock makes that certain.
    private let lock = NSLock()
    private var storage: [String] = []

    func append(_ line: String) {
        lock.lock()
        storage.append(line)
        lock.unlock()
    }

    var lines: [String] {
        lock.lock()
        defer { lock.unlock() }
        return storage
    }
}
