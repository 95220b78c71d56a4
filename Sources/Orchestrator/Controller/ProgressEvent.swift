public import Foundation
import Logging
import OrchestratorSupport

/// What a run tells people as it goes, as a typed event: rendered as a line of text (stderr, as
/// the controller always printed it) or as one JSON object per line (`--output json`), and
/// logged through swift-log with its fields as metadata. Both renderings come from the same value.
public enum ProgressEvent: Sendable, Equatable, Codable {
    /// A rollout's event: the deploy, each step, a gate's measurement, the judge's look, a
    /// rollback, the promotion.
    case rollout(RolloutProgress)
    /// A line of the stages, recovery or the controller.
    case note(String)

    /// The line for people.
    public var text: String {
        switch self {
        case .rollout(let progress): progress.text
        case .note(let line): line
        }
    }

    /// The event's name in JSON and in the log (`rollout.step`, `rollout.gate`, `run.note`).
    public var name: String {
        switch self {
        case .rollout(let progress): progress.name
        case .note: "run.note"
        }
    }

    /// The event's values (those of a rollout event: `{"number": 1, "of": 3, "weight": 10, ...}`).
    var fields: [String: Any] {
        guard case .rollout(let progress) = self else { return [:] }
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.nonConformingFloatEncodingStrategy = NonFiniteNumbers.encoding
        guard let data = try? encoder.encode(progress),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let values = object.values.first as? [String: Any]
        else { return [:] }
        // A case with one unlabelled value (a gate's measurement, the judge's look) is that value.
        if values.count == 1, let only = values["_0"] as? [String: Any] { return only }
        return values
    }

    /// One JSON object on one line: `{"at": ..., "event": "rollout.step", "message": "step 1/3: ...", ...its fields}`.
    public func jsonLine(at time: Date = Date()) -> String {
        var object = fields
        object["at"] = ISO8601DateFormatter().string(from: time)
        object["event"] = name
        object["message"] = text
        guard
            let data = try? JSONSerialization.data(
                withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        else {
            return #"{"event":"\#(name)"}"#
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Logs the event at debug level (people read it through the progress sink): its name and
    /// fields as metadata with dotted keys (`rollout.step.weight`).
    func log(to logger: Logger) {
        var metadata: Logger.Metadata = ["event": .string(name)]
        for (key, value) in fields { metadata["\(name).\(key)"] = .string("\(value)") }
        logger.debug("\(text)", metadata: metadata)
    }
}

/// How `orchestrate` shows a run's progress.
public enum ProgressFormat: Sendable {
    /// A line of text per event.
    case text
    /// One JSON object per event, on one line.
    case json

    public func render(_ event: ProgressEvent) -> String {
        switch self {
        case .text: event.text
        case .json: event.jsonLine()
        }
    }
}
