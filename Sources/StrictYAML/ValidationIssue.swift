/// One problem found while loading a pipeline: where it is and what is wrong.
public struct ValidationIssue: Sendable, Equatable, CustomStringConvertible, Codable {
    /// The pipeline file, or `--set` for an override.
    public var file: String
    /// 1-based line and column; 0 when the problem has no single place (e.g. a missing key at the top).
    public var line: Int
    public var column: Int
    /// The dotted path of the value, e.g. `stages.train.with.factors`.
    public var path: String
    public var message: String

    public init(file: String, line: Int, column: Int, path: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        self.message = message
    }

    public var description: String {
        let location = line > 0 ? "\(file):\(line):\(column)" : file
        return path.isEmpty ? "\(location): \(message)" : "\(location): \(path): \(message)"
    }
}

/// All the problems of a pipeline, reported at once.
public struct PipelineValidationError: Error, CustomStringConvertible, Sendable {
    /// The problems kept (at most `InputLimits.maxCollectedIssues`).
    public var issues: [ValidationIssue]
    /// Every problem found, also those past the ones kept.
    public var count: Int

    public init(issues: [ValidationIssue], count: Int? = nil) {
        self.issues = issues
        self.count = max(count ?? issues.count, issues.count)
    }

    /// The first `InputLimits.maxReportedIssues` problems, then how many more there are.
    public var description: String {
        let noun = count == 1 ? "problem" : "problems"
        let shown = issues.prefix(InputLimits.maxReportedIssues)
        var lines = shown.map { "  \($0)" }
        if count > shown.count {
            let more = count - shown.count
            lines.append("  … and \(more) more problem\(more == 1 ? "" : "s")")
        }
        return "the pipeline has \(count) \(noun):\n" + lines.joined(separator: "\n")
    }
}
