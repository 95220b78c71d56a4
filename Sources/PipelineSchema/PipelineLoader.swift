import Crypto
import DurableFiles
import Foundation
import OrchestratorSupport
import RecEngineContract
import StrictYAML
import Yams

/// Loads a pipeline file: YAML, then `--set` overrides, then `${VAR}` interpolation and strict
/// validation of every key, with every problem reported at once and nothing done before.
public struct PipelineLoader: Sendable {
    public var environment: [String: String]

    /// - Parameter environment: the variables `${VAR}` reads; nil: the process environment.
    public init(environment: [String: String]? = nil) {
        self.environment = environment ?? ProcessInfo.processInfo.environment
    }

    /// - Throws: `PipelineValidationError` with every problem found, or `OrchestratorError`
    ///   `.invalidInput` when the file cannot be read.
    public func load(_ path: String, overrides: [String] = []) throws -> Pipeline {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        let data = try Self.readPipelineFile(path)
        if let bad = firstInvalidUTF8(in: data) {
            throw PipelineValidationError(issues: [
                .init(
                    file: path, line: bad.line, column: bad.column, path: "",
                    message: "byte \(bad.offset) is not UTF-8: a pipeline file is UTF-8 text")
            ])
        }
        let text = String(decoding: data, as: UTF8.self)
        let reader = NodeReader(file: path, environment: environment)
        var root: Node
        do {
            guard let node = try NodeReader.compose(text) else {
                throw PipelineValidationError(issues: [
                    .init(file: path, line: 0, column: 0, path: "", message: "the file is empty")
                ])
            }
            root = node
        } catch let error as YamlError {
            throw PipelineValidationError(issues: [Self.issue(from: error, file: path)])
        }
        if root.expands(beyond: InputLimits.maxExpandedNodes) {
            throw PipelineValidationError(issues: [
                .init(
                    file: path, line: 0, column: 0, path: "",
                    message:
                        "the YAML expands to more than \(InputLimits.maxExpandedNodes) values with its aliases expanded (an alias bomb?): write the values out"
                )
            ])
        }
        reader.reportTags(in: root)
        for override in overrides {
            Overrides.apply(override, to: &root, reader: reader)
        }
        let decoder = PipelineDecoder(reader: reader, directory: url.deletingLastPathComponent().path)
        let pipeline = decoder.decode(root, file: url.path, sha256: sha256Hex(data))
        guard reader.issues.isEmpty, let pipeline else {
            // A message may quote a value that came from a secret variable (`version: ${API_TOKEN}`).
            let declared = root.mapping?["secrets"]?.sequence?.compactMap { $0.scalar?.string } ?? []
            let redaction = Redaction(
                values: reader.interpolated.filter { declared.contains($0.key) || Redaction.isSecretName($0.key) }.map(
                    \.value))
            let issues = reader.issues.map { issue in
                var issue = issue
                issue.message = redaction.redact(issue.message)
                return issue
            }
            throw PipelineValidationError(
                issues: issues.sorted { ($0.file, $0.line, $0.column) < ($1.file, $1.line, $1.column) },
                count: reader.issueCount)
        }
        return pipeline
    }

    /// The pipeline file's bytes: a regular file of at most `InputLimits.maxFileBytes`, checked
    /// before it is opened (a FIFO would block the open, `/dev/zero` would never end) and read
    /// with a bound (a file that grows meanwhile is refused, not read on).
    static func readPipelineFile(_ path: String) throws -> Data {
        let limit = InputLimits.maxFileBytes
        func tooLarge(_ size: Int64) -> OrchestratorError {
            OrchestratorError(
                .invalidInput,
                "the pipeline \(path) is \(size) bytes; a pipeline file is at most \(limit) bytes (1 MiB)",
                hint: "is this the pipeline file? Keep data in files that stages read")
        }
        switch FileKind.of(path) {
        case .missing:
            throw OrchestratorError(
                .invalidInput, "cannot read the pipeline \(path): \(String(cString: strerror(errno)))",
                hint: "check the path")
        case .regular(let size):
            guard size <= limit else { throw tooLarge(size) }
        case let kind:
            throw OrchestratorError(
                .invalidInput, "the pipeline \(path) is \(kind.description), not a file",
                hint: "give the path of a YAML file")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw OrchestratorError(
                .invalidInput, "cannot read the pipeline \(path): \(String(cString: strerror(errno)))",
                hint: "check its permissions")
        }
        defer { try? handle.close() }
        var data = Data()
        do {
            while let chunk = try handle.read(upToCount: 64 << 10), !chunk.isEmpty {
                data.append(chunk)
                if data.count > limit { throw tooLarge(Int64(data.count)) }
            }
        } catch let error as OrchestratorError {
            throw error
        } catch {
            throw OrchestratorError(
                .invalidInput, "cannot read the pipeline \(path): \(error.localizedDescription)",
                hint: "check the path", cause: error)
        }
        return data
    }

