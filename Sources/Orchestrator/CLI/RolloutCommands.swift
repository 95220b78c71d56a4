import ArgumentParser
import Foundation
import Traffic

struct PipelineArgument: ParsableArguments {
    @Argument(help: "The pipeline file.") var pipeline: String = "pipelines/pipeline.yml"

    func rollout(progress: @escaping @Sendable (String) -> Void) throws -> (Pipeline, Rollout) {
        let loaded = try PipelineLoader().load(pipeline)
        guard let rollout = try PipelineRunner(pipeline: loaded, options: RunOptions(), progress: progress).makeRollout() else {
            throw OrchestratorError(.invalidInput, "\(pipeline) has no deploy section: nothing is deployed")
        }
        return (loaded, rollout)
    }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "What is live, the traffic split in force, each colour's health; exits 1 when unhealthy.")

    @OptionGroup var source: PipelineArgument
    @Option(help: "text or json.") var output: OutputFormat = .text

    struct ColorStatus: Encodable {
        var color: String
        var running: Bool
        var instance: ColorInstance?
        var health: HealthProbe?
        var weight: Int
    }

    struct Report: Encodable {
        var service: String
        var live: DeploymentState.Current?
        var nginxRunning: Bool
        var traffic: TrafficSplit?
        /// Which generation of the split, and whether nginx reported it or it comes from the state file.
        var trafficGeneration: Int?
        var trafficSource: NginxController.Source?
        var colors: [ColorStatus]
        var rolloutInProgress: String?
        var lastRelease: String?
        var healthy: Bool
        var problems: [String]

        enum CodingKeys: String, CodingKey {
            case service, live, traffic, colors, healthy, problems
            case nginxRunning = "nginx_running"
            case trafficGeneration = "traffic_generation"
            case trafficSource = "traffic_source"
            case rolloutInProgress = "rollout_in_progress"
            case lastRelease = "last_release"
        }
    }

    func run() async throws {
        let (pipeline, rollout) = try source.rollout { _ in }
        let current = rollout.state.current()
        let traffic = await rollout.nginx?.currentTraffic()
        let split = traffic?.state.split
        let nginxRunning = await rollout.nginx?.isRunning() == true
        var colors: [ColorStatus] = []
        var problems: [String] = []
        for color in rollout.deploy.colors {
            let instance = await rollout.runtime.instance(of: color)
            let health = instance == nil ? nil : await rollout.runtime.probe(instance!, path: rollout.deploy.health.path)
            colors.append(ColorStatus(color: color, running: instance != nil, instance: instance, health: health, weight: split?.weight(of: color) ?? 0))
            if let weight = split?.weight(of: color), weight > 0, health?.healthy != true {
                problems.append("\(color) receives \(weight)% of traffic but is \(instance == nil ? "not running" : "unhealthy (\(health?.detail ?? ""))")")
            }
        }
        if let current, !(colors.first { $0.color == current.color }?.health?.healthy ?? false) {
            problems.append("the live colour \(current.color) is not healthy")
        }
        if current != nil && rollout.nginx != nil && !nginxRunning { problems.append("nginx is not running") }
        if nginxRunning && traffic?.source != .nginx {
            problems.append("nginx runs but reports no traffic split on its control socket \(rollout.nginx?.config.controlSocket ?? "")")
        }
        var inProgress: String?
        if let progress = rollout.state.inProgress() {
            let alive = kill(progress.pid, 0) == 0
            inProgress = "release \(progress.record.releaseID) \(progress.phase) at \(progress.weight)% (controller pid \(progress.pid) \(alive ? "running" : "gone"))"
            if !alive { problems.append("an interrupted rollout: run orchestrate run or orchestrate rollback to converge") }
        }
        let last = try ReleaseHistory(path: pipeline.history).records().last
        let report = Report(
            service: rollout.deploy.service, live: current, nginxRunning: nginxRunning, traffic: split, trafficGeneration: traffic?.state.generation,
            trafficSource: traffic?.source, colors: colors, rolloutInProgress: inProgress,
            lastRelease: last.map { "\($0.releaseID) \($0.action ?? "release") \($0.outcome)" }, healthy: problems.isEmpty, problems: problems)
        if output == .json {
            try printJSON(report)
        } else {
            print("service \(report.service) (\(pipeline.file))")
            print("live: " + (current.map { "\($0.color) (release \($0.releaseID), model \($0.modelVersion))" } ?? "nothing released yet"))
            var weights = split?.backends.map { "\($0.color) \($0.weight)%" }.joined(separator: ", ") ?? "none applied"
            if let traffic {
                weights += traffic.source == .nginx ? " (generation \(traffic.state.generation), in force)" : " (generation \(traffic.state.generation), last applied, from the state file)"
            }
            print("traffic: \(weights); nginx \(nginxRunning ? "running" : "not running")\(pipeline.traffic.map { " on port \($0.listen)" } ?? "")")
            for color in colors {
                let detail = color.instance.map { "\($0.pid.map { "pid \($0)" } ?? "container") at \($0.address), model \($0.modelVersion), \(color.health?.healthy == true ? "healthy" : "UNHEALTHY") (\(color.health?.detail ?? ""))" } ?? "not running"
                print("  \(color.color.padding(toLength: 6, withPad: " ", startingAt: 0)) \(detail)")
            }
            print("rollout in progress: \(inProgress ?? "none")")
            print("last release: \(report.lastRelease ?? "none")")
            for problem in problems { printError("problem: \(problem)") }
        }
        if !problems.isEmpty { throw ExitCode(ExitStatus.failed) }
    }
}

