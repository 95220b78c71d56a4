import StrictYAML
import Traffic

extension RolloutExecutor {
    /// The interleaving of the step at `weight` (below 100 %, with `traffic.interleave`): the
    /// release id samples the users (the same ones at every step), the step names the
    /// experiment (each step's counts start from zero).
    func interleaving(weight: Int) -> TrafficSplit.Interleave? {
        guard let spec = pipeline.traffic?.interleave, weight < 100 else { return nil }
        return .init(percent: spec.share, window: max(1, Int(spec.window.milliseconds / 1000)), seed: releaseID, experiment: "\(releaseID)-w\(weight)")
    }

    /// What the judge reads of the step's interleaving: nginx's counts of the step's experiment,
    /// nil before its first interleaved user (nginx still holds the previous step's).
    func interleavingCounts(weight: Int) -> @Sendable () async throws -> InterleavingCounts? {
        guard let nginx, let experiment = interleaving(weight: weight)?.experiment else { return { nil } }
        return {
            guard let counts = try await nginx.interleaving(), counts.experiment == experiment else { return nil }
            return counts
        }
    }

    /// The judge of a step: at 0 % only the interleaved users see the new colour, so only the
    /// interleaving metrics have anything to compare (the A/B metrics would wait for data that
    /// cannot come).
    static func judged(_ spec: JudgeSpec, weight: Int) -> JudgeSpec {
        guard weight == 0 else { return spec }
        var spec = spec
        spec.metrics = spec.metrics.filter { $0.kind == .interleaving }
        return spec
    }
}
