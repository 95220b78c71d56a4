import Foundation
import Testing

@testable import Orchestrator
@testable import OrchestratorSupport

/// `orchestrate judge-counts` answers what the judge's own code decides for counts given as JSON
/// (Benchmarks/sensitivity): the same classification, interval and check as `JudgeRules`.
@Suite struct JudgeReplayTests {
    func answer(_ request: String) throws -> [String: Any] {
        let data = try JudgeReplay.answer(Data(request.utf8))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test func interleavingPreferencesAreJudgedAsTheJudgeDoes() throws {
        // InterleavingJudgeTests: 140 of 400 users preferring the new colour, margin 0.05, is Low.
        let low = try answer(
            #"{"method":"interleaving","bad":"decrease","effect":0.05,"absolute":true,"#
                + #""wins":140,"losses":260,"ties":0}"#)
        #expect(low["classification"] as? String == "Low")
        #expect(abs((low["estimate"] as? Double ?? 0) - (140.0 / 400 - 0.5)) < 1e-12)
        let pass = try answer(
            #"{"method":"interleaving","effect":0.05,"absolute":true,"wins":1000,"losses":1000}"#)
        #expect(pass["classification"] as? String == "Pass")
    }

    @Test func groupedEngagementWithAndWithoutACovariate() throws {
        // 16 groups per colour; the new colour converts 2 % of 1,000 trials a group, live 4 %.
        let groups = { (rate: Double) in
            (0..<16).map { #""\#($0)":[\#(rate * 1000 + Double($0 % 3)),1000]"# }.joined(separator: ",")
        }
        let request =
            #"{"method":"ab","bad":"decrease","effect":0.1,"new":{\#(groups(20))},"live":{\#(groups(40))}"#
        let plain = try answer(request + "}")
        #expect(plain["classification"] as? String == "Low")
        #expect(plain["varianceReduction"] == nil)
        let cuped = try answer(request + #","covariate":{\#(groups(30))}}"#)
        #expect(cuped["classification"] as? String == "Low")
        #expect(cuped["varianceReduction"] is Double)
    }

    @Test func theSampleRatioCheckOfGroupedUsers() throws {
        let even = (0..<16).map { #""\#($0)":[100]"# }.joined(separator: ",")
        let fewer = (0..<16).map { #""\#($0)":[80]"# }.joined(separator: ",")
        let skewed = try answer(#"{"method":"srm","weight":50,"new":{\#(fewer)},"live":{\#(even)}}"#)
        #expect(skewed["mismatch"] as? Bool == true)
        let fair = try answer(#"{"method":"srm","weight":50,"new":{\#(even)},"live":{\#(even)}}"#)
        #expect(fair["mismatch"] as? Bool == false)
        #expect(fair["pValue"] as? Double == 1)
        // Requests, with the users of the same groups: not tested while a group holds 8 users.
        let many = (0..<16).map { #""\#($0)":[400]"# }.joined(separator: ",")
        func requests(users: Int) throws -> [String: Any] {
            let counted = (0..<16).map { #""\#($0)":[\#($0 == 15 ? users : 50)]"# }.joined(separator: ",")
            return try answer(
                #"{"method":"srm","weight":50,"count":"requests","new":{\#(fewer)},"live":{\#(many)},"#
                    + #""users":{"new":{\#(counted)},"live":{\#(counted)}}}"#)
        }
        #expect(try requests(users: 4)["mismatch"] == nil)
        #expect(try requests(users: 5)["mismatch"] as? Bool == true)
    }

    @Test(arguments: [
        #"{"method":"ab","effect":0.1}"#, #"{"method":"vote","effect":0.1}"#, #"{"method":"srm","weight":0}"#,
        #"{"method":"interleaving","effect":-1,"wins":1,"losses":1}"#, "not json",
        #"{"method":"ab","effect":0.1,"new":{"0":[1]},"live":{"0":[1,2]}}"#,
        #"{"method":"srm","weight":50,"count":"sessions","new":{"0":[9]},"live":{"0":[9]}}"#,
    ])
    func badRequestsAreInvalidInput(request: String) {
        #expect(throws: OrchestratorError.self) { try JudgeReplay.answer(Data(request.utf8)) }
    }

    @Test func whatIsWrongIsSaid() {
        #expect {
            try JudgeReplay.answer(Data("not json".utf8))
        } throws: {
            "\($0)".contains("a JSON object with method (ab, interleaving or srm) and its counts is expected")
        }
        #expect {
            try JudgeReplay.answer(Data(#"{"effect":0.1}"#.utf8))
        } throws: {
            "\($0)".contains("method is missing")
        }
    }
}
