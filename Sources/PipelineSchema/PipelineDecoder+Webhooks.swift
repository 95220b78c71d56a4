import Foundation
import StrictYAML
import Yams

extension PipelineDecoder {
    /// `webhooks:`, a list of gates. A URL and a secret are never echoed in a problem.
    func decodeWebhookGates(_ node: Node) -> [WebhookGate] {
        guard let items = reader.sequence(node, "webhooks") else { return [] }
        var gates: [WebhookGate] = []
        for (index, item) in items.enumerated() {
            guard let gate = decodeWebhookGate(item, index: index) else { continue }
            if gates.contains(where: { $0.name == gate.name }) {
                reader.report(item, "webhooks[\(index)].name", "duplicate webhook name \"\(gate.name)\"")
            } else {
                gates.append(gate)
            }
        }
        return gates
    }

    private func decodeWebhookGate(_ node: Node, index: Int) -> WebhookGate? {
        let fallback = "webhooks[\(index)]"
        guard
            let map = reader.mapping(
                node, fallback,
                allowed: [
                    "name", "type", "url", "timeout", "retries", "interval", "onUnreachable", "metadata", "secret",
                ])
        else { return nil }
        var name: String?
        if let nameNode = reader.required(map, "name", fallback, in: node),
            let text = reader.nonEmptyString(nameNode, "\(fallback).name")
        {
            if text.count <= 63, text.first.map({ $0.isLetter || $0.isNumber }) == true,
                text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) })
            {
                name = text
            } else {
                reader.report(
                    nameNode, "\(fallback).name", "\"\(echoed(text))\" must be at most 63 \(Self.namePattern)")
            }
        }
        let path = name.map { "webhooks.\($0)" } ?? fallback
        let kinds = WebhookGate.Kind.allCases.map(\.rawValue)
        var kind: WebhookGate.Kind?
        if let typeNode = reader.required(map, "type", path, in: node) {
            if typeNode.scalar?.string == "event" {
                reader.report(
                    typeNode, "\(path).type",
                    "Flagger's event webhooks are notify.webhooks here (they are told, never asked): one of \(kinds.joined(separator: ", "))"
                )
            } else {
                kind = reader.choice(typeNode, "\(path).type", among: kinds).flatMap(WebhookGate.Kind.init)
            }
        }
        var url: String?
        if let urlNode = reader.required(map, "url", path, in: node),
            let text = reader.nonEmptyString(urlNode, "\(path).url")
        {
            if (text.hasPrefix("http://") || text.hasPrefix("https://")) && URL(string: text)?.host != nil {
                url = text
            } else {
                reader.report(
                    urlNode, "\(path).url",
                    "is not an http:// or https:// URL (its value is not shown: it may be a secret)")
            }
        }
        var timeout = PipelineDuration.seconds(10)
        if let node = map["timeout"], let value = reader.duration(node, "\(path).timeout", maximum: .seconds(300)) {
            if value.milliseconds >= 100 {
                timeout = value
            } else {
                reader.report(node, "\(path).timeout", "must be at least 100ms")
            }
        }
        let retries = map["retries"].flatMap { reader.int($0, "\(path).retries", range: 0...10) } ?? 0
        var interval = PipelineDuration.seconds(5)
        if let node = map["interval"], let value = reader.duration(node, "\(path).interval", maximum: .seconds(3600)) {
            if value.milliseconds >= 100 {
                interval = value
            } else {
                reader.report(node, "\(path).interval", "must be at least 100ms")
            }
        }
        let onUnreachable = map["onUnreachable"].flatMap {
            reader.choice($0, "\(path).onUnreachable", among: WebhookGate.OnUnreachable.allCases.map(\.rawValue))
        }.flatMap(WebhookGate.OnUnreachable.init)
        let metadata = reader.stringMap(map["metadata"], "\(path).metadata")
        var secret: String?
        if let node = map["secret"], let text = reader.nonEmptyString(node, "\(path).secret") { secret = text }
        guard let name, let kind, let url else { return nil }
        return WebhookGate(
            name: name, kind: kind, url: url, timeout: timeout, retries: retries, interval: interval,
            onUnreachable: onUnreachable, metadata: metadata, secret: secret)
    }
}
