/// What the controller concludes while a traffic step holds, from a look once a second at nginx
/// and at both colours: whether the step goes on, its split must be put in force again, or it
/// ends because a colour that carries traffic is lost. Decided apart from the looking (the
/// executor looks and carries the decision out), so the rules are tested as plain values.
struct StepWatch: Sendable, Equatable {
    /// One colour as a look saw it.
    enum Colour: Sendable, Equatable {
        /// The runtime says it does not run (its process exited, its tasks are gone).
        case gone
        /// It runs, but no instance answered the health check; `detail` says what they answered.
        case silent(detail: String)
        /// The addresses of its instances that answered the health check.
        case serving([String])
    }

    struct Look: Sendable, Equatable {
        /// Whether nginx's master (or its container) runs.
        var nginxRunning: Bool
        /// Workers of a killed master that serve on (for the message).
        var orphanedWorkers: [Int32] = []
        var target: Colour
        /// The live colour; nil when the step sends it nothing (100 %) or there is none.
        var live: Colour?
        /// The addresses nginx sends each colour's share to.
        var upstream: [String: [String]]
    }

    enum Decision: Sendable, Equatable {
        case hold
        /// Put the step's split in force again, for the reason given (nginx's master was lost, a
        /// colour's instances moved).
        case reapply(String)
        /// The step fails: the new colour is lost.
        case targetLost(String)
        /// The step fails: the live colour is lost, so the rollback cannot simply send its share back.
        case liveLost(String)
    }

    var target: String
    var live: String?
    var weight: Int
    /// The fewest healthy instances the new colour may have (`minHealthyReplicas`).
    var minimumHealthy = 1
    /// Whether instances move while they run (Swarm tasks): the upstream then follows the
    /// addresses that answer.
    var instancesMove = false
    /// Looks in a row in which a running colour answered no health check before it counts as lost:
    /// a loaded machine may miss one probe, a colour that hangs misses them all.
    var silentLooks = 3
    private(set) var silentTarget = 0
    private(set) var silentLive = 0

    init(target: String, live: String?, weight: Int, minimumHealthy: Int = 1, instancesMove: Bool = false) {
        self.target = target
        self.live = live
        self.weight = weight
        self.minimumHealthy = minimumHealthy
        self.instancesMove = instancesMove
    }

    mutating func decide(_ look: Look) -> Decision {
        if let live, let seen = look.live {
            switch seen {
            case .gone:
                return .liveLost("the live colour \(live) stopped running at \(weight)%")
            case .silent(let detail):
                silentLive += 1
                if silentLive >= silentLooks {
                    return .liveLost(
                        "the live colour \(live) answered no health check \(silentLive) times in a row at \(weight)% (\(detail))"
                    )
                }
            case .serving:
                silentLive = 0
            }
        }
        switch look.target {
        case .gone:
            return .targetLost("\(target) stopped running at \(weight)%")
        case .silent(let detail):
            silentTarget += 1
            if silentTarget >= silentLooks {
                return .targetLost(
                    "\(target) answered no health check \(silentTarget) times in a row at \(weight)% (\(detail))")
            }
        case .serving(let addresses):
            silentTarget = 0
            if addresses.count < minimumHealthy {
                return .targetLost(
                    "\(target) has \(addresses.count) healthy instances, fewer than the \(minimumHealthy) required (minHealthyReplicas)"
                )
            }
        }
        if !look.nginxRunning {
            let orphans = look.orphanedWorkers.map(String.init).joined(separator: ", ")
            return .reapply(
                orphans.isEmpty
                    ? "nginx was not running"
                    : "nginx's master was gone and its orphaned workers (pid \(orphans)) served alone")
        }
        guard instancesMove else { return .hold }
        var moved: [String] = []
        if case .serving(let addresses) = look.target, Set(addresses) != Set(look.upstream[target] ?? []) {
            moved.append(target)
        }
        if let live, case .serving(let addresses)? = look.live, Set(addresses) != Set(look.upstream[live] ?? []) {
            moved.append(live)
        }
        return moved.isEmpty ? .hold : .reapply("instances moved")
    }
}
