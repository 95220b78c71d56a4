import ArgumentParser
import CommandLineSupport
import DeploymentRuntimes
import Foundation
import Orchestrator
import OrchestratorSupport
import PipelineSchema
import Provenance
import Synchronization
import TextSafety
import Traffic

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract:
            "What is live, what nginx and each colour actually serve, a run in progress; exits 1 when anything disagrees or is unhealthy."
    )

    @OptionGroup var source: PipelineArgument
    @Option(help: "text or json.") var output: OutputFormat = .text
    @Flag(
        help: """
            Follow the rollout in progress (waiting for one if none is): redrawn every second on a terminal, \
            a line per change otherwise; exits 0 when the release succeeds, 1 when it is rolled back, fails \
            or is interrupted, 130 on Ctrl-C (the rollout goes on).
            """)
    var watch = false

    func validate() throws {
        if watch && output == .json { throw ValidationError("--watch writes for people: leave out --output json") }
    }

    func run() async throws {
        let controller = try source.controller { _ in }
        if watch {
            let printer = WatchPrinter(
                terminal: isatty(STDOUT_FILENO) == 1,
                service: controller.pipeline.deploy?.service ?? controller.pipeline.name)
            let code = try await controller.watch { printer.show($0) }
            if code != ExitStatus.success { throw ExitCode(code) }
            return
        }
        let status = try await controller.status()
        if output == .json {
            try printJSON(status)
        } else {
            print("service \(status.service) (\(controller.pipeline.file))")
            if let error = status.liveError {
                print("live: UNKNOWN: \(error)")
            } else {
                print(
                    "live: "
                        + (status.live.map { "\($0.color) (release \($0.releaseID), model \($0.modelVersion))" }
                            ?? "nothing released yet"))
            }
            var weights =
                status.traffic?.backends.map { "\($0.color) \($0.weight)%" }.joined(separator: ", ") ?? "none applied"
            if let generation = status.trafficGeneration {
                weights +=
                    status.trafficSource == .nginx
                    ? " (generation \(generation), in force)"
                    : " (generation \(generation), last applied, from the state file)"
            }
            let nginx =
                status.nginxRunning
                ? "running"
                : status.nginxOrphanedWorkers.isEmpty
                    ? "not running"
                    : "MASTER GONE, orphaned worker pid \(status.nginxOrphanedWorkers.map(String.init).joined(separator: ", ")) serving"
            print(
                "traffic in force: \(weights); nginx \(nginx)\(controller.pipeline.traffic.map { " on port \($0.listen)" } ?? "")"
            )
            for color in status.colors {
                let detail =
                    color.instance.map {
                        "\($0.pid.map { "pid \($0)" } ?? $0.placement ?? "container") at \($0.addresses.joined(separator: ", ")), model \($0.modelVersion), \(color.health?.healthy == true ? "healthy" : "UNHEALTHY") (\(color.health?.detail ?? ""))"
                    } ?? "not running"
                print("  \(color.color.padding(toLength: 6, withPad: " ", startingAt: 0)) \(color.weight)%  \(detail)")
            }
            print("run in progress: \(status.runInProgress ?? "none")")
            print("last release: \(status.lastRelease ?? "none")")
            if let policy = status.policy {
                print("policy:")
                policy.lines.forEach { print($0) }
            }
            for problem in status.problems { printError("problem: \(problem)") }
        }
        if !status.healthy { throw ExitCode(ExitStatus.failed) }
    }
}

struct RollbackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Put the previous promoted release (or a named one) back on a colour and all traffic on it.",
        discussion: """
            An interrupted run is converged first. When that alone returned traffic to the live release \
            (the interrupted release was never promoted), nothing more is rolled back unless --to names \
            a release: recovery and rollback are separate.
            """)

    @OptionGroup var source: PipelineArgument
    @Option(help: "The release to return to (default: the promoted release before the live one).") var to: String?
    @Option(help: "text or json.") var output: OutputFormat = .text

    func run() async throws {
        let record = try await source.controller(signing: true).rollback(to: to)
        if output == .json { try printJSON(record) }
        if record.outcome == .failed {
            printError("error: \(record.failure ?? "rollback failed")")
            throw ExitCode(ExitStatus.failed)
        }
    }
}

struct RecoverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover",
        abstract: "Converge a run that a killed controller left behind (the next run does it too), and record it.",
        discussion: """
            Traffic and processes are converged even on a full disk; when the record cannot be written \
            then, it exits 5 and keeps the run: run it again once there is space.
            """)

    @OptionGroup var source: PipelineArgument
    @Flag(help: "Print what would be done (the plan recover carries out) and change nothing.") var dryRun = false
    @Option(help: "text or json.") var output: OutputFormat = .text

    func run() async throws {
        if dryRun {
            let plan = try await source.controller(signing: false).recoveryPlan()
            if output == .json {
                try printJSON(plan)
            } else if let plan {
                print(
                    "recover release \(plan.releaseID ?? "(unknown: its state is unreadable)")\(plan.phase.map { " (it stopped while \($0.rawValue))" } ?? ""):"
                )
                for action in plan.actions { print("  - \(action)") }
            } else {
                print("no run was interrupted: nothing to converge")
            }
            return
        }
        let record = try await source.controller(signing: true).recover()
        if output == .json {
            try printJSON(record)
        } else if record == nil {
            print("nothing to recover")
        }
    }
}

