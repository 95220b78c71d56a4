import Foundation
import PipelineSchema

extension ReleaseReport {
    /// The report as one self-contained HTML page: inline CSS and SVG charts, no script, nothing
    /// fetched. Every string from the record is escaped.
    public func html() -> String {
        let e = HTMLText.escape
        var body = ""
        body += "<header><h1>Release \(e(release.releaseID))</h1>"
        body += "<p><span class=\"badge \(Self.badgeClass(release.outcome))\">\(e(release.outcome))</span> "
        body += "\(e(release.action)) of <b>\(e(release.pipeline))</b> (\(e(release.pipelinePath)))</p>"
        if let failure = release.failure { body += "<p class=\"failure\">\(e(failure))</p>" }
        var facts: [(String, String)] = [
            ("started", Self.timestamp(release.startedOn)),
            ("finished", release.finishedOn.map(Self.timestamp) ?? "not finished"),
            ("duration", release.durationSeconds.map(Self.seconds) ?? "-"),
            ("trigger", "\(release.trigger) by \(release.user)@\(release.host)"),
            (
                "source",
                release.gitCommit.map { $0 + (release.gitDirty == true ? " (uncommitted changes)" : "") } ?? "-"
            ),
            ("signed by", release.signerKeyID ?? "unsigned"),
        ]
        if let rollout {
            facts.append(("rollout", "\(rollout.live ?? "none") → \(rollout.target), \(rollout.mode) split"))
        }
        body += "<dl class=\"facts\">" + facts.map { "<dt>\(e($0.0))</dt><dd>\(e($0.1))</dd>" }.joined() + "</dl>"
        if let grafana {
            body +=
                "<p><a class=\"grafana\" href=\"\(e(grafana.url))\">Grafana dashboard, \(e(Self.timestamp(grafana.from))) to \(e(Self.timestamp(grafana.to)))</a></p>"
        }
        body += "</header>"

        if let rollout {
            body += trafficSection(rollout)
            if let shadow = rollout.shadow { body += shadowSection(shadow, rollout) }
            body += stepsSection(rollout)
            if let answers = rollout.gateAnswers, !answers.isEmpty { body += Self.gateAnswersSection(answers) }
            if let rollback = rollout.rollback { body += rollbackSection(rollback) }
            body += gatesSection(rollout)
            body += judgeSection(rollout)
        }
        body += modelSection()
        body += stagesSection()
        if let rollout, !rollout.events.isEmpty {
            body +=
                "<section><h2>Events</h2>"
                + Self.table(
                    ["time", "event", "detail"], rollout.events.map { [Self.timestamp($0.at), $0.kind, $0.detail] })
                + "</section>"
        }
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Release \(e(release.releaseID)): \(e(release.outcome))</title>
            <style>\(Self.style)</style></head>
            <body>
            \(body)
            <footer>orchestrate report (\(Self.schema)); the same data is in report.json and report.md.</footer>
            </body></html>

            """
    }

    private func trafficSection(_ rollout: Rollout) -> String {
        guard let first = rollout.weights.first else {
            return "<section><h2>Traffic</h2><p>No traffic was moved.</p></section>"
        }
        let colors = first.weights.map(\.color)
        let series = colors.enumerated().map { index, color in
            SVGChart.Series(
                name: "weight:\(color)",
                points: rollout.weights.map { point in
                    let weight = point.weights.first { $0.color == color }?.weight ?? 0
                    return SVGChart.Point(
                        at: point.at, value: Double(weight),
                        label: "\(color) \(weight)% at \(Self.timestamp(point.at)): \(point.detail)")
                }, stepped: true, color: SVGChart.color(named: color, index: index))
        }
        let chart = SVGChart(
            id: "weights", start: chartStart(rollout), end: chartEnd(rollout), series: series,
            markers: rollout.steps.map { ($0.startedOn, "step \($0.number)") }, range: 0...100, unit: "%")
        return "<section><h2>Traffic weights per colour</h2>\(Self.legend(series))\(chart.render())</section>"
    }

    private func stepsSection(_ rollout: Rollout) -> String {
        guard !rollout.steps.isEmpty else { return "" }
        let rows = rollout.steps.map { step in
            [
                String(step.number), "\(rollout.target) \(step.weight)%", Self.timestamp(step.startedOn),
                step.durationSeconds.map(Self.seconds) ?? "-",
                step.verdict, step.rule,
            ]
        }
        return "<section><h2>Steps</h2>"
            + Self.table(["step", "weight", "started", "held", "verdict", "the rule that decided"], rows) + "</section>"
    }

    /// Who approved what and when: every decisive answer to a webhook gate.
    static func gateAnswersSection(_ answers: [ReleaseRecord.RolloutRecord.GateAnswer]) -> String {
        "<section class=\"approvals\"><h2>Webhook gates: who answered, and when</h2>"
            + table(
                ["gate", "step", "answer", "by", "at"],
                answers.map { [$0.gate, $0.point, $0.answer, $0.by, timestamp($0.at)] }) + "</section>"
    }

    /// The shadow stage: the verdict, the gates, a histogram of RBO, latencies and catalogues, and
    /// the users whose lists changed most with both lists.
    private func shadowSection(_ shadow: ShadowComparison, _ rollout: Rollout) -> String {
        let e = HTMLText.escape
        let live = rollout.live ?? "live"
        func number(_ value: Double?, _ format: String = "%.3f") -> String {
            value.map { String(format: format, $0) } ?? "-"
        }
        var html =
            "<section class=\"shadow\"><h2>Shadow stage: \(e(rollout.target))'s answers against \(e(live))'s</h2>"
        html +=
            "<p><span class=\"badge \(Self.badgeClass(shadow.passed ? "succeeded" : "failed"))\">"
            + "\(shadow.passed ? "passed" : "failed")</span> \(e(shadow.verdict))</p>"
        html +=
            "<p>\(shadow.share)% of the live /recommend requests, \(e(Self.seconds(shadow.finishedOn.timeIntervalSince(shadow.startedOn)))); "
            + "no user was answered by \(e(rollout.target)). Compared \(shadow.compared) of \(shadow.sampled) sampled, "
            + "\(shadow.errors) shadow errors (\(shadow.timeouts) timed out), \(shadow.dropped) dropped.</p>"
        html += Self.table(
            ["gate", "condition", "value", "verdict"],
            shadow.gates.map { [$0.name, $0.condition, number($0.value, "%.4g"), $0.passed ? "passed" : "failed"] })
        // The histogram of RBO: one bar per tenth, as inline SVG.
        let most = Double(max(1, shadow.rboHistogram.max() ?? 1))
        var bars = ""
        for (index, count) in shadow.rboHistogram.enumerated() {
            let height = Double(count) / most * 120
            let x = 40 + index * 50
            bars +=
                "<rect x=\"\(x)\" y=\"\(String(format: "%.1f", 130 - height))\" width=\"40\" height=\"\(String(format: "%.1f", height))\" "
                + "fill=\"\(SVGChart.palette[0])\"><title>RBO \(String(format: "%.1f", Double(index) / 10))-\(String(format: "%.1f", Double(index + 1) / 10)): \(count)</title></rect>"
                + "<text x=\"\(x + 20)\" y=\"148\" text-anchor=\"middle\" font-size=\"11\">\(String(format: "%.1f", Double(index) / 10))</text>"
                + "<text x=\"\(x + 20)\" y=\"\(String(format: "%.1f", 126 - height))\" text-anchor=\"middle\" font-size=\"11\">\(count)</text>"
        }
        html +=
            "<h3>Rank-biased overlap (p = 0.9) per request, mean \(number(shadow.meanRBO)); overlap@k mean \(number(shadow.meanOverlap))</h3>"
            + "<svg role=\"img\" aria-label=\"histogram of RBO\" viewBox=\"0 0 560 160\" width=\"560\" height=\"160\">\(bars)</svg>"
        html += Self.table(
            ["colour", "p50 ms", "p95 ms", "movies recommended", "distinct", "top 10 share"],
            [
                [
                    live, number(shadow.liveP50, "%.1f"), number(shadow.liveP95, "%.1f"),
                    String(shadow.live.recommended),
                    String(shadow.live.distinct), number(shadow.live.top10Share.map { $0 * 100 }, "%.1f %%"),
                ],
                [
                    rollout.target, number(shadow.newP50, "%.1f"), number(shadow.newP95, "%.1f"),
                    String(shadow.new.recommended), String(shadow.new.distinct),
                    number(shadow.new.top10Share.map { $0 * 100 }, "%.1f %%"),
                ],
            ])
        if !shadow.samples.isEmpty {
            html += "<h3>The users whose lists changed most</h3>"
            html += Self.table(
                ["user", "RBO", "overlap", "\(live)'s list", "\(rollout.target)'s list"],
                shadow.samples.map {
                    [
                        $0.user, number($0.rbo), number($0.overlap), $0.liveItems.joined(separator: ", "),
                        $0.newItems.joined(separator: ", "),
                    ]
                })
        }
        return html + "</section>"
    }

    private func rollbackSection(_ rollback: Rollback) -> String {
        var html =
            "<section class=\"rollback\"><h2>Rollback</h2><p>At \(HTMLText.escape(Self.timestamp(rollback.at))): \(HTMLText.escape(rollback.reason))</p>"
        if !rollback.actions.isEmpty {
            html += Self.table(
                ["time", "action", "detail"], rollback.actions.map { [Self.timestamp($0.at), $0.kind, $0.detail] })
        }
        return html + "</section>"
    }

    private func gatesSection(_ rollout: Rollout) -> String {
        guard !rollout.gates.isEmpty else { return "" }
        var html = "<section><h2>Gate measurements</h2>"
        for (index, gate) in rollout.gates.enumerated() {
            let values = gate.points.compactMap(\.value)
            let missing = gate.points.count - values.count
            html +=
                "<h3>gate \(HTMLText.escape(gate.gate)) \(HTMLText.escape(gate.condition)) on \(HTMLText.escape(gate.color))</h3>"
            html += "<p class=\"query\"><code>\(HTMLText.escape(gate.query))</code></p>"
            let series = SVGChart.Series(
                name: "gate:\(gate.gate)",
                points: gate.points.compactMap { point in
                    point.value.map {
                        SVGChart.Point(
                            at: point.at, value: $0,
                            label: "\(gate.gate) = \(formatNumber($0)) (\(point.outcome), step \(point.step))",
                            failed: point.outcome == "failure")
                    }
                }, color: SVGChart.color(named: gate.color, index: index))
            let chart = SVGChart(
                id: "gate:\(gate.gate)", start: chartStart(rollout), end: chartEnd(rollout), series: [series],
                rules: gate.bounds.map { .init(value: $0.value, label: "\($0.relation) \(formatNumber($0.value))") },
                markers: rollout.steps.map { ($0.startedOn, "\($0.weight)%") })
            html += chart.render()
            let failures = gate.points.filter { $0.outcome == "failure" }.count
            html +=
                "<p class=\"note\">\(values.count) measurement\(values.count == 1 ? "" : "s") with a value, \(failures) failed"
            html += missing > 0 ? ", \(missing) without a value (no data or an error)" : ""
            html += "</p>"
        }
        return html + "</section>"
    }

    private func judgeSection(_ rollout: Rollout) -> String {
        guard !rollout.judge.isEmpty else { return "" }
        var html = "<section><h2>The judge: new against live</h2>"
        for judge in rollout.judge {
            let e = HTMLText.escape
            html += "<h3>\(e(judge.metric))\(judge.critical ? " (critical)" : "")</h3>"
            let last = judge.points.last
            let margin = last?.margin ?? 0
            let difference = SVGChart.Series(
                name: "judge:\(judge.metric)",
                points: judge.points.map {
                    SVGChart.Point(
                        at: $0.at, value: $0.difference,
                        label:
                            "\(judge.newColor) − \(judge.liveColor) = \(formatNumber($0.difference)) [\(formatNumber($0.lower)), \(formatNumber($0.upper))]: \($0.classification)",
                        failed: $0.classification == "High" || $0.classification == "Low")
                }, color: SVGChart.palette[3])
            let band = SVGChart.Band(
                points: judge.points.map { ($0.at, $0.lower, $0.upper) }, color: SVGChart.palette[3])
            html +=
                "<p class=\"note\">difference of the rates with its always-valid interval; the lines are ± the margin that matters</p>"
            html += SVGChart(
                id: "judge:\(judge.metric)", start: chartStart(rollout), end: chartEnd(rollout), series: [difference],
                bands: [band],
                rules: [
                    .init(value: margin, label: "+\(formatNumber(margin))"),
                    .init(value: -margin, label: "−\(formatNumber(margin))"),
                ],
                markers: rollout.steps.map { ($0.startedOn, "\($0.weight)%") }
            ).render()
            let rates = [(judge.newColor, \JudgePoint.newRate, 0), (judge.liveColor, \JudgePoint.liveRate, 1)].map {
                color, path, index in
                SVGChart.Series(
                    name: "rate:\(judge.metric):\(color)",
                    points: judge.points.compactMap { point in
                        point[keyPath: path].map {
                            SVGChart.Point(at: point.at, value: $0, label: "\(color) \(formatNumber($0))")
                        }
                    }, color: SVGChart.color(named: color, index: index))
            }
            html += "<p class=\"note\">the rate of each colour</p>" + Self.legend(rates)
            html += SVGChart(
                id: "rate:\(judge.metric)", start: chartStart(rollout), end: chartEnd(rollout), series: rates,
                markers: rollout.steps.map { ($0.startedOn, "\($0.weight)%") }
            ).render()
        }
        return html + "</section>"
    }

    private func modelSection() -> String {
        var html = "<section><h2>Model</h2>"
        let models = [("this release", model), ("live before", liveModel)].compactMap { label, model in
            model.map { [label, $0.releaseID, $0.version ?? "-", $0.sha256 ?? "-", $0.color ?? "-"] }
        }
        if models.isEmpty {
            html += "<p>No model was deployed.</p>"
        } else {
            html += Self.table(["", "release", "version", "sha256", "colour"], models)
        }
        if !offlineMetrics.isEmpty {
            html += "<h3>Offline metrics beside the live model's</h3>"
            html += Self.table(
                ["stage", "metric", "this release", "live", "change"],
                offlineMetrics.map { metric in
                    [
                        metric.stage, metric.metric, formatNumber(metric.value),
                        metric.liveValue.map(formatNumber) ?? "-",
                        metric.liveValue.map { String(format: "%+.4g", metric.value - $0) } ?? "-",
                    ]
                })
        }
        return html + "</section>"
    }

    private func stagesSection() -> String {
        guard !stages.isEmpty else { return "" }
        let e = HTMLText.escape
        var rows = ""
        for stage in stages {
            let metrics = stage.metrics.map { "\(e($0.name))=\(e(formatNumber($0.value)))" }.joined(separator: "<br>")
            let gates = stage.gates.map { gate in
                "<span class=\"\(gate.passed ? "ok" : "bad")\">\(e(gate.metric)) \(e(gate.condition)): \(e(gate.value.map(formatNumber) ?? "-"))</span>"
            }.joined(separator: "<br>")
            let digests = (stage.inputs.map { ("in", $0) } + stage.outputs.map { ("out", $0) }).map {
                direction, digest in
                "\(direction) <span title=\"\(e(digest.sha256 ?? "absent"))\">\(e(digest.sha256.map { String($0.prefix(12)) } ?? "absent"))</span> \(e(digest.path))"
            }.joined(separator: "<br>")
            rows +=
                "<tr><td>\(e(stage.name))</td><td class=\"\(Self.badgeClass(stage.status))\">\(e(stage.status))</td>"
            rows +=
                "<td>\(e(Self.seconds(stage.durationSeconds)))</td><td>\(stage.attempts)</td><td>\(metrics)</td><td>\(gates)</td>"
            rows += "<td class=\"digests\">\(digests)</td><td>\(e(stage.note ?? ""))</td></tr>\n"
        }
        let head = ["stage", "status", "duration", "attempts", "metrics", "gates", "digests", "note"].map {
            "<th>\($0)</th>"
        }.joined()
        return "<section><h2>Stages</h2><table><thead><tr>\(head)</tr></thead><tbody>\(rows)</tbody></table></section>"
    }

    private func chartStart(_ rollout: Rollout) -> Date {
        ([rollout.weights.first?.at, rollout.steps.first?.startedOn] + rollout.gates.map { $0.points.first?.at })
            .compactMap { $0 }.min()
            ?? release.startedOn
    }

    private func chartEnd(_ rollout: Rollout) -> Date {
        let ends =
            [release.finishedOn, rollout.events.last?.at, rollout.steps.last?.finishedOn]
            + rollout.gates.map { $0.points.last?.at }
        return ends.compactMap { $0 }.max() ?? release.startedOn
    }

    static func table(_ head: [String], _ rows: [[String]]) -> String {
        let e = HTMLText.escape
        let header = head.map { "<th>\(e($0))</th>" }.joined()
        let body = rows.map { "<tr>" + $0.map { "<td>\(e($0))</td>" }.joined() + "</tr>" }.joined(separator: "\n")
        return "<table><thead><tr>\(header)</tr></thead><tbody>\(body)</tbody></table>"
    }

    static func legend(_ series: [SVGChart.Series]) -> String {
        "<p class=\"legend\">"
            + series.map {
                "<span><i style=\"background:\($0.color)\"></i>\(HTMLText.escape($0.name.split(separator: ":").last.map(String.init) ?? $0.name))</span>"
            }
            .joined() + "</p>"
    }

    static func badgeClass(_ status: String) -> String {
        switch status {
        case "succeeded", "passed", "cached": "ok"
        case "failed", "rolled_back", "interrupted": "bad"
        default: "neutral"
        }
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    static func seconds(_ value: Double) -> String { String(format: "%.1f s", value) }

    /// The page's style sheet, the package resource `Report/report.css`.
    static let style = resourceText("report.css").trimmingCharacters(in: .newlines)

    /// A text file of this module's resources, which the build puts beside the executable
    /// (`orchestrate_Provenance.resources/`). One missing is a broken installation, not an input.
    static func resourceText(_ name: String) -> String {
        guard let url = Bundle.module.resourceURL?.appendingPathComponent(name),
            let text = try? String(contentsOf: url, encoding: .utf8)
        else {
            fatalError(
                "\(name) is missing from \(Bundle.module.bundlePath): copy the .resources folders beside the orchestrate executable with it"
            )
        }
        return text
    }
}