    static func issue(from error: YamlError, file: String) -> ValidationIssue {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
            .composer(_, let problem, let mark, _):
            return ValidationIssue(
                file: file, line: mark.line, column: mark.column, path: "", message: "YAML syntax: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return ValidationIssue(
                file: file, line: context.mark.line, column: context.mark.column, path: "",
                message: "duplicate keys \(echoed(duplicates.joined(separator: ", ")))")
        case .reader(let problem, let offset, _, let yaml):
            // The offset counts characters of the text.
            var line = 1
            var column = 1
            for character in yaml.prefix(offset ?? 0) {
                if character == "\n" {
                    line += 1
                    column = 1
                } else {
                    column += 1
                }
            }
            return ValidationIssue(file: file, line: line, column: column, path: "", message: "YAML: \(problem)")
        default:
            return ValidationIssue(
                file: file, line: 0, column: 0, path: "", message: "YAML: \(echoed("\(error)", limit: 200))")
        }
    }
}

/// `--set a.b.c=value`: sets a value in the YAML tree before validation, so an override is
/// checked exactly like the file. In `stages`, a path segment names a stage.
enum Overrides {
    /// Segments of a key: the deepest value of a pipeline is 6 deep; this bounds the recursion.
    static let maxDepth = 32

    static func apply(_ override: String, to root: inout Node, reader: NodeReader) {
        guard let equals = override.firstIndex(of: "="), equals != override.startIndex else {
            reader.reportOverride(override, "expected KEY=VALUE, e.g. traffic.wait=60s")
            return
        }
        let key = String(override[..<equals])
        let valueText = String(override[override.index(after: equals)...])
        let segments = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !segments.contains(where: \.isEmpty) else {
            reader.reportOverride(key, "empty segment in the key")
            return
        }
        guard segments.count <= Self.maxDepth else {
            reader.reportOverride(
                key, "the key has \(segments.count) segments; a pipeline's values lie at most \(Self.maxDepth) deep")
            return
        }
        // The value is read as YAML, so `--set traffic.steps=[10,100]` gives a list; without a mark,
        // problems with it are reported against --set.
        let composed = (try? NodeReader.compose(valueText)).flatMap { $0 }
        if let composed, composed.expands(beyond: InputLimits.maxExpandedNodes) {
            reader.reportOverride(
                key,
                "the value expands to more than \(InputLimits.maxExpandedNodes) values with its aliases expanded (an alias bomb?)"
            )
            return
        }
        let value = composed.map(stripMarks) ?? .scalar(.init(valueText))
        // Without marks, a tag in the value is reported against --set.
        reader.reportTags(in: value, path: key)
        if let updated = set(value, at: segments[...], in: root, path: "", reader: reader, key: key) {
            root = updated
        }
    }

    private static func set(
        _ value: Node, at segments: ArraySlice<String>, in node: Node?, path: String, reader: NodeReader, key: String
    ) -> Node? {
        guard let segment = segments.first else { return value }
        let rest = segments.dropFirst()
        let here = path.isEmpty ? segment : "\(path).\(segment)"
        switch node {
        case .sequence(var sequence):
            let index =
                sequence.firstIndex { $0.mapping?["name"]?.scalar?.string == segment }
                ?? Int(segment).flatMap { $0 >= 0 && $0 < sequence.count ? $0 : nil }
            guard let index else {
                let names = sequence.compactMap { $0.mapping?["name"]?.scalar?.string }
                reader.reportOverride(
                    key,
                    "no entry named \"\(echoed(segment))\" in \(path) (there are: \(echoed(names.joined(separator: ", "))))"
                )
                return nil
            }
            guard let updated = set(value, at: rest, in: sequence[index], path: here, reader: reader, key: key) else {
                return nil
            }
            sequence[index] = updated
            return .sequence(sequence)
        case .mapping(var mapping):
            let child = mapping[segment]
            guard let updated = set(value, at: rest, in: child, path: here, reader: reader, key: key) else {
                return nil
            }
            mapping[segment] = updated
            return .mapping(mapping)
        case nil:
            guard let updated = set(value, at: rest, in: Node.mapping(.init([])), path: here, reader: reader, key: key)
            else { return nil }
            return .mapping(.init([(.scalar(.init(segment)), updated)]))
        default:
            reader.reportOverride(key, "\(path) is a single value, it has no \"\(echoed(segment))\"")
            return nil
        }
    }

    private static func stripMarks(_ node: Node) -> Node {
        switch node {
        case .scalar(let scalar): .scalar(.init(scalar.string, scalar.tag, scalar.style))
        case .mapping(let mapping): .mapping(.init(mapping.map { (stripMarks($0.key), stripMarks($0.value)) }))
        case .sequence(let sequence): .sequence(.init(sequence.map(stripMarks)))
        case .alias: node
        }
    }
}
