public import ArgumentParser
public import Foundation
import TextSafety

/// What the two command lines (`orchestrate`, `recengine`) share: output formats, writing for
/// people and for programs, and the documented exit codes.

/// `--output text|json`: text for people (stderr for progress, stdout for results), JSON for
/// programs (one object on stdout).
public enum OutputFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case text, json
}

/// Writes a line for people to standard error. Whatever the line quotes from outside (an
/// engine's message, a child's output, a record) has its control characters written out, so
/// that nothing printed can act on the terminal.
public func printError(_ text: String) {
    FileHandle.standardError.write(Data((OutsideText.escaped(text, lines: .kept) + "\n").utf8))
}

/// Writes a line for people to standard output, escaped as `printError` does.
public func printText(_ text: String) {
    print(OutsideText.escaped(text, lines: .kept))
}

public func printJSON(_ value: some Encodable) throws {
    print(try jsonText(value))
}

/// What `printJSON` prints.
public func jsonText(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    // As in the release record: a number JSON cannot hold is written "nan", "inf" or "-inf".
    encoder.nonConformingFloatEncodingStrategy = .convertToString(
        positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

/// Lines of a table whose columns are as wide as their widest cell, two spaces apart (the last
/// column is not padded), like kubectl's output: no value is cut.
/// Every cell is escaped (see `OutsideText`), line breaks too: a cell is one line.
public func tableLines(_ rows: [[String]]) -> [String] {
    let rows = rows.map { $0.map { OutsideText.escaped($0) } }
    let columns = rows.map(\.count).max() ?? 0
    let widths = (0..<columns).map { column in rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
    return rows.map { row in
        row.enumerated().map { column, cell in
            column == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count)
        }.joined(separator: "  ")
    }
}

/// Parses `arguments` as `Root`, runs the command and exits with the documented code: usage
/// errors exit 2 (not ArgumentParser's 64); a failure `classify` knows exits with its code after
/// its message; `ExitCode`s pass through; anything else exits 1.
public func runCommandLine<Root: ParsableCommand>(
    _ root: Root.Type, arguments: [String], classify: (any Error) -> (message: String, code: Int32)?
) async -> Never {
    do {
        var command = try Root.parseAsRoot(arguments)
        if var asyncCommand = command as? any AsyncParsableCommand {
            try await asyncCommand.run()
        } else {
            try command.run()
        }
        exit(0)
    } catch {
        if let (message, code) = classify(error) {
            printError("error: \(message)")
            exit(code)
        }
        let code = Root.exitCode(for: error)
        let message = Root.fullMessage(for: error)
        if code == .success {
            if !message.isEmpty { print(message) }
            exit(0)
        }
        if !message.isEmpty { printError(message) }
        exit(code == .validationFailure ? 2 : code.rawValue)
    }
}