struct RollbackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback", abstract: "Put the previous promoted release (or a named one) back on a colour and all traffic on it.")

    @OptionGroup var source: PipelineArgument
    @Option(help: "The release to return to (default: the promoted release before the live one).") var to: String?
    @Option(help: "text or json.") var output: OutputFormat = .text

    func run() async throws {
        let (pipeline, rollout) = try source.rollout { printError($0) }
        let history = ReleaseHistory(path: pipeline.history)
        let releaseID = PipelineRunner.newReleaseID()
        let lock = try RunLock(
            historyPath: pipeline.history,
            holder: .init(pid: getpid(), user: PipelineRunner.user, host: PipelineRunner.host, since: Date(), releaseID: releaseID, command: CommandLine.arguments))
        defer { lock.release() }
        _ = try await rollout.recover(history: history)
        var record = ReleaseRecord(
            releaseID: releaseID, startedOn: Date(), finishedOn: nil,
            invocation: .init(trigger: RunOptions.trigger(from: ProcessInfo.processInfo.environment), user: PipelineRunner.user, host: PipelineRunner.host, command: CommandLine.arguments),
            builder: .init(id: "orchestrate", version: PipelineRunner.version), source: .init(gitCommit: nil, gitDirty: nil),
            pipeline: .init(name: pipeline.name, path: pipeline.file, sha256: pipeline.sha256), overrides: [], dryRun: false, stages: [], model: nil,
            outcome: "running")
        record.action = "rollback"
        do {
            try await rollout.rollback(to: to, history: history, record: &record)
            record.outcome = "succeeded"
        } catch let error as OrchestratorError where error.code == .invalidInput {
            throw error
        } catch {
            record.outcome = "failed"
            record.failure = "\(error)"
        }
        record.finishedOn = Date()
        let written = try history.append(record)
        if output == .json { try printJSON(written) }
        if record.outcome != "succeeded" {
            printError("error: \(record.failure ?? "rollback failed")")
            throw ExitCode(ExitStatus.failed)
        }
    }
}

struct AbortCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "abort", abstract: "Ask the rollout in progress (in another process) to roll back now.")

    @OptionGroup var source: PipelineArgument

    func run() async throws {
        try await signalRollout(source, .abort, "abort")
    }
}

struct PromoteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "promote", abstract: "Ask the rollout in progress to end the current step's wait, or with --full to go to 100% now.")

    @OptionGroup var source: PipelineArgument
    @Flag(help: "Skip the remaining steps: all traffic to the new colour once the current step's gates pass.") var full = false

    func run() async throws {
        try await signalRollout(source, full ? .promoteFull : .promote, full ? "promote --full" : "promote")
    }
}

func signalRollout(_ source: PipelineArgument, _ control: DeploymentState.Control, _ name: String) async throws {
    let (_, rollout) = try source.rollout { _ in }
    guard let progress = rollout.state.inProgress(), kill(progress.pid, 0) == 0 else {
        throw OrchestratorError(.stageFailed, "no rollout is in progress for \(rollout.deploy.service)", hint: "orchestrate status shows what is live")
    }
    try rollout.state.request(control)
    print("\(name) requested for release \(progress.record.releaseID) (controller pid \(progress.pid), \(progress.phase) at \(progress.weight)%)")
}
