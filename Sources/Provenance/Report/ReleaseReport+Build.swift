public import Foundation
import OrchestratorSupport
import PipelineSchema

extension ReleaseReport {
    /// The report of `record`.
    ///
    /// - Parameters:
    ///   - history: the records of the history it comes from, oldest first: the live release's
    ///     offline metrics are taken from the release that was promoted last before this one.
    ///   - grafana: the Grafana base URL (`GrafanaLink.defaultBaseURL`); nil: no link.
    public init(record: ReleaseRecord, history: [ReleaseRecord], grafana: String? = GrafanaLink.defaultBaseURL()) {
        self.init(record: record, liveRelease: Self.liveRelease(before: record, in: history), grafana: grafana)
    }

    /// The report of `record`, `liveRelease` being the release that was live when it started
    /// (`find(in:where:)` reads both from a history).
    public init(
        record: ReleaseRecord, liveRelease live: ReleaseRecord?, grafana: String? = GrafanaLink.defaultBaseURL()
    ) {
        let finished = record.finishedOn
        release = Summary(
            releaseID: record.releaseID, action: (record.action ?? .release).rawValue,
            outcome: record.dryRun ? "dry-run" : record.outcome.rawValue,
            failure: record.failure, startedOn: record.startedOn, finishedOn: finished,
            durationSeconds: finished.map { $0.timeIntervalSince(record.startedOn) }, pipeline: record.pipeline.name,
            pipelinePath: record.pipeline.path,
            trigger: record.invocation.trigger, user: record.invocation.user, host: record.invocation.host,
            gitCommit: record.source.gitCommit,
            gitDirty: record.source.gitDirty, signerKeyID: record.signer?.keyID)

        let sha256 = record.model?.sha256 ?? record.deployment?.modelSHA256
        model =
            record.model == nil && record.deployment == nil
            ? nil
            : Model(
                releaseID: record.releaseID, version: record.model?.version, sha256: sha256,
                color: record.deployment?.color ?? record.rollout?.target)
        liveModel = live.map {
            Model(
                releaseID: $0.releaseID, version: $0.model?.version,
                sha256: $0.deployment?.modelSHA256 ?? $0.model?.sha256, color: $0.deployment?.color)
        }
        offlineMetrics = record.stages.flatMap { stage in
            let liveStage = live?.stages.first { $0.name == stage.name }
            return stage.metrics.keys.sorted().map { name in
                OfflineMetric(
                    stage: stage.name, metric: name, value: stage.metrics[name] ?? .nan,
                    liveValue: liveStage?.metrics[name])
            }
        }
        stages = record.stages.map { stage in
            Stage(
                name: stage.name, status: stage.status.rawValue, durationSeconds: stage.durationSeconds,
                attempts: stage.attempts,
                exitStatus: stage.exitStatus, inputs: stage.inputs.map { .init(path: $0.path, sha256: $0.sha256) },
                outputs: stage.outputs.map { .init(path: $0.path, sha256: $0.sha256) },
                metrics: stage.metrics.keys.sorted().map { .init(name: $0, value: stage.metrics[$0] ?? .nan) },
                gates: stage.gates.map {
                    .init(metric: $0.metric, condition: $0.condition, value: $0.value, passed: $0.passed)
                },
                note: stage.error ?? stage.reason)
        }
        rollout = record.rollout.map { Self.rollout($0, record: record) }
        let end = finished ?? record.rollout?.events.last?.at ?? record.startedOn
        self.grafana = grafana.flatMap { GrafanaLink(baseURL: $0, from: record.startedOn, to: end) }
    }

    /// The release that was live when `record` started: the last promoted release before it.
    static func liveRelease(before record: ReleaseRecord, in history: [ReleaseRecord]) -> ReleaseRecord? {
        let earlier = history.prefix { !isSame($0, as: record) }
        return earlier.last(where: isPromotedRelease)
    }

    /// The newest record for which `predicate` holds, and the release that was live when it
    /// started, read from the end of `history` back only as far as they lie; nil when no record
    /// matches.
    public static func find(
        in history: ReleaseHistory, where predicate: (ReleaseRecord) -> Bool
    ) throws -> (record: ReleaseRecord, live: ReleaseRecord?)? {
        var found: ReleaseRecord?
        var live: ReleaseRecord?
        try history.forEachLineNewestFirst { line in
            guard let record = line.record else { return true }
            guard let found else {
                if predicate(record) { found = record }
                return true
            }
            // A copy of the record appended again is not the release before it.
            if isSame(record, as: found) { return true }
            guard isPromotedRelease(record) else { return true }
            live = record
            return false
        }
        return found.map { ($0, live) }
    }

