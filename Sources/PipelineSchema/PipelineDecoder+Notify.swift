import Foundation
import StrictYAML
import Yams

extension PipelineDecoder {
    /// `notify:`. A webhook's URL and header values are never echoed in a problem: they are
    /// secrets (the URL of a Slack webhook is its token).
    func decodeNotify(_ node: Node) -> NotifySpec? {
        guard let map = reader.mapping(node, "notify", allowed: ["webhooks", "timeout", "retries"]) else { return nil }
        var spec = NotifySpec()
        if let value = map["timeout"].flatMap({ reader.duration($0, "notify.timeout", maximum: .seconds(60)) }) {
            if value.milliseconds >= 100 {
                spec.timeout = value
            } else {
                reader.report(map["timeout"], "notify.timeout", "must be at least 100ms")
            }
        }
        if let value = map["retries"].flatMap({ reader.int($0, "notify.retries", range: 0...10) }) {
            spec.retries = value
        }
        guard let listNode = reader.required(map, "webhooks", "notify", in: node),
            let items = reader.sequence(listNode, "notify.webhooks")
        else {
            return nil
        }
        if items.isEmpty {
            reader.report(listNode, "notify.webhooks", "list at least one webhook, or leave notify: out")
        }
        for (index, item) in items.enumerated() {
            guard let webhook = decodeWebhook(item, index: index) else { continue }
            if spec.webhooks.contains(where: { $0.name == webhook.name }) {
                reader.report(item, "notify.webhooks[\(index)].name", "duplicate webhook name \"\(webhook.name)\"")
            } else {
                spec.webhooks.append(webhook)
            }
        }
        return spec
    }

    private func decodeWebhook(_ node: Node, index: Int) -> NotifySpec.Webhook? {
        let fallback = "notify.webhooks[\(index)]"
        guard let map = reader.mapping(node, fallback, allowed: ["name", "url", "format", "events", "headers"]) else {
            return nil
        }
        var name: String?
        if let nameNode = reader.required(map, "name", fallback, in: node),
            let text = reader.nonEmptyString(nameNode, "\(fallback).name")
        {
            if text.count <= 63, text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }) {
                name = text
            } else {
                reader.report(
                    nameNode, "\(fallback).name", "\"\(echoed(text))\" must be at most 63 \(Self.namePattern)")
            }
        }
        let path = name.map { "notify.webhooks.\($0)" } ?? fallback
        var url: String?
        if let urlNode = reader.required(map, "url", path, in: node),
            let text = reader.nonEmptyString(urlNode, "\(path).url")
        {
            if (text.hasPrefix("http://") || text.hasPrefix("https://")) && URL(string: text)?.host != nil {
                url = text
            } else {
                reader.report(
                    urlNode, "\(path).url",
                    "is not an http:// or https:// URL (its value is not shown: it is a secret); take it from the environment, e.g. url: ${SLACK_WEBHOOK_URL}"
                )
            }
        }
        let format =
            map["format"].flatMap {
                reader.choice($0, "\(path).format", among: NotifySpec.Format.allCases.map(\.rawValue))
            }
            .flatMap(NotifySpec.Format.init) ?? .json
        var events = NotifyEvent.allCases
        if let eventsNode = map["events"], let names = reader.stringList(eventsNode, "\(path).events") {
            events = []
            for name in names {
                if let event = NotifyEvent(rawValue: name) {
                    if !events.contains(event) { events.append(event) }
                } else {
                    let hint =
                        reader.suggestion(for: name, among: NotifyEvent.allCases.map(\.rawValue)).map {
                            ": did you mean \"\($0)\"?"
                        } ?? ""
                    reader.report(
                        eventsNode, "\(path).events",
                        "\"\(echoed(name))\" is not one of \(NotifyEvent.allCases.map(\.rawValue).joined(separator: ", "))\(hint)"
                    )
                }
            }
            if names.isEmpty {
                reader.report(
                    eventsNode, "\(path).events", "list at least one event, or leave events: out for all of them")
            }
        }
        let headers = reader.stringMap(map["headers"], "\(path).headers")
        for key in headers.keys
        where key.isEmpty || !key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) {
            reader.report(
                map["headers"], "\(path).headers", "\"\(echoed(key))\" is not a header name (letters, digits and -)")
        }
        for (key, value) in headers where value.contains(where: { $0 == "\n" || $0 == "\r" }) {
            reader.report(map["headers"], "\(path).headers.\(echoed(key))", "a header value must be one line")
        }
        guard let name, let url else { return nil }
        return NotifySpec.Webhook(name: name, format: format, url: url, headers: headers, events: events)
    }

    /// `metrics:`.
    func decodeMetrics(_ node: Node) -> MetricsSpec? {
        guard let map = reader.mapping(node, "metrics", allowed: ["pushgateway", "job"]) else { return nil }
        var pushgateway: String?
        if let urlNode = reader.required(map, "pushgateway", "metrics", in: node),
            let url = reader.nonEmptyString(urlNode, "metrics.pushgateway")
        {
            if (url.hasPrefix("http://") || url.hasPrefix("https://")) && URL(string: url)?.host != nil {
                pushgateway = url.hasSuffix("/") ? String(url.dropLast()) : url
            } else {
                reader.report(
                    urlNode, "metrics.pushgateway",
                    "\"\(echoed(url))\" is not an http:// or https:// URL, e.g. http://127.0.0.1:9091")
            }
        }
        var job = "orchestrate"
        if let jobNode = map["job"], let text = reader.nonEmptyString(jobNode, "metrics.job") {
            if text.count <= 63, text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_-".contains($0)) }) {
                job = text
            } else {
                reader.report(
                    jobNode, "metrics.job", "\"\(echoed(text))\" must be at most 63 letters, digits, '_' and '-'")
            }
        }
        return pushgateway.map { MetricsSpec(pushgateway: $0, job: job) }
    }
}
