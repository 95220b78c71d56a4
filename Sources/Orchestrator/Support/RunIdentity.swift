public import Foundation
import StrictYAML

/// Who runs, where, and the names a run gets.
public enum RunIdentity {
    public static let version = "0.2.0"

    /// A new release id: `rel-<UTC time>-<6 hex digits>`.
    public static func releaseID(at date: Date = Date()) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let suffix = (0..<3).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        return "rel-\(formatter.string(from: date))-\(suffix)"
    }

    public static var user: String {
        let environment = ProcessInfo.processInfo.environment
        if let name = environment["USER"] ?? environment["LOGNAME"] { return name }
        guard let entry = getpwuid(getuid()), let name = entry.pointee.pw_name else { return "uid \(getuid())" }
        return String(cString: name)
    }

    public static var host: String { ProcessInfo.processInfo.hostName }
}
