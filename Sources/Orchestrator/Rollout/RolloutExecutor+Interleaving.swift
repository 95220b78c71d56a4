import PipelineSchema
import Provenance
import StrictYAML
import Traffic

extension InterleaveSpec {
    /// The interleaving of the step at `weight` (below 100 %): the release id samples the users
    /// (the same ones at every step), the step names the experiment (each step's counts start
    /// from zero).
    func split(weight: Int, releaseID: String) -> TrafficSplit.Interleave? {
        guard weight < 100 else { return nil }
        return .init(
            percent: share, window: max(1, Int(window.milliseconds / 1000)), seed: releaseID,
            experiment: "\(releaseID)-w\(weight)")
    }
}

extension JudgeSpec {
    /// The judge of a step at `weight`: at 0 % only the interleaved users see the new colour, so
    /// only the interleaving metrics have anything to compare (the A/B metrics would wait for data
    /// that cannot come).
    func judging(weight: Int) -> JudgeSpec {
        guard weight == 0 else { return self }
        var spec = self
        spec.metrics = spec.metrics.filter { $0.kind == .interleaving }
        return spec
    }
}

extension RolloutExecutor {
    /// The judge's reads of each judged step (by its index), with what it reads of the step's
    /// interleaving: nginx's counts of the step's experiment, nil before its first interleaved
    /// user (nginx still holds the previous step's).
    func stepJudges(prometheus: PrometheusClient?) -> [Int: StepJudge] {
        guard let prometheus, let live else { return [:] }
        var judges: [Int: StepJudge] = [:]
        for (index, step) in machinePlan.steps.enumerated() {
            guard let spec = machinePlan.judge(ofStep: index) else { continue }
            var judge = StepJudge(spec: spec, prometheus: prometheus, target: target, live: live.color)
            if let nginx,
                let experiment = plan.interleave?.split(weight: step.newWeight, releaseID: releaseID)?.experiment
            {
                judge.interleaving = {
                    guard let counts = try await nginx.interleaving(), counts.experiment == experiment else {
                        return nil
                    }
                    return counts
                }
            }
            judges[index] = judge
        }
        return judges
    }
}