struct RepairCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repair",
        abstract:
            "Make current.json and nginx agree with what serves: rewrite an unreadable current.json from the colour that carries the traffic, point nginx back at the live colour."
    )

    @OptionGroup var source: PipelineArgument
    @Flag(help: "Show what would be done and change nothing.") var dryRun = false
    @Option(help: "text or json.") var output: OutputFormat = .text

    func run() async throws {
        let report = try await source.controller(signing: true).repair(dryRun: dryRun)
        if output == .json {
            try printJSON(report)
        } else if report.actions.isEmpty {
            print("nothing to repair: current.json, nginx and the colours agree")
        } else {
            for action in report.actions { print("\(report.applied ? "done" : "would"): \(action)") }
        }
    }
}

struct AbortCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "abort",
        abstract:
            "Ask the rollout in progress (in another process) to roll back now; during the drain it returns to the old colour."
    )

    @OptionGroup var source: PipelineArgument
    @OptionGroup var requester: Requester

    func run() async throws {
        let run = try source.controller().request(.abort, by: requester.name)
        print(
            "abort requested for release \(run.releaseID) (controller pid \(run.pid), \(run.phase.rawValue) at \(run.weight)%)"
        )
    }
}

struct PromoteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "promote",
        abstract: "Ask the rollout in progress to end the current step's wait, or with --full to go to 100% now.")

    @OptionGroup var source: PipelineArgument
    @Flag(help: "Skip the remaining steps: all traffic to the new colour once the current step's gates pass.")
    var full = false
    @OptionGroup var requester: Requester

    func run() async throws {
        let run = try source.controller().request(full ? .promoteFull : .promote, by: requester.name)
        print(
            "\(full ? "promote --full" : "promote") requested for release \(run.releaseID) (controller pid \(run.pid), \(run.phase.rawValue) at \(run.weight)%)"
        )
    }
}

struct ApproveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve",
        abstract:
            "Answer the webhook gate the rollout in progress waits for (confirm-rollout, confirm-traffic-increase, confirm-promotion) by hand.",
        discussion: "Exits 1 when no rollout is in progress or it waits for no gate; `promote` answers a gate too.")

    @OptionGroup var source: PipelineArgument
    @OptionGroup var requester: Requester

    func run() async throws {
        let run = try source.controller().request(.approve, by: requester.name)
        print(
            "approve requested for release \(run.releaseID) (controller pid \(run.pid), \(run.waiting ?? run.phase.rawValue) at \(run.weight)%)"
        )
    }
}

/// Who asks the rollout in progress: recorded and told when the request answers a webhook gate.
struct Requester: ParsableArguments {
    @Option(help: "Who answers (recorded in the release and told to notify: receivers); default $USER.")
    var by: String?

    var name: String {
        if let by, !by.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return by }
        if let user = ProcessInfo.processInfo.environment["USER"], !user.isEmpty { return user }
        return "uid \(getuid())"
    }
}

/// Writes what `status --watch` sees: the whole view redrawn on a terminal, a line when it
/// changes otherwise.
final class WatchPrinter: Sendable {
    let terminal: Bool
    let service: String
    private let last = Mutex<String?>(nil)

    init(terminal: Bool, service: String) {
        self.terminal = terminal
        self.service = service
    }

    func show(_ frame: ReleaseController.WatchFrame) {
        let clear = "\u{1B}[H\u{1B}[2J"
        switch frame {
        case .waiting:
            let text = "no rollout in progress for \(service): waiting for one (Ctrl-C to stop)"
            if terminal { Swift.print(clear + text) } else if changed(text) { print(text) }
        case .running(let view):
            if terminal {
                Swift.print(clear + OutsideText.escaped(view.lines().joined(separator: "\n"), lines: .kept))
            } else if changed(view.line) {
                print("\(Date().formatted(.iso8601))  \(view.line)")
            }
        case .finished(let record):
            print("release \(record.releaseID): \(record.outcome.rawValue)\(record.failure.map { ": \($0)" } ?? "")")
        case .gone(let view):
            print(
                "release \(view.releaseID): its controller (pid \(view.controllerPID)) is gone without a record; `orchestrate recover` converges it"
            )
        }
        fflush(nil)  // every stream: a pipe sees each line at once
    }

    private func changed(_ text: String) -> Bool {
        last.withLock { last in
            defer { last = text }
            return last != text
        }
    }
}
