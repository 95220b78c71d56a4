extension TrafficSplit {
    /// The shadow stage (Resources/shadow.lua): a sampled share of the live `/recommend` requests is
    /// also sent to `color`, a backend at weight 0, once the live answer has been sent; both
    /// answers are compared in nginx and the new colour's answer never reaches a user.
    public struct Shadow: Sendable, Codable, Equatable {
        /// The colour asked in the shadow of live requests (the new one, at weight 0).
        public var color: String
        /// Percent of the `/recommend` requests shadowed, 1 to 100, drawn per request.
        public var percent: Int
        /// What the comparisons belong to: a new experiment starts them from zero.
        public var experiment: String

        public init(color: String, percent: Int, experiment: String) {
            self.color = color
            self.percent = percent
            self.experiment = experiment
        }

        /// The line of the split's text format (see `TrafficState`).
        var line: String { "shadow \(color) \(percent) \(experiment)" }

        /// - Throws: `TrafficError` for a value nginx would refuse.
        func validate(in split: TrafficSplit) throws {
            guard let backend = split.backends.first(where: { $0.color == color }), backend.weight == 0 else {
                throw TrafficError(
                    "the shadowed colour \(color) must be a backend of the split at weight 0: it answers no user")
            }
            guard split.interleave == nil else {
                throw TrafficError("a split shadows or interleaves, not both")
            }
            guard (1...100).contains(percent) else {
                throw TrafficError("the shadowed share \(percent) % is outside 1...100")
            }
            guard !experiment.isEmpty, experiment.count <= 100,
                experiment.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) })
            else {
                throw TrafficError(
                    "the shadow's experiment \"\(experiment.prefix(100))\" must be 1 to 100 letters, digits, '.', '_' or '-'"
                )
            }
        }
    }
}
