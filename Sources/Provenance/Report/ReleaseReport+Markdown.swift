import Foundation
import PipelineSchema
import TextSafety

extension ReleaseReport {
    /// The report as Markdown: the same sections as the page, with tables in place of charts.
    /// Every string from the record is escaped (no HTML, no table breaks, no links of its own).
    public func markdown() -> String {
        let m = Self.markdownText
        var lines: [String] = []
        lines.append("# Release \(m(release.releaseID)): \(m(release.outcome))")
        lines.append("")
        lines.append("\(m(release.action)) of **\(m(release.pipeline))** (\(m(release.pipelinePath)))")
        if let failure = release.failure { lines += ["", "**Failure:** \(m(failure))"] }
        lines.append("")
        var facts = [
            ["started", Self.timestamp(release.startedOn)],
            ["finished", release.finishedOn.map(Self.timestamp) ?? "not finished"],
            ["duration", release.durationSeconds.map(Self.seconds) ?? "-"],
            ["trigger", "\(release.trigger) by \(release.user)@\(release.host)"],
            [
                "source",
                release.gitCommit.map { $0 + (release.gitDirty == true ? " (uncommitted changes)" : "") } ?? "-",
            ],
            ["signed by", release.signerKeyID ?? "unsigned"],
        ]
        if let rollout {
            facts.append(["rollout", "\(rollout.live ?? "none") → \(rollout.target), \(rollout.mode) split"])
        }
        lines += Self.markdownTable(["", ""], facts)
        if let grafana { lines += ["", "[Grafana dashboard for this release](<\(grafana.url)>)"] }

        if let rollout {
            lines += ["", "## Traffic weights per colour", ""]
            if rollout.weights.isEmpty {
                lines.append("No traffic was moved.")
            } else {
                let colors = rollout.weights[0].weights.map(\.color)
                lines += Self.markdownTable(
                    ["time"] + colors + ["event"],
                    rollout.weights.map { point in
                        [Self.timestamp(point.at)] + point.weights.map { "\($0.weight)%" } + [point.detail]
                    })
            }
            if !rollout.steps.isEmpty {
                lines += ["", "## Steps", ""]
                lines += Self.markdownTable(
                    ["step", "weight", "started", "held", "verdict", "the rule that decided"],
                    rollout.steps.map { step in
                        [
                            String(step.number), "\(rollout.target) \(step.weight)%", Self.timestamp(step.startedOn),
                            step.durationSeconds.map(Self.seconds) ?? "-", step.verdict, step.rule,
                        ]
                    })
            }
            if let rollback = rollout.rollback {
                lines += ["", "## Rollback", "", "At \(Self.timestamp(rollback.at)): \(m(rollback.reason))", ""]
                lines += Self.markdownTable(
                    ["time", "action", "detail"], rollback.actions.map { [Self.timestamp($0.at), $0.kind, $0.detail] })
            }
            if let answers = rollout.gateAnswers, !answers.isEmpty {
                lines += ["", "## Webhook gates: who answered, and when", ""]
                lines += Self.markdownTable(
                    ["gate", "step", "answer", "by", "at"],
                    answers.map { [$0.gate, $0.point, $0.answer, $0.by, Self.timestamp($0.at)] })
            }
            if let shadow = rollout.shadow {
                lines += ["", "## Shadow stage", ""]
                lines += shadow.lines(target: rollout.target, live: rollout.live ?? "live", samples: 10).map {
                    "    " + $0
                }
            }
            if !rollout.gates.isEmpty {
                lines += ["", "## Gate measurements"]
                for gate in rollout.gates {
                    lines += ["", "### gate \(m(gate.gate)) \(m(gate.condition)) on \(m(gate.color))", ""]
                    lines += Self.markdownTable(
                        ["time", "step", "value", "outcome"],
                        gate.points.map {
                            [
                                Self.timestamp($0.at), String($0.step), $0.value.map(formatNumber) ?? ($0.error ?? "-"),
                                $0.outcome,
                            ]
                        })
                }
            }
            if !rollout.judge.isEmpty {
                lines += ["", "## The judge: new against live"]
                for judge in rollout.judge {
                    lines += ["", "### \(m(judge.metric))\(judge.critical ? " (critical)" : "")", ""]
                    lines += Self.markdownTable(
                        [
                            "time", "step", judge.newColor, judge.liveColor, "difference", "interval", "margin",
                            "verdict",
                        ],
                        judge.points.map { point in
                            [
                                Self.timestamp(point.at), String(point.step), point.newRate.map(formatNumber) ?? "-",
                                point.liveRate.map(formatNumber) ?? "-",
                                formatNumber(point.difference),
                                "[\(formatNumber(point.lower)), \(formatNumber(point.upper))]",
                                formatNumber(point.margin),
                                point.classification,
                            ]
                        })
                }
            }
        }

        lines += ["", "## Model", ""]
        let models = [("this release", model), ("live before", liveModel)].compactMap { label, model in
            model.map { [label, $0.releaseID, $0.version ?? "-", $0.sha256 ?? "-", $0.color ?? "-"] }
        }
        lines +=
            models.isEmpty
            ? ["No model was deployed."] : Self.markdownTable(["", "release", "version", "sha256", "colour"], models)
        if !offlineMetrics.isEmpty {
            lines += ["", "### Offline metrics beside the live model's", ""]
            lines += Self.markdownTable(
                ["stage", "metric", "this release", "live"],
                offlineMetrics.map {
                    [$0.stage, $0.metric, formatNumber($0.value), $0.liveValue.map(formatNumber) ?? "-"]
                })
        }
        if !stages.isEmpty {
            lines += ["", "## Stages", ""]
            lines += Self.markdownTable(
                ["stage", "status", "duration", "attempts", "metrics", "gates", "outputs", "note"],
                stages.map { stage in
                    [
                        stage.name, stage.status, Self.seconds(stage.durationSeconds), String(stage.attempts),
                        stage.metrics.map { "\($0.name)=\(formatNumber($0.value))" }.joined(separator: " "),
                        stage.gates.map {
                            "\($0.metric) \($0.condition): \($0.value.map(formatNumber) ?? "-") \($0.passed ? "ok" : "FAILED")"
                        }.joined(
                            separator: "; "),
                        stage.outputs.map { "\($0.path) \($0.sha256.map { String($0.prefix(12)) } ?? "absent")" }
                            .joined(separator: " "), stage.note ?? "",
                    ]
                })
        }
        if let rollout, !rollout.events.isEmpty {
            lines += ["", "## Events", ""]
            lines += Self.markdownTable(
                ["time", "event", "detail"], rollout.events.map { [Self.timestamp($0.at), $0.kind, $0.detail] })
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Text that Markdown shows as written: no HTML, emphasis, links or table breaks of its own.
    /// Control characters are written out first (`OutsideText`), so none reaches a terminal that
    /// shows the file.
    static func markdownText(_ text: String) -> String {
        var result = ""
        for character in OutsideText.escaped(text) {
            switch character {
            case "\n", "\r": result += " "
            case "|": result += "\\|"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "&": result += "&amp;"
            case "\\", "`", "*", "_", "[", "]", "#", "!": result += "\\\(character)"
            default: result.append(character)
            }
        }
        return result
    }

    static func markdownTable(_ head: [String], _ rows: [[String]]) -> [String] {
        let m = markdownText
        return ["| " + head.map(m).joined(separator: " | ") + " |", "|" + head.map { _ in "---|" }.joined()]
            + rows.map { "| " + $0.map(m).joined(separator: " | ") + " |" }
    }
}