    private static func isSame(_ record: ReleaseRecord, as other: ReleaseRecord) -> Bool {
        record.releaseID == other.releaseID && record.startedOn == other.startedOn
    }

    private static func isPromotedRelease(_ record: ReleaseRecord) -> Bool {
        record.outcome == .succeeded && !record.dryRun && record.deployment != nil
            && (record.action ?? .release) == .release
    }

    static func rollout(_ rollout: ReleaseRecord.RolloutRecord, record: ReleaseRecord) -> Rollout {
        let events = rollout.events.map { Event(at: $0.at, kind: $0.kind.rawValue, detail: $0.detail) }
        let steps = rollout.steps.enumerated().map { index, step in
            Step(
                number: index + 1, weight: step.weight, startedOn: step.startedOn, finishedOn: step.finishedOn,
                durationSeconds: step.finishedOn.map { $0.timeIntervalSince(step.startedOn) },
                verdict: step.passed.map { $0 ? "passed" : "failed" } ?? "undecided",
                rule: rule(of: step, isLast: index == rollout.steps.count - 1, record: record),
                measurements: step.measurements.count, judgeLooks: step.judge?.count ?? 0)
        }
        return Rollout(
            live: rollout.live, target: rollout.target, mode: rollout.mode, weights: weights(rollout), steps: steps,
            gates: gateSeries(rollout), judge: judgeSeries(rollout), events: events,
            rollback: rollback(rollout, record: record), shadow: rollout.shadow,
            gateAnswers: (rollout.gateAnswers ?? []).isEmpty ? nil : rollout.gateAnswers)
    }

    /// The rule that decided a step, in words: the judge's rule, the gates that failed, or that
    /// every gate passed; the record's failure for a failed last step that says nothing else.
    static func rule(of step: ReleaseRecord.RolloutRecord.Step, isLast: Bool, record: ReleaseRecord) -> String {
        var parts: [String] = []
        if let decision = step.judgeDecision {
            parts.append("judge \(decision.rawValue): \(step.judgeRule ?? "")")
        }
        let failed = step.measurements.filter { $0.outcome == "failure" || $0.outcome == "error" }
        var seen = Set<String>()
        for measurement in failed where seen.insert(measurement.gate).inserted {
            let value = measurement.value.map(formatNumber) ?? measurement.error ?? "no value"
            parts.append("gate \(measurement.gate) \(measurement.condition) failed with \(value)")
        }
        if failed.isEmpty && !step.measurements.isEmpty && step.passed == true {
            let gates = Set(step.measurements.map(\.gate)).count
            parts.append(
                "every gate held (\(gates) gate\(gates == 1 ? "" : "s"), \(step.measurements.count) measurements)")
        }
        if parts.isEmpty {
            if step.passed == false || (isLast && step.passed == nil), let failure = record.failure {
                parts.append(failure)
            } else if step.passed == true {
                parts.append("no gate: the step's wait ended")
            } else {
                parts.append("not decided")
            }
        }
        return parts.joined(separator: "; ")
    }

    /// The weights from each shift event on, every colour of the rollout named.
    static func weights(_ rollout: ReleaseRecord.RolloutRecord) -> [WeightPoint] {
        var colors = [rollout.target] + (rollout.live.map { [$0] } ?? [])
        var current: [String: Int] = [:]
        var points: [WeightPoint] = []
        for event in rollout.events {
            guard let shifted = event.shiftedWeights else { continue }
            for (color, _) in shifted where !colors.contains(color) { colors.append(color) }
            let total = shifted.reduce(0) { $0 + $1.weight }
            // A split that names colours summing to 100 leaves the others none.
            if total == 100 || shifted.isEmpty { current = [:] }
            for (color, weight) in shifted { current[color] = weight }
            points.append(
                WeightPoint(
                    at: event.at, weights: colors.map { ColorWeight(color: $0, weight: current[$0] ?? 0) },
                    detail: event.detail))
        }
        // Colours first named later get 0 in the earlier points.
        return points.map { point in
            var point = point
            point.weights = colors.map { color in
                ColorWeight(color: color, weight: point.weights.first { $0.color == color }?.weight ?? 0)
            }
            return point
        }
    }

