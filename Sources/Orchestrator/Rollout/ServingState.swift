public import DeploymentRuntimes
import Foundation
import OrchestratorSupport
import Provenance
import StrictYAML
public import Traffic

/// What actually serves, as nginx and the runtime say, checked against the recorded live
/// release. A release starts only when they agree: a state file that says one thing while
/// nginx sends traffic elsewhere is reported, never resolved by guessing.
public struct ServingState: Sendable {
    public struct Color: Sendable, Codable {
        public var color: String
        public var instance: ColorInstance?
        public var health: HealthProbe?
        /// Percent of traffic nginx sends it.
        public var weight: Int
        /// The addresses nginx's upstream lists for it.
        public var upstream: [String]?
    }

    public struct Problem: Sendable, Codable, CustomStringConvertible {
        /// What the problem stops: `unreachable` (exit 4) or `inconsistent-state` (exit 2).
        public var code: String
        public var message: String
        public var description: String { message }

        var error: OrchestratorError {
            OrchestratorError(
                code == "unreachable" ? .unreachable : .inconsistentState, message + "; nothing was changed",
                hint:
                    "`orchestrate status` shows what serves; `orchestrate repair` makes nginx and current.json agree with the healthy live colour, `orchestrate rollback --to RELEASE` redeploys a release"
            )
        }
    }

    /// Whether nginx's master (or its container) runs.
    public var nginxRunning: Bool
    /// Workers that serve without their master (it was killed): their split is in force, but
    /// nothing replaces one that dies.
    public var nginxOrphanedWorkers: [Int32] = []
    /// Whether traffic flows through nginx: its master runs, or orphaned workers serve.
    public var nginxServing: Bool { nginxRunning || !nginxOrphanedWorkers.isEmpty }
    /// The split nginx has in force, or (nginx not running) the one it would start with; nil: none
    /// applied yet, or no traffic section.
    public var traffic: TrafficSplit?
    /// Where `traffic` comes from, and its generation: nginx's control socket, or (nginx not
    /// answering) the state file of the last split applied.
    public var trafficReport: NginxController.Report?
    public var colors: [Color]

    /// Looks at nginx and every colour.
    static func observe(
        colors: [String], runtime: any DeploymentRuntime, nginx: NginxController?, healthPath: String
    ) async -> ServingState {
        let nginxRunning = await nginx?.isRunning() ?? false
        let report = await nginx?.currentTraffic()
        let orphans = report?.orphanedWorkers ?? []
        let serving = nginxRunning || (!orphans.isEmpty && report?.source == .nginx)
        let split = report?.state.split
        var observed: [Color] = []
        for color in colors {
            var instance = await runtime.instance(of: color)
            var health: HealthProbe?
            if runtime.instancesMove, let running = instance {
                // Tasks on several hosts: the colour serves with the ones that answer, as long as
                // there are enough of them.
                let probes = await runtime.probeEach(running, path: healthPath)
                let answering = probes.filter(\.probe.healthy).map(\.address)
                instance?.addresses = answering.isEmpty ? running.addresses : answering
                health = HealthProbe(
                    healthy: answering.count >= runtime.minimumHealthyInstances,
                    detail: "\(answering.count) of \(probes.count) tasks answer 200"
                        + probes.filter { !$0.probe.healthy }.map { "; \($0.address): \($0.probe.detail)" }.joined())
            } else if let instance {
                health = await runtime.probe(instance, path: healthPath)
            }
            observed.append(
                Color(
                    color: color, instance: instance, health: health,
                    weight: serving ? split?.weight(of: color) ?? 0 : 0,
                    upstream: split?.backends.first { $0.color == color }?.addresses))
        }
        return ServingState(
            nginxRunning: nginxRunning, nginxOrphanedWorkers: orphans, traffic: split, trafficReport: report,
            colors: observed)
    }

    /// Colours that run while nginx sends them no traffic, other than the live one and those kept
    /// on purpose (serving one of `keptModels`). Asked only when no run is in progress: such a
    /// colour was left by a deploy that was interrupted or a controller that was killed, and
    /// serves a model nobody approved.
    func strays(live: LiveRelease?, keptModels: Set<String>) -> [Color] {
        colors.filter { color in
            guard color.color != live?.color, color.weight == 0, let instance = color.instance else { return false }
            return !keptModels.contains(instance.modelSHA256)
        }
    }

