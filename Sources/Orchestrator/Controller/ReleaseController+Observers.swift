import Foundation
import PipelineSchema
import Provenance

extension ReleaseController {
    /// Runs `body` with the pipeline's observers (`notify:` webhooks, the `metrics:` Pushgateway)
    /// sending off its path; at the end, waits at most `Outbox.flushLimit` for what they still
    /// have to send. Without either, `body` runs with no observer.
    func observing<T: Sendable>(_ body: (RunObservers) async throws -> T) async throws -> T {
        guard pipeline.notify != nil || pipeline.metrics != nil else { return try await body(.none) }
        let destinations =
            (pipeline.notify.map(WebhookNotifier.destinations) ?? [])
            + (pipeline.metrics.map(MetricsPusher.destinations) ?? [])
        let outbox = Outbox(
            destinations: destinations, redaction: pipeline.redaction,
            warn: { [progress] in progress("warning: \($0)") })
        var observers: [any RunObserver] = []
        if let notify = pipeline.notify {
            observers.append(
                WebhookNotifier(
                    spec: notify, outbox: outbox, pipeline: pipeline.name,
                    service: pipeline.deploy?.service ?? pipeline.name, redaction: pipeline.redaction,
                    approve: "orchestrate approve \(shellQuoted([pipeline.file]))"))
        }
        if let metrics = pipeline.metrics {
            observers.append(
                MetricsPusher(
                    spec: metrics, outbox: outbox, service: pipeline.deploy?.service ?? pipeline.name,
                    colors: pipeline.deploy?.colors ?? [],
                    gates: pipeline.analysis?.gates ?? [], tally: (try? MetricsPusher.Tally.of(history)) ?? .init(),
                    live: try? store.live()))
        }
        return try await outbox.delivering { try await body(RunObservers(observers: observers)) }
    }
}
