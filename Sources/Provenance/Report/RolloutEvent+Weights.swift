import Foundation

extension RolloutEvent {
    /// The split a shift event put in force, read from its detail as the executor, rollback and
    /// recovery write it (`green 25% / blue 75%`, `blue 100% (traffic restored)`): the colours it
    /// names with their percent. `nil` for any other event, or a shift that moved nothing (`could
    /// not restore traffic …`); an empty list when nginx was stopped (nothing serves).
    var shiftedWeights: [(color: String, weight: Int)]? {
        guard kind == .shift else { return nil }
        if detail.hasPrefix("nothing was live before this release") { return [] }
        var result: [(color: String, weight: Int)] = []
        // Leading `COLOUR N%` pairs separated by " / "; what follows the last pair is commentary.
        var rest = Substring(detail)
        while true {
            let words = rest.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            guard words.count >= 2, Self.isColorName(words[0]) else { break }
            let percent = words[1].prefix { $0 != "%" }
            guard words[1].dropFirst(percent.count).hasPrefix("%"), let weight = Int(percent),
                (0...100).contains(weight)
            else { break }
            if words[0] != "none" { result.append((String(words[0]), weight)) }
            guard words.count == 3, words[2].hasPrefix("/ ") else { break }
            rest = words[2].dropFirst(2)
        }
        return result.isEmpty ? nil : result
    }

    private static func isColorName(_ word: Substring) -> Bool {
        !word.isEmpty && word.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
    }
}
