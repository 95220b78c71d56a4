import Foundation
public import Provenance
import StrictYAML

/// How `orchestrate run` runs a pipeline.
public struct RunOptions: Sendable {
    /// Print the plan and change nothing.
    public var dryRun: Bool
    /// With `dryRun`: still append a record of the plan to the history.
    public var recordDryRun: Bool
    /// The `--set KEY=VALUE` overrides, recorded in provenance.
    public var overrides: [String]
    /// Stages not to run (`--skip ingest` is the seed's `--skip-ingest`).
    public var skip: [String]
    /// Run stages even when their inputs are unchanged since the last successful run.
    public var force: Bool
    /// manual, ci or schedule.
    public var trigger: String
    /// The command line, for the record.
    public var command: [String]
    /// Move all traffic at once after the health check, without steps (the seed's --no-staged-shift).
    public var noStagedShift: Bool
    /// The `recengine` executable the process runtime starts; nil: next to this executable.
    public var recengine: String?
    /// Signs the records the run appends (`--signing-key`, `ORCHESTRATE_SIGNING_KEY_FILE`,
    /// `ORCHESTRATE_SIGNING_KEY`); nil: they are unsigned.
    public var signingKey: ReleaseSigningKey?

    public init(
        dryRun: Bool = false, recordDryRun: Bool = false, overrides: [String] = [], skip: [String] = [],
        force: Bool = false,
        trigger: String = "manual", command: [String] = [], noStagedShift: Bool = false, recengine: String? = nil,
        signingKey: ReleaseSigningKey? = nil
    ) {
        self.signingKey = signingKey
        self.noStagedShift = noStagedShift
        self.recengine = recengine
        self.dryRun = dryRun
        self.recordDryRun = recordDryRun
        self.overrides = overrides
        self.skip = skip
        self.force = force
        self.trigger = trigger
        self.command = command
    }

    public static let triggers = ["manual", "ci", "schedule"]

    /// The trigger from the environment: `ORCHESTRATE_TRIGGER`, else `ci` when `CI` is set, else manual.
    public static func trigger(from environment: [String: String]) -> String {
        if let value = environment["ORCHESTRATE_TRIGGER"], triggers.contains(value) { return value }
        if let ci = environment["CI"], !ci.isEmpty, ci != "false" { return "ci" }
        return "manual"
    }
}

extension RunOptions {
    /// The `recengine` binary: `recengine` option, else `RECENGINE_BIN`, else next to the running
    /// executable, else on PATH.
    public var recengineBinary: String {
        if let recengine { return recengine }
        if let path = ProcessInfo.processInfo.environment["RECENGINE_BIN"] { return path }
        if let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            let sibling = URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent(
                "recengine"
            ).path
            if FileManager.default.isExecutableFile(atPath: sibling) { return sibling }
        }
        for folder in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(folder)/recengine"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return "recengine"
    }
}
