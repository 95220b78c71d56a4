public import Foundation
import OrchestratorSupport
import PipelineSchema
import Provenance
import StrictYAML

/// The judge's decision on counts given from outside, one look at a time: what
/// `orchestrate judge-counts` (a hidden command) answers for Benchmarks/sensitivity, which
/// resamples users recorded on the real stack and asks the judge's own code what it decides for
/// each look, instead of computing the statistics again.
///
/// A request is one JSON object:
/// - `{"method": "ab", "bad": "decrease", "effect": 0.05, "absolute": false, "new": {"0": [s, t], …},
///   "live": {…}, "covariate": {…}}`: an engagement metric measured between groups of users
///   (successes and trials of each group per colour; with `covariate`, each group's successes and
///   trials before the step, CUPED);
/// - `{"method": "interleaving", "bad": "decrease", "effect": 0.05, "absolute": true, "wins": w,
///   "losses": l, "ties": t}`: the interleaved users who preferred the new colour, the live one, neither;
/// - `{"method": "srm", "weight": 50, "new": {"0": [users], …}, "live": {…}}`: the sample ratio check of
///   the users counted by group at a step giving the new colour `weight` percent (p < 0.001); with
///   `"count": "requests"` of the requests, and `"users": {"new": {…}, "live": {…}}` the users of the
///   same groups at that look (a group of too few users is not tested yet).
///
/// `confidence` is 0.95 unless given. The answer: `{"classification": "Low", "estimate": …,
/// "lower": …, "upper": …, "margin": …, "varianceReduction": …}` or `{"mismatch": …, "pValue": …,
/// "statistic": …}` (`{"mismatch": null}` while a colour's expected count is below 5).
public enum JudgeReplay {
    struct Request: Decodable {
        var method: String
        var bad: String?
        var effect: Double?
        var absolute: Bool?
        var confidence: Double?
        var new: [String: [Double]]?
        var live: [String: [Double]]?
        var covariate: [String: [Double]]?
        var wins: Double?
        var losses: Double?
        var ties: Double?
        var weight: Int?
        var pValue: Double?
        var count: String?
        var users: [String: [String: [Double]]]?
    }

    struct Answer: Encodable {
        var classification: String?
        var estimate: Double?
        var lower: Double?
        var upper: Double?
        var margin: Double?
        var varianceReduction: Double?
        var mismatch: Bool?
        var pValue: Double?
        var statistic: Double?
    }

    /// The answer to one request (a line of JSON), as one line of JSON.
    ///
    /// - Throws: `OrchestratorError(.invalidInput)` for a request that is not one of the above.
    public static func answer(_ line: Data) throws -> Data {
        let request: Request
        do {
            request = try JSONDecoder().decode(Request.self, from: line)
        } catch DecodingError.keyNotFound(let key, _) {
            throw OrchestratorError(.invalidInput, "not a judge request: \(key.stringValue) is missing")
        } catch {
            throw OrchestratorError(
                .invalidInput,
                "not a judge request: a JSON object with method (ab, interleaving or srm) and its counts is expected")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return try encoder.encode(answer(request))
    }

    static func answer(_ request: Request) throws -> Answer {
        func invalid(_ message: String) -> OrchestratorError { OrchestratorError(.invalidInput, message) }
        let confidence = request.confidence ?? 0.95
        guard confidence > 0 && confidence < 1 else { throw invalid("confidence must be between 0 and 1") }
        func pairs(
            _ groups: [String: [Double]]?, _ name: String
        ) throws -> [String: (successes: Double, trials: Double)] {
            guard let groups else { throw invalid("\(request.method) needs \(name)") }
            return try groups.mapValues { value in
                guard value.count == 2, value.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
                    throw invalid("\(name): each group is [successes, trials], two counts of at least 0")
                }
                return (value[0], value[1])
            }
        }
        if request.method == "srm" {
            guard let weight = request.weight, (1...99).contains(weight) else {
                throw invalid("srm needs weight, from 1 to 99")
            }
            func counts(_ groups: [String: [Double]]?, _ name: String) throws -> [String: Double] {
                guard let groups else { throw invalid("srm needs \(name)") }
                return try groups.mapValues { value in
                    guard value.count == 1, value[0].isFinite, value[0] >= 0 else {
                        throw invalid("\(name): each group is [count], one count of at least 0")
                    }
                    return value[0]
                }
            }
            let spec = JudgeSpec(
                replaying: [], confidence: confidence, sampleRatio: .init(users: "", pValue: request.pValue ?? 0.001))
            let count = request.count ?? "users"
            guard count == "users" || count == "requests" else { throw invalid("srm count must be users or requests") }
            let users = try request.users.map { users in
                JudgeRules.RatioCounts(
                    count: "users", new: try counts(users["new"], "users.new"),
                    live: try counts(users["live"], "users.live"))
            }
            let check = JudgeRules(spec: spec).sampleRatio(
                .init(count: count, new: try counts(request.new, "new"), live: try counts(request.live, "live")),
                weight: weight, users: users)
            return Answer(mismatch: check?.mismatch, pValue: check?.pValue, statistic: check?.statistic)
        }
        guard let effect = request.effect, effect > 0, effect.isFinite else { throw invalid("effect must be above 0") }
        guard let bad = JudgeSpec.Metric.Direction(rawValue: request.bad ?? "decrease") else {
            throw invalid("bad must be increase or decrease")
        }
        let absolute = request.absolute ?? false
        let judgement: MetricJudgement
        switch request.method {
        case "ab":
            let covariate = try request.covariate.map { try pairs($0, "covariate") }
            let metric = JudgeSpec.Metric(
                replaying: "engagement", kind: .proportion(successes: "", trials: ""), bad: bad, effect: effect,
                absolute: absolute, units: "user_bucket", cuped: covariate != nil ? .seconds(600) : nil)
            judgement = JudgeRules(spec: JudgeSpec(replaying: [metric], confidence: confidence)).judge(
                metric, new: .grouped(try pairs(request.new, "new")), live: .grouped(try pairs(request.live, "live")),
                covariate: covariate)
        case "interleaving":
            let counts = [request.wins, request.losses, request.ties ?? 0]
            guard let wins = request.wins, let losses = request.losses,
                counts.allSatisfy({ ($0 ?? -1).isFinite && ($0 ?? -1) >= 0 })
            else { throw invalid("interleaving needs wins and losses (and ties), counts of at least 0") }
            let metric = JudgeSpec.Metric(
                replaying: "engagement", kind: .interleaving, bad: bad, effect: effect, absolute: absolute)
            judgement = JudgeRules(spec: JudgeSpec(replaying: [metric], confidence: confidence)).judge(
                metric, new: .preferences(wins: wins, losses: losses, ties: request.ties ?? 0), live: nil)
        default:
            throw invalid("method must be ab, interleaving or srm, not \(request.method)")
        }
        let comparison = judgement.comparisons.first
        return Answer(
            classification: judgement.classification.rawValue, estimate: comparison?.difference,
            lower: comparison?.lower, upper: comparison?.upper, margin: comparison?.margin,
            varianceReduction: judgement.cuped?.varianceReduction)
    }
}
