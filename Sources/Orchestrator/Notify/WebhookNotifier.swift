import Foundation
import OrchestratorSupport
import PipelineSchema
import Provenance
import StrictYAML
import Synchronization

/// Tells the pipeline's webhooks about the events each one chose, through the outbox (never
/// waiting for them).
final class WebhookNotifier: RunObserver {
    let spec: NotifySpec
    let outbox: Outbox
    let pipeline: String
    let service: String
    let redaction: Redaction
    /// The command that answers a waiting gate by hand (`orchestrate approve PIPELINE`).
    let approve: String
    /// The rollout's colours and weight as last reported, for the messages.
    private let state = Mutex<RunState?>(nil)

    init(
        spec: NotifySpec, outbox: Outbox, pipeline: String, service: String, redaction: Redaction,
        approve: String = "orchestrate approve"
    ) {
        self.approve = approve
        self.spec = spec
        self.outbox = outbox
        self.pipeline = pipeline
        self.service = service
        self.redaction = redaction
    }

    /// The outbox destination of each webhook.
    static func destinations(_ spec: NotifySpec) -> [Outbox.Destination] {
        spec.webhooks.map {
            Outbox.Destination(name: "notify \($0.name)", timeout: spec.timeout.duration, retries: spec.retries)
        }
    }

