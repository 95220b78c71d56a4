import Foundation

/// Renders the nginx configuration for a traffic split from a template.
///
/// Every value that reaches the file is checked first (colours are tokens, addresses are
/// host:port with a plain host), so nothing from a pipeline can inject nginx syntax.
public struct NginxConfig: Sendable {
    public var template: String
    public var listenAddress: String
    public var listenPort: Int
    /// Where nginx keeps its pid file, error log and temporary files.
    public var runtimeFolder: String

    public init(template: String = NginxConfig.defaultTemplate, listenAddress: String = "127.0.0.1", listenPort: Int, runtimeFolder: String) {
        self.template = template
        self.listenAddress = listenAddress
        self.listenPort = listenPort
        self.runtimeFolder = runtimeFolder
    }

    public var pidFile: String { runtimeFolder + "/nginx.pid" }
    public var errorLog: String { runtimeFolder + "/error.log" }

    /// The configuration text for `split`; `generation` names this rendering.
    public func render(_ split: TrafficSplit, generation: Int) throws -> String {
        try Self.check(host: listenAddress, what: "the listen address")
        guard (1...65535).contains(listenPort) else { throw TrafficError("listen port \(listenPort) is outside 1...65535") }
        for path in [runtimeFolder] where path.contains(where: { ";{}\"'\n\\ ".contains($0) }) {
            throw TrafficError("the nginx runtime folder \(path) has characters nginx would misread")
        }
        let serving = split.serving
        guard !serving.isEmpty else { throw TrafficError("a traffic split must send traffic somewhere: every weight is 0") }
        guard serving.map(\.weight).reduce(0, +) == 100 else {
            throw TrafficError("weights must add up to 100, got \(split.backends.map { "\($0.color) \($0.weight)" }.joined(separator: ", "))")
        }
        for backend in split.backends {
            guard Self.isToken(backend.color) else { throw TrafficError("colour \"\(backend.color)\" must be letters, digits, '_' or '-'") }
            guard (0...100).contains(backend.weight) else { throw TrafficError("weight \(backend.weight) of \(backend.color) is outside 0...100") }
            try Self.check(address: backend.address)
        }
        var upstreams: [String] = []
        var routing: [String] = []
        switch split.mode {
        case .sticky:
            for backend in serving {
                // The other serving colour is a backup: a request that cannot reach its colour
                // (a connection refused or reset while a colour stops) is retried there instead of
                // failing. Answers the colour gives, errors included, are never retried.
                let backups = serving.filter { $0.color != backend.color }.map { "        server \($0.address) backup;\n" }.joined()
                upstreams.append(
                    "    upstream recommender_\(backend.color) {\n        server \(backend.address);\n\(backups)        keepalive 16;\n    }")
            }
            // Recommendations and a user's events hash the same way, so events reach the colour that
            // served the recommendation.
            routing.append("    map $uri $recommender_user {\n        ~^/(?:recommend|events)/(?<user>[^/?]+)  $user;\n        default  $request_id;\n    }")
            if serving.count == 1 {
                routing.append("    map $uri $recommender_backend {\n        default  recommender_\(serving[0].color);\n    }")
            } else {
                // split_clients hashes the user id: a user stays on one colour at every step.
                let sorted = serving.sorted { $0.weight < $1.weight }
                routing.append(
                    "    split_clients \"${recommender_user}\" $recommender_backend {\n        \(sorted[0].weight)%  recommender_\(sorted[0].color);\n        *  recommender_\(sorted[1].color);\n    }")
            }
        case .weighted:
            let servers = serving.map { "        server \($0.address) weight=\($0.weight);" }.joined(separator: "\n")
            upstreams.append("    upstream recommender_weighted {\n\(servers)\n        keepalive 16;\n    }")
            routing.append("    map $uri $recommender_backend {\n        default  recommender_weighted;\n    }")
        }
        let state = String(decoding: try JSONEncoder.sorted.encode(split), as: UTF8.self)
        let values = [
            "traffic_state": state, "pid_file": pidFile, "error_log": errorLog, "temp_folder": runtimeFolder,
            "upstreams": upstreams.joined(separator: "\n\n"), "routing": routing.joined(separator: "\n\n"),
            "listen_address": listenAddress, "listen_port": String(listenPort), "generation": String(generation),
        ]
        var text = template
        for (key, value) in values {
            text = text.replacingOccurrences(of: "{{\(key)}}", with: value)
        }
        if let range = text.range(of: "{{"), let end = text[range.upperBound...].range(of: "}}") {
            throw TrafficError("the template has an unknown placeholder {{\(text[range.upperBound..<end.lowerBound])}}")
        }
        return text
    }

    /// The split a rendered configuration says it is in force (its `orchestrate-traffic:` line).
    public static func readSplit(fromConfiguration text: String) -> TrafficSplit? {
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("# orchestrate-traffic: ") }) else { return nil }
        return try? JSONDecoder().decode(TrafficSplit.self, from: Data(line.dropFirst("# orchestrate-traffic: ".count).utf8))
    }

    static func isToken(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 63 && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
    }

    static func check(host: String, what: String) throws {
        let ok = !host.isEmpty && host.count <= 253 && host.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") }
        guard ok else { throw TrafficError("\(what) \"\(host)\" is not a plain host name or IPv4 address") }
    }

    static func check(address: String) throws {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]), (1...65535).contains(port) else {
            throw TrafficError("backend address \"\(address)\" is not host:port")
        }
        try check(host: String(address[..<colon]), what: "backend host")
    }

    /// The template shipped as `nginx/recommender.conf.template` (a test keeps them equal).
    public static let defaultTemplate = #"""
        # Rendered by orchestrate from nginx/recommender.conf.template; do not edit the rendered file, it is
        # replaced at every traffic step; names in double braces are filled in. The line below is read back by
        # `orchestrate status` to report the weights in force.
        # orchestrate-traffic: {{traffic_state}}
        worker_processes 1;
        pid {{pid_file}};
        error_log {{error_log}} warn;

        events {
            worker_connections 1024;
        }

        http {
            access_log off;
            client_body_temp_path {{temp_folder}}/client_body;
            proxy_temp_path {{temp_folder}}/proxy;
            fastcgi_temp_path {{temp_folder}}/fastcgi;
            uwsgi_temp_path {{temp_folder}}/uwsgi;
            scgi_temp_path {{temp_folder}}/scgi;

        {{upstreams}}

        {{routing}}

            server {
                listen {{listen_address}}:{{listen_port}};

                # Which rendering is in force: the controller waits for it after each reload.
                location = /__orchestrate/generation {
                    return 200 "{{generation}}";
                }

                # For prometheus-nginx-exporter.
                location = /nginx_status {
                    stub_status;
                }

                location / {
                    proxy_pass http://$recommender_backend;
                    proxy_http_version 1.1;
                    proxy_set_header Connection "";
                    proxy_set_header Host $host;
                    proxy_set_header X-Request-ID $request_id;
                }
            }
        }

        """#
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
