import StrictYAML
import Yams

extension PipelineDecoder {
    /// `traffic.interleave: {share: PERCENT, window: DURATION}`.
    func decodeInterleave(_ node: Node) -> InterleaveSpec? {
        let path = "traffic.interleave"
        guard let map = reader.mapping(node, path, allowed: ["share", "window"]) else { return nil }
        guard
            let share = reader.required(map, "share", path, in: node).flatMap({
                reader.int($0, "\(path).share", range: 1...100)
            })
        else { return nil }
        var spec = InterleaveSpec(share: share, window: .seconds(600))
        if let window = map["window"].flatMap({ reader.duration($0, "\(path).window") }) {
            if window.milliseconds >= 1000 && window.milliseconds <= 86_400_000 {
                spec.window = window
            } else {
                reader.report(
                    map["window"], "\(path).window",
                    "the credit window is 1s to 24h, e.g. 10m (the server's engagement window)")
            }
        }
        return spec
    }

    /// Interleaving needs both halves: users sampled in nginx (`traffic.interleave`) and a judge
    /// metric that reads them (kind `interleaving`); one without the other is a mistake.
    func checkInterleaving(traffic: TrafficSpec?, analysis: AnalysisSpec?, map: [String: Node], root: Node) {
        let metrics = analysis?.judge?.metrics.filter { $0.kind == .interleaving } ?? []
        if traffic?.interleave != nil && metrics.isEmpty {
            reader.report(
                map["traffic"]?.mapping?["interleave"] ?? root, "traffic.interleave",
                "nothing judges the interleaved users: add a judge metric with interleaving: {} to analysis.judge.metrics, or remove traffic.interleave"
            )
        }
        for metric in metrics where (metric.absolute ? metric.effect : metric.effect * 0.5) >= 0.5 {
            reader.report(
                map["analysis"] ?? root, "analysis.judge.metrics.\(metric.name).effect",
                "an interleaving effect is a share of users below 1/2: absolute below 0.5 (0.05: the new colour preferred by 45 %), relative below 1"
            )
        }
        if traffic?.interleave == nil, let metric = metrics.first {
            reader.report(
                map["analysis"] ?? root, "analysis.judge.metrics.\(metric.name)",
                "an interleaving metric needs traffic.interleave: {share: PERCENT} (the users nginx interleaves)")
        }
    }
}
