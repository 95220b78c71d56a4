import Crypto
import Foundation
import StrictYAML
import RecEngine
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
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw OrchestratorError(.invalidInput, "cannot read the pipeline \(path): \(error.localizedDescription)", hint: "check the path")
        }
        let text = String(decoding: data, as: UTF8.self)
        let reader = NodeReader(file: path, environment: environment)
        var root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw PipelineValidationError(issues: [.init(file: path, line: 0, column: 0, path: "", message: "the file is empty")])
            }
            root = node
        } catch let error as YamlError {
            throw PipelineValidationError(issues: [Self.issue(from: error, file: path)])
        }
        for override in overrides {
            Overrides.apply(override, to: &root, reader: reader)
        }
        let decoder = PipelineDecoder(reader: reader, directory: url.deletingLastPathComponent().path)
        let pipeline = decoder.decode(root, file: url.path, sha256: sha256Hex(data))
        guard reader.issues.isEmpty, let pipeline else {
            throw PipelineValidationError(issues: reader.issues.sorted { ($0.file, $0.line, $0.column) < ($1.file, $1.line, $1.column) })
        }
        return pipeline
    }

    static func issue(from error: YamlError, file: String) -> ValidationIssue {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return ValidationIssue(file: file, line: mark.line, column: mark.column, path: "", message: "YAML syntax: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return ValidationIssue(
                file: file, line: context.mark.line, column: context.mark.column, path: "",
                message: "duplicate keys \(duplicates.joined(separator: ", "))")
        default:
            return ValidationIssue(file: file, line: 0, column: 0, path: "", message: "YAML: \(error)")
        }
    }
}

/// `--set a.b.c=value`: sets a value in the YAML tree before validation, so an override is
/// checked exactly like the file. In `stages`, a path segment names a stage.
enum Overrides {
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
        // The value is read as YAML, so `--set traffic.steps=[10,100]` gives a list; without a mark,
        // problems with it are reported against --set.
        let value = (try? Yams.compose(yaml: valueText)).flatMap { $0 }.map(stripMarks) ?? .scalar(.init(valueText))
        if let updated = set(value, at: segments[...], in: root, path: "", reader: reader, key: key) {
            root = updated
        }
    }

    private static func set(_ value: Node, at segments: ArraySlice<String>, in node: Node?, path: String, reader: NodeReader, key: String) -> Node? {
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
                reader.reportOverride(key, "no entry named \"\(segment)\" in \(path) (there are: \(names.joined(separator: ", ")))")
                return nil
            }
            guard let updated = set(value, at: rest, in: sequence[index], path: here, reader: reader, key: key) else { return nil }
            sequence[index] = updated
            return .sequence(sequence)
        case .mapping(var mapping):
            let child = mapping[segment]
            guard let updated = set(value, at: rest, in: child, path: here, reader: reader, key: key) else { return nil }
            mapping[segment] = updated
            return .mapping(mapping)
        case nil:
            guard let updated = set(value, at: rest, in: Node.mapping(.init([])), path: here, reader: reader, key: key) else { return nil }
            return .mapping(.init([(.scalar(.init(segment)), updated)]))
        default:
            reader.reportOverride(key, "\(path) is a single value, it has no \"\(segment)\"")
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
