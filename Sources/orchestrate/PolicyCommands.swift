import ArgumentParser
import CommandLineSupport
import Foundation
import Orchestrator
import OrchestratorSupport
import PipelineSchema
import Provenance

/// The pipeline of a command whose argument is something else (a release, a model), and the key
/// that signs the record it appends.
struct PolicyOptions: ParsableArguments {
    @Option(help: "The pipeline file.") var pipeline: String = "pipelines/pipeline.yml"
    @Option(
        help:
            "Sign the record with this Ed25519 key file (default: ORCHESTRATE_SIGNING_KEY_FILE, else ORCHESTRATE_SIGNING_KEY)."
    )
    var signingKey: String?
    @Option(help: "text or json (the record appended).") var output: OutputFormat = .text

    func controller() throws -> ReleaseController {
        try PipelineArgument.parse((signingKey.map { ["--signing-key", $0] } ?? []) + ["--", pipeline])
            .controller(signing: true)
    }

    func report(_ record: ReleaseRecord) throws {
        if output == .json { try printJSON(record) }
    }
}

struct PinCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pin",
        abstract: "Keep a release: no `run` replaces it until `orchestrate unpin` (exit 7 while pinned).",
        discussion: """
            RELEASE is a release id or the digest of its model (at least its first 12 hex digits); \
            without it, the live release is pinned. The pin is a signed record in the history; \
            `status` and `run --dry-run` show it. A rollback is never held back by a pin.
            """)

    @Argument(help: "The release id or model digest to pin (default: the live release).") var release: String?
    @Option(help: "Why, for the record.") var reason: String?
    @OptionGroup var options: PolicyOptions

    func run() async throws {
        try options.report(try await options.controller().pin(release, reason: reason))
    }
}

struct UnpinCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unpin", abstract: "Lift the pin: releases may replace the pinned one again.")

    @Option(help: "Why, for the record.") var reason: String?
    @OptionGroup var options: PolicyOptions

    func run() async throws {
        try options.report(try await options.controller().unpin(reason: reason))
    }
}

struct MarkBadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mark-bad",
        abstract: "Mark a model bad: it is never deployed again and rollbacks to it are refused (exit 7).",
        discussion: """
            MODEL_DIGEST is the model's SHA-256 (`orchestrate history` shows it), or at least its first \
            12 hex digits when the history knows the model. A live model stays live: `orchestrate \
            rollback` replaces it. The mark is a signed record in the history.
            """)

    @Argument(help: "The model's SHA-256, or its first 12 or more hex digits.") var modelDigest: String
    @Option(help: "Why the model is bad (required: it is shown to whoever meets the refusal).") var reason: String
    @OptionGroup var options: PolicyOptions

    func validate() throws {
        if reason.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw ValidationError("--reason must say why the model is bad")
        }
    }

    func run() async throws {
        try options.report(try await options.controller().markBad(modelDigest, reason: reason))
    }
}
