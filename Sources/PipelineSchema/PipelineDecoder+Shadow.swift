import StrictYAML
import Yams

extension PipelineDecoder {
    /// `traffic.shadow: {share: PERCENT, duration: DURATION, requests: N, gates: {...}}`; the gates are
    /// `rbo`, `overlap`, `coverage` ({min: ...}), `p95_latency_ratio`, `errors`, `popularity` ({max: ...}).
    func decodeShadow(_ node: Node) -> ShadowSpec? {
        let path = "traffic.shadow"
        guard let map = reader.mapping(node, path, allowed: ["share", "duration", "requests", "gates"]) else {
            return nil
        }
        let share = reader.required(map, "share", path, in: node).flatMap {
            reader.int($0, "\(path).share", range: 1...100)
        }
        var duration: PipelineDuration?
        if let durationNode = map["duration"], let value = reader.duration(durationNode, "\(path).duration") {
            if value.milliseconds >= 1000 {
                duration = value
            } else {
                reader.report(
                    durationNode, "\(path).duration", "the shadow stage runs 1s to 24h, e.g. 60s; got \(value)")
            }
        }
        let requests = map["requests"].flatMap { reader.int($0, "\(path).requests", range: 1...1_000_000) }
        if map["duration"] == nil && map["requests"] == nil {
            reader.report(
                node, path,
                "give how long the shadow stage runs (duration: 60s), how many comparisons decide it (requests: 500), or both"
            )
        }
        let gates = reader.required(map, "gates", path, in: node).flatMap(decodeShadowGates)
        guard let share, let gates, map["duration"] == nil || duration != nil else { return nil }
        // With only a number of comparisons, the stage waits for them at most 10 minutes.
        return ShadowSpec(share: share, duration: duration ?? .seconds(600), requests: requests, gates: gates)
    }

    private func decodeShadowGates(_ node: Node) -> ShadowGates? {
        let path = "traffic.shadow.gates"
        let names = ["rbo", "overlap", "p95_latency_ratio", "errors", "coverage", "popularity"]
        guard let map = reader.mapping(node, path, allowed: names) else { return nil }
        var gates = ShadowGates()
        var valid = true
        func bound(_ name: String, _ key: String, _ range: ClosedRange<Double>, _ meaning: String) -> Double? {
            guard let gate = map[name] else { return nil }
            guard let bounds = reader.mapping(gate, "\(path).\(name)", allowed: [key]) else {
                valid = false
                return nil
            }
            guard let valueNode = reader.required(bounds, key, "\(path).\(name)", in: gate),
                let value = reader.double(valueNode, "\(path).\(name).\(key)")
            else {
                valid = false
                return nil
            }
            guard range.contains(value) else {
                reader.report(valueNode, "\(path).\(name).\(key)", "\(meaning), got \(formatNumber(value))")
                valid = false
                return nil
            }
            return value
        }
        gates.rboMin = bound(
            "rbo", "min", 0...1, "the mean rank-biased overlap is from 0 (disjoint) to 1 (the same lists)")
        gates.overlapMin = bound("overlap", "min", 0...1, "the mean overlap@k is from 0 to 1")
        gates.p95LatencyRatioMax = bound(
            "p95_latency_ratio", "max", 0.01...1000,
            "the new colour's p95 latency over the live one's is from 0.01 to 1000")
        gates.errorsMax = bound(
            "errors", "max", 0...1, "the share of shadow requests that failed is from 0 to 1 (0.01: 1 %)")
        gates.coverageMin = bound(
            "coverage", "min", 0...100,
            "the new colour's catalogue coverage over the live one's is a ratio from 0 to 100 (0.5: half as many distinct movies)"
        )
        gates.popularityMax = bound(
            "popularity", "max", 0.01...100,
            "the new colour's popularity concentration (top-10 share) over the live one's is a ratio from 0.01 to 100 (1.5: half as much again)"
        )
        guard valid else { return nil }
        if gates.isEmpty {
            // Only unknown keys: each is reported already, with its suggestion.
            guard node.mapping?.isEmpty != false else { return nil }
            reader.report(
                node, path,
                "a shadow stage without gates decides nothing: give at least one of rbo: {min: 0.2}, overlap: {min: 0.1}, p95_latency_ratio: {max: 1.5}, errors: {max: 0.01}, coverage: {min: 0.5}, popularity: {max: 1.5}"
            )
            return nil
        }
        return gates
    }
}
