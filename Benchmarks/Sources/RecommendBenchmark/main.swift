// Times top-20 recommendation for one user in process: every item scored by the SIMD kernel,
// rated items excluded, the best 20 selected. Prints one JSON object.
//
//   RecommendBenchmark MODEL_DIR [REPETITIONS]
import Foundation
import RecEngine

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: RecommendBenchmark MODEL_DIR [REPETITIONS]\n".utf8))
    exit(2)
}
let model = try ModelDirectory.load(from: arguments[1])
let repetitions = arguments.count > 2 ? Int(arguments[2]) ?? 20_000 : 20_000
var generator = SeededGenerator(seed: 1)
let users = (0..<repetitions).map { _ in model.userIDs[generator.nextIndex(below: model.userIDs.count)] }

// Warm up caches and the kernel dispatch.
var checksum = 0
for user in users.prefix(1000) {
    checksum &+= Int(model.recommend(user: user, count: 20).items[0])
}
var samples = [Double]()
samples.reserveCapacity(repetitions)
let clock = ContinuousClock()
for user in users {
    let start = clock.now
    let result = model.recommend(user: user, count: 20)
    samples.append((clock.now - start).seconds * 1e6)
    checksum &+= Int(result.items[0])
}
samples.sort()
let sorted = samples
func percentile(_ p: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
let mean = samples.reduce(0, +) / Double(samples.count)
print(
    """
    {"items": \(model.itemIDs.count), "factors": \(model.manifest.factors ?? 0), "repetitions": \(repetitions), \
    "mean_us": \(String(format: "%.2f", mean)), "p50_us": \(String(format: "%.2f", percentile(0.5))), \
    "p99_us": \(String(format: "%.2f", percentile(0.99))), "instruction_set": "\(SVDTrainer.instructionSet)", "checksum": \(checksum)}
    """)
