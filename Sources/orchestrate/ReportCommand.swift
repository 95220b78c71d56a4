import ArgumentParser
import CommandLineSupport
import Foundation
import Orchestrator
import OrchestratorSupport
import Provenance

/// `orchestrate report`: a release's report (HTML with charts, Markdown, JSON) from its record.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a release's report: report.html (charts, no network needed), report.md and report.json.",
        discussion: """
            Taken from the release's record in the history: traffic weights per colour over time, every \
            gate and judge measurement against its bound, each step's verdict and the rule that decided \
            it, the stages, the model's offline metrics beside the live one's, what a rollback did, and \
            a Grafana link for the time range. Written to --out (default: reports/RELEASE_ID/ beside \
            the history, where orchestrate run writes it). Exit 2 for a release that is not in the \
            history, 1 for a folder that cannot be written.
            """)

    @Argument(help: "The release id (orchestrate history lists them); --last for the newest.") var release: String?
    @Flag(help: "The newest release.") var last = false
    @OptionGroup var source: HistoryOptions
    @Option(help: "The folder to write the report to (default: reports/RELEASE_ID beside the history).") var out:
        String?
    @Option(
        help:
            "Grafana's base URL for the dashboard link (default: ORCHESTRATE_GRAFANA_URL, else http://localhost:3000).")
    var grafanaURL: String?
    @Option(help: "text: the files written; json: the report itself on stdout (the files are written too).") var output:
        OutputFormat = .text

    func validate() throws {
        if (release == nil) == !last { throw ValidationError("name a release, or give --last") }
        if let grafanaURL, ReleaseReport.GrafanaLink(baseURL: grafanaURL, from: Date(), to: Date()) == nil {
            throw ValidationError("--grafana-url must be an http or https URL, e.g. http://grafana.example:3000")
        }
    }

    func run() async throws {
        let history = try source.resolve()
        try history.checkIsHistory()
        if let torn = try history.tornTail() {
            printError("warning: \(history.path):\(torn.number): \(torn.problem ?? "")")
        }
        guard let found = try ReleaseReport.find(in: history, where: { last ? !$0.dryRun : $0.releaseID == release })
        else {
            throw OrchestratorError(
                .invalidInput,
                last ? "no release in \(history.path)" : "release \(release ?? "") is not in \(history.path)",
                hint: "orchestrate history lists the releases")
        }
        let record = found.record
        let report = ReleaseReport(
            record: record, liveRelease: found.live, grafana: grafanaURL ?? ReleaseReport.GrafanaLink.defaultBaseURL())
        let folder = try out ?? ReleaseReport.folder(history: history.path, releaseID: record.releaseID)
        let written = try report.write(to: folder)
        if output == .json {
            print(String(decoding: try report.json(), as: UTF8.self))
        } else {
            print("report of \(record.releaseID) (\(report.release.outcome)):")
            written.forEach { print("  \($0)") }
        }
    }
}
