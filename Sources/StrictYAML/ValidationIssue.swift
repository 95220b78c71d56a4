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
    public var issues: [ValidationIssue]

    public init(issues: [ValidationIssue]) {
        self.issues = issues
    }

    public var description: String {
        let noun = issues.count == 1 ? "problem" : "problems"
        return "the pipeline has \(issues.count) \(noun):\n" + issues.map { "  \($0)" }.joined(separator: "\n")
    }
}
