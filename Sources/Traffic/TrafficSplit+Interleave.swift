extension TrafficSplit {
    /// Team-draft interleaving for a sampled share of users (Resources/interleave.lua): their lists
    /// come from both colours of the split, merged, and their events are credited to the colour
    /// whose team placed the movie. The other users keep the sticky (or weighted) split.
    public struct Interleave: Sendable, Codable, Equatable {
        /// Percent of users sampled, 1 to 100.
        public var percent: Int
        /// Seconds after a placement during which an event on that movie is credited.
        public var window: Int
        /// Which users are sampled (a hash of the seed and the user id): the same seed samples the
        /// same users, so a release keeps its sample from step to step.
        public var seed: String
        /// What the counts belong to: a new experiment starts them from zero.
        public var experiment: String

        public init(percent: Int, window: Int, seed: String, experiment: String) {
            self.percent = percent
            self.window = window
            self.seed = seed
            self.experiment = experiment
        }

        /// The line of the split's text format (see `TrafficState`).
        var line: String { "interleave \(percent) \(window) \(seed) \(experiment)" }

        /// - Throws: `TrafficError` for a value nginx would refuse.
        func validate(backends: Int) throws {
            guard backends == 2 else {
                throw TrafficError(
                    "an interleaving split has two colours (the live one and the new one), got \(backends)")
            }
            guard (1...100).contains(percent) else {
                throw TrafficError("the interleaved share \(percent) % is outside 1...100")
            }
            guard (1...86_400).contains(window) else {
                throw TrafficError("the credit window \(window) s is outside 1...86400")
            }
            for (name, token) in [("seed", seed), ("experiment", experiment)] {
                guard !token.isEmpty, token.count <= 100,
                    token.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) })
                else {
                    throw TrafficError(
                        "the interleaving's \(name) \"\(token.prefix(100))\" must be 1 to 100 letters, digits, '.', '_' or '-'"
                    )
                }
            }
        }
    }
}