    /// The problem `status` reports for a stray colour.
    static func strayProblem(_ color: Color) -> Problem {
        let instance = color.instance
        let place = instance.map { $0.pid.map { "pid \($0)" } ?? $0.addresses.joined(separator: ", ") } ?? ""
        return Problem(
            code: "inconsistent-state",
            message:
                "\(color.color) runs (\(place), model \(instance?.modelSHA256.prefix(12) ?? "")) but nginx sends it no traffic and no run owns it "
                + "(left by an interrupted deploy or a killed controller): `orchestrate repair` stops it")
    }

    /// Where what serves disagrees with the recorded live release.
    func problems(live: LiveRelease?, trafficConfigured: Bool) -> [Problem] {
        var problems: [Problem] = []
        guard let live else {
            for color in colors where color.weight > 0 {
                problems.append(
                    Problem(
                        code: "inconsistent-state",
                        message:
                            "no release is recorded as live (current.json is absent) but nginx sends \(color.weight)% of traffic to \(color.color)"
                    ))
            }
            return problems
        }
        let serving = colors.first { $0.color == live.color }
        if let instance = serving?.instance {
            if instance.modelSHA256 != live.modelSHA256 {
                problems.append(
                    Problem(
                        code: "inconsistent-state",
                        message:
                            "the live release \(live.releaseID) is model \(live.modelSHA256.prefix(12)) on \(live.color), but \(live.color) serves model \(instance.modelSHA256.prefix(12))"
                    ))
            } else if serving?.health?.healthy != true {
                problems.append(
                    Problem(
                        code: "unreachable",
                        message:
                            "the live colour \(live.color) (release \(live.releaseID)) is not healthy (\(serving?.health?.detail ?? "no answer"))"
                    ))
            } else if nginxServing, let upstream = serving?.upstream, Set(upstream) != Set(instance.addresses) {
                problems.append(
                    Problem(
                        code: "inconsistent-state",
                        message:
                            "nginx sends \(live.color)'s traffic to \(upstream.joined(separator: ", ")) but its healthy instances are at \(instance.addresses.joined(separator: ", ")) (tasks moved)"
                    ))
            }
        } else {
            problems.append(
                Problem(
                    code: "unreachable",
                    message: "the live colour \(live.color) (release \(live.releaseID)) is not running"))
        }
        if trafficConfigured {
            if nginxServing && trafficReport?.source != .nginx {
                problems.append(
                    Problem(
                        code: "unreachable", message: "nginx runs but reports no traffic split on its control socket"))
            } else if !nginxServing {
                problems.append(
                    Problem(
                        code: "unreachable",
                        message: "nginx is not running: no traffic reaches the live colour \(live.color)"))
            } else {
                for color in colors where color.color != live.color && color.weight > 0 {
                    problems.append(
                        Problem(
                            code: "inconsistent-state",
                            message:
                                "nginx sends \(color.weight)% of traffic to \(color.color), which is not the live colour \(live.color)"
                        ))
                }
            }
        }
        return problems
    }

    /// nginx's master is gone while its workers serve on. Not a disagreement about what serves
    /// (the split in force is read from the workers and checked like any other), so a run does
    /// not stop on it: its first traffic step replaces them. `status` reports it.
    var orphanProblem: String? {
        guard !nginxOrphanedWorkers.isEmpty else { return nil }
        let pids = nginxOrphanedWorkers.map(String.init).joined(separator: ", ")
        let split =
            trafficReport?.source == .nginx
            ? traffic.map { "they serve \(Self.describe($0)) (read from their control socket)" } : nil
        return
            "nginx's master is gone (killed?) but its orphaned worker\(nginxOrphanedWorkers.count == 1 ? "" : "s") (pid \(pids)) still hold the port: "
            + (split ?? "their split cannot be read")
            + "; nothing replaces a worker that dies and nginx cannot be reloaded"
    }

    /// `blue 50%, green 50%`.
    static func describe(_ split: TrafficSplit) -> String {
        split.backends.map { "\($0.color) \($0.weight)%" }.joined(separator: ", ")
    }
}
