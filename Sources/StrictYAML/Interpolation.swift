import Foundation

/// `${VAR}` and `${VAR:-default}` substitution from the environment, as docker compose does;
/// `$$` stands for a literal `$`.
public enum Interpolation {
    public enum Failure: Error, Equatable {
        case unset(String)
        case malformed(String)
    }

    public static func apply(_ text: String, environment: [String: String]) -> Result<String, Failure> {
        var used: [String: String] = [:]
        return apply(text, environment: environment, used: &used)
    }

    /// - Parameter used: gets each variable referenced and the text put in its place.
    public static func apply(
        _ text: String, environment: [String: String], used: inout [String: String]
    ) -> Result<String, Failure> {
        guard text.contains("$") else { return .success(text) }
        var result = ""
        var rest = Substring(text)
        while let dollar = rest.firstIndex(of: "$") {
            result += rest[..<dollar]
            let after = rest.index(after: dollar)
            if after < rest.endIndex && rest[after] == "$" {
                result += "$"
                rest = rest[rest.index(after: after)...]
                continue
            }
            guard after < rest.endIndex, rest[after] == "{" else {
                result += "$"
                rest = rest[after...]
                continue
            }
            guard let close = rest[after...].firstIndex(of: "}") else {
                return .failure(.malformed("unterminated ${ in \"\(echoed(text))\""))
            }
            let body = rest[rest.index(after: after)..<close]
            let (name, fallback): (Substring, Substring?)
            if let separator = body.range(of: ":-") {
                (name, fallback) = (body[..<separator.lowerBound], body[separator.upperBound...])
            } else {
                (name, fallback) = (body, nil)
            }
            guard isVariableName(name) else {
                return .failure(
                    .malformed(
                        "\"${\(echoed(String(body)))}\" is not a variable reference: use ${NAME} or ${NAME:-default}"))
            }
            if let value = environment[String(name)], !(value.isEmpty && fallback != nil) {
                result += value
                used[String(name)] = value
            } else if let fallback {
                result += fallback
                used[String(name)] = String(fallback)
            } else {
                return .failure(.unset(String(name)))
            }
            rest = rest[rest.index(after: close)...]
        }
        result += rest
        return .success(result)
    }

    private static func isVariableName(_ name: Substring) -> Bool {
        guard let first = name.first, first == "_" || first.isLetter else { return false }
        return name.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
    }
}
