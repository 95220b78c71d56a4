import Foundation
import PipelineSchema
import Provenance
import StrictYAML

/// The records a plan reads, from a history of any length: for each stage, the newest succeeded
/// release that ran it (whose outputs the stage may reuse), and for a movie log ingest the newest
/// one that reported its rating shares. Given the history newest first, it says when it has them
/// all, so that planning reads only the end of a long history; the planner decides from these
/// exactly as from every record.
struct PlanningRecords {
    /// Stages whose newest success is still to be found.
    private var withoutSuccess: Set<String>
    /// Ingest stages whose newest rating shares are still to be found.
    private var withoutShares: Set<String>
    /// Stages gated relative to the last promoted releases, with how many of them are still to be found.
    private var historyWanted: [String: Int]
    private var newestFirst: [ReleaseRecord] = []

    /// PromQL gates relative to the last promoted releases, with how many are still to be found.
    private var gateHistoryWanted: [String: Int]

    init(stages: [Stage], gates: [PromQLGate] = []) {
        gateHistoryWanted = Dictionary(
            gates.compactMap { gate in gate.history.map { (gate.name, $0.last) } }, uniquingKeysWith: Swift.max)
        historyWanted = Dictionary(
            uniqueKeysWithValues: stages.compactMap { stage in
                stage.gate.compactMap(\.history?.last).max().map { (stage.name, $0) }
            })
        withoutSuccess = Set(stages.map(\.name))
        withoutShares = Set(
            stages.compactMap { stage in
                stage.builtin == .ingest ? stage.name : nil
            })
    }

    /// Whether every record the plan can read has been found.
    var isComplete: Bool {
        withoutSuccess.isEmpty && withoutShares.isEmpty && historyWanted.isEmpty && gateHistoryWanted.isEmpty
    }

    /// The records kept, oldest first.
    var records: [ReleaseRecord] { newestFirst.reversed() }

    /// Looks at the next older record; keeps it when it is the newest answer to a question of
    /// the planner (`Planner.lastSuccess`, `Planner.baselineShares`).
    mutating func consider(_ record: ReleaseRecord) {
        guard record.outcome == .succeeded && !record.dryRun else { return }
        var answers = false
        for name in withoutSuccess
        where record.stages.contains(where: { $0.name == name && ($0.status == .succeeded || $0.status == .cached) }) {
            withoutSuccess.remove(name)
            answers = true
        }
        for name in withoutShares {
            guard let entry = record.stages.first(where: { $0.name == name }),
                (1...5).allSatisfy({ entry.metrics["rating_share_\($0)"] != nil })
            else { continue }
            withoutShares.remove(name)
            answers = true
        }
        if Planner.isPromotedRelease(record) {
            for (name, wanted) in historyWanted where record.stages.contains(where: { $0.name == name }) {
                answers = true
                historyWanted[name] = wanted > 1 ? wanted - 1 : nil
            }
            for (name, wanted) in gateHistoryWanted
            where record.rollout?.steps.contains(where: { $0.measurements.contains { $0.gate == name } }) == true {
                answers = true
                gateHistoryWanted[name] = wanted > 1 ? wanted - 1 : nil
            }
        }
        if answers { newestFirst.append(record) }
    }

    /// The records the plan of `stages` reads, from the end of `history` back only as far as needed.
    static func read(
        for stages: [Stage], gates: [PromQLGate] = [], from history: ReleaseHistory
    ) throws -> [ReleaseRecord] {
        var planning = PlanningRecords(stages: stages, gates: gates)
        guard !planning.isComplete else { return [] }
        try history.forEachLineNewestFirst { line in
            if let record = line.record { planning.consider(record) }
            return !planning.isComplete
        }
        return planning.records
    }
}