    static func gateSeries(_ rollout: ReleaseRecord.RolloutRecord) -> [GateSeries] {
        var series: [GateSeries] = []
        for (index, step) in rollout.steps.enumerated() {
            for measurement in step.measurements {
                let point = GatePoint(
                    at: measurement.at, step: index + 1, value: measurement.value, outcome: measurement.outcome,
                    error: measurement.error)
                if let existing = series.firstIndex(where: {
                    $0.gate == measurement.gate && $0.condition == measurement.condition
                }) {
                    series[existing].points.append(point)
                } else {
                    series.append(
                        GateSeries(
                            gate: measurement.gate, condition: measurement.condition,
                            bounds: bounds(measurement.condition), color: rollout.target,
                            query: measurement.query, points: [point]))
                }
            }
        }
        return series
    }

    /// The bounds of a condition such as `>= 0.02` or `>= 0.5 and <= 2`.
    static func bounds(_ condition: String) -> [Bound] {
        let words = condition.split(separator: " ")
        return zip(words, words.dropFirst()).compactMap { relation, number in
            guard relation == ">=" || relation == "<=" || relation == ">" || relation == "<",
                let value = Double(number), value.isFinite
            else { return nil }
            return Bound(relation: String(relation), value: value)
        }
    }

    static func judgeSeries(_ rollout: ReleaseRecord.RolloutRecord) -> [JudgeSeries] {
        var series: [JudgeSeries] = []
        for (index, step) in rollout.steps.enumerated() {
            for look in step.judge ?? [] {
                for metric in look.metrics {
                    for comparison in metric.comparisons {
                        let name = metric.metric + (comparison.quantile.map { " >p\(Int(($0 * 100).rounded()))" } ?? "")
                        let point = JudgePoint(
                            at: look.at, step: index + 1, newRate: rate(comparison.newSuccesses, comparison.newTrials),
                            liveRate: rate(comparison.liveSuccesses, comparison.liveTrials),
                            difference: comparison.difference, lower: comparison.lower,
                            upper: comparison.upper, margin: comparison.margin,
                            classification: comparison.classification.rawValue)
                        if let existing = series.firstIndex(where: { $0.metric == name }) {
                            series[existing].points.append(point)
                        } else {
                            series.append(
                                JudgeSeries(
                                    metric: name, critical: metric.critical, liveColor: rollout.live ?? "live",
                                    newColor: rollout.target, points: [point]))
                        }
                    }
                }
            }
        }
        return series
    }

    static func rate(_ successes: Double, _ trials: Double) -> Double? {
        trials > 0 && successes.isFinite && trials.isFinite ? successes / trials : nil
    }

    static func rollback(_ rollout: ReleaseRecord.RolloutRecord, record: ReleaseRecord) -> Rollback? {
        guard
            let start = rollout.events.firstIndex(where: {
                $0.kind == .rollback || $0.kind == .abort || $0.kind == .interrupt
            })
        else {
            return nil
        }
        let event = rollout.events[start]
        return Rollback(
            at: event.at, reason: event.detail.isEmpty ? record.failure ?? event.kind.rawValue : event.detail,
            actions: rollout.events[(start + 1)...].map { Event(at: $0.at, kind: $0.kind.rawValue, detail: $0.detail) })
    }
}

extension ReleaseReport.GrafanaLink {
    /// The uid of the dashboard in `monitoring/grafana/dashboards/recommender.json`.
    public static let dashboardUID = "recommender"
    /// Where Grafana is: `ORCHESTRATE_GRAFANA_URL`, else Grafana's default `http://localhost:3000`.
    public static func defaultBaseURL(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let url = environment["ORCHESTRATE_GRAFANA_URL"], !url.isEmpty { return url }
        return "http://localhost:3000"
    }

    /// The dashboard from a minute before `from` to a minute after `to`; nil for a base URL that
    /// is not http(s).
    public init?(baseURL: String, from: Date, to: Date) {
        guard var components = URLComponents(string: baseURL),
            components.scheme == "http" || components.scheme == "https", components.host != nil
        else { return nil }
        let start = from.addingTimeInterval(-60)
        let end = max(to, from).addingTimeInterval(60)
        let milliseconds = { (date: Date) in String(Int64((date.timeIntervalSince1970 * 1000).rounded())) }
        components.path =
            (components.path.hasSuffix("/") ? String(components.path.dropLast()) : components.path)
            + "/d/\(Self.dashboardUID)"
        components.queryItems = [
            .init(name: "from", value: milliseconds(start)), .init(name: "to", value: milliseconds(end)),
        ]
        guard let url = components.url?.absoluteString else { return nil }
        self.init(url: url, from: start, to: end)
    }
}