    func observe(_ event: RunEvent) {
        if case .progress(let run) = event.kind {
            state.withLock { $0 = run }
            return
        }
        guard let message = message(for: event) else { return }
        for webhook in spec.webhooks where webhook.events.contains(message.event) {
            let body: Data
            do {
                body = try Self.encoder.encode(
                    webhook.format == .slack ? AnyEncodable(SlackMessage(message)) : AnyEncodable(message))
            } catch {
                continue
            }
            outbox.send(
                Outbox.Request(
                    method: "POST", url: webhook.url,
                    headers: ["Content-Type: application/json"]
                        + webhook.headers.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" },
                    body: body, what: message.event.rawValue),
                to: "notify \(webhook.name)")
        }
    }

    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }

    /// The generic JSON body; the Slack one is written from it.
    struct Message: Encodable {
        var event: NotifyEvent
        var pipeline: String
        var service: String
        var release: String
        var at: Date
        /// One line for people.
        var summary: String
        var target: String?
        var live: String?
        /// Percent of traffic on the target.
        var weight: Int?
        var step: Int?
        var steps: Int?
        var measurements: [Measurement]?
        var reason: String?
        var outcome: String?
        var modelVersion: String?
        /// A webhook gate waited for or answered ("confirm-promotion approve-100"), where it acts
        /// ("before step 2"), its answer and who gave it (`receiver`, or a person).
        var gate: String?
        var point: String?
        var answer: String?
        var by: String?
        /// The command that answers a waiting gate by hand.
        var command: String?

        struct Measurement: Encodable {
            var gate: String
            var condition: String
            var value: Double?
            var outcome: String
            var error: String?
            var at: Date
        }

        enum CodingKeys: String, CodingKey {
            case event, pipeline, service, release, at, summary, target, live, weight, step, steps, measurements,
                reason, outcome, gate, point, answer, by, command
            case modelVersion = "model_version"
        }
    }

    func message(for event: RunEvent) -> Message? {
        let run = state.withLock { $0 }
        var message = Message(
            event: .started, pipeline: pipeline, service: service, release: event.releaseID, at: event.at, summary: "",
            target: run?.target,
            live: run?.live?.color, weight: run?.weight)
        let name = "\(service): release \(event.releaseID)"
        switch event.kind {
        case .started(let live):
            message.live = live
            message.weight = nil
            message.summary = "\(name) started (live: \(live ?? "none"))"
        case .stepPassed(let step, let steps, let weight, let measurements, let note):
            message.event = .stepPassed
            message.step = step
            message.steps = steps
            message.weight = weight
            message.measurements = Self.latest(measurements)
            message.reason = note
            let values = Self.latest(measurements).map { "\($0.gate) \($0.value.map(formatMetric) ?? "-")" }.joined(
                separator: ", ")
            message.summary =
                "\(name): step \(step)/\(steps) passed, \(run?.target ?? "the new colour") at \(weight)%\(values.isEmpty ? "" : " (\(values))")"
                + (note.map { "; \($0)" } ?? "")
        case .gateFailed(let weight, let failure, let measurements):
            message.event = .gateFailed
            message.weight = weight
            message.measurements = measurements.map(Self.measurement)
            message.reason = failure
            message.summary = "\(name): \(failure) at \(run?.target ?? "the new colour") \(weight)%"
        case .rolledBack(let reason, let interrupted):
            message.event = .rolledBack
            message.reason = reason
            message.outcome = interrupted ? ReleaseOutcome.interrupted.rawValue : ReleaseOutcome.rolledBack.rawValue
            message.summary = "\(name) rolled back: traffic back on \(run?.live?.color ?? "the live colour"): \(reason)"
        case .promoted(let color, let version):
            message.event = .promoted
            message.target = color
            message.weight = 100
            message.modelVersion = version
            message.summary = "\(name) promoted: \(color) is live with model \(version)"
        case .recovered(let record):
            message.event = .recovered
            message.release = record.releaseID
            message.outcome = record.outcome.rawValue
            message.reason = record.failure
            message.summary =
                "\(service): the interrupted release \(record.releaseID) was recovered (\(record.outcome.rawValue))"
        case .finished(let record):
            guard record.outcome == .failed, record.rollout?.steps.isEmpty ?? true else { return nil }
            message.event = .failed
            message.outcome = record.outcome.rawValue
            message.reason = record.failure
            message.summary = "\(name) failed before any traffic moved: \(record.failure ?? "")"
        case .gateWaiting(let gate, let point, let step, let weight):
            message.event = .gateWaiting
            message.gate = gate
            message.point = point
            message.step = step
            message.weight = weight
            message.command = approve
            message.summary =
                "\(name) waits for \(gate) \(point) (\(run?.target ?? "the new colour") at \(weight)%): `\(approve)` answers it"
        case .gateAnswered(let gate, let point, let step, let answer, let by):
            message.event = .gateAnswered
            message.gate = gate
            message.point = point
            message.step = step
            message.answer = answer
            message.by = by
            message.summary = "\(name): \(gate) \(point) answered \(answer) by \(by)"
        case .progress, .measured:
            return nil
        }
        message.summary = redaction.redact(message.summary)
        message.reason = message.reason.map { redaction.redact($0) }
        return message
    }

    static func measurement(_ m: GateMeasurement) -> Message.Measurement {
        .init(gate: m.gate, condition: m.condition, value: m.value, outcome: m.outcome, error: m.error, at: m.at)
    }

    /// The last measurement of each gate, in the order the gates were first measured.
    static func latest(_ measurements: [GateMeasurement]) -> [Message.Measurement] {
        var order: [String] = []
        var last: [String: GateMeasurement] = [:]
        for m in measurements {
            if last[m.gate] == nil { order.append(m.gate) }
            last[m.gate] = m
        }
        return order.compactMap { last[$0] }.map(measurement)
    }
}

/// Slack's incoming-webhook message: `text` (the notification) and blocks with the values.
struct SlackMessage: Encodable {
    struct Block: Encodable {
        struct Text: Encodable {
            var type = "mrkdwn"
            var text: String
        }
        var type: String
        var text: Text?
        var elements: [Text]?
    }

    var text: String
    var blocks: [Block]

    init(_ message: WebhookNotifier.Message) {
        text = message.summary
        blocks = [Block(type: "section", text: .init(text: message.summary))]
        var details = (message.measurements ?? []).map { m in
            "`\(m.gate)` \(m.value.map(formatMetric) ?? m.error ?? "-") (\(m.condition)): \(m.outcome)"
        }
        details.append("release `\(message.release)` of `\(message.pipeline)`, event `\(message.event.rawValue)`")
        blocks.append(Block(type: "context", elements: details.prefix(10).map { Block.Text(text: $0) }))
    }
}

/// Encodes either body through one call.
struct AnyEncodable: Encodable {
    let value: any Encodable
    init(_ value: any Encodable) { self.value = value }
    func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
}
