public import Foundation
public import HTTPTransport
import TextSafety

/// A failure the Docker engine reported (its `message`), a status outside 2xx, or no usable
/// answer: the engine could not be reached, or answered more than the call's limit.
public struct DockerError: Error, CustomStringConvertible, Sendable {
    /// The HTTP status, 0 when the engine gave no usable answer (see `cause`).
    public var status: Int
    public var operation: String
    public var message: String
    /// Why there was no usable answer, when `status` is 0.
    public var cause: HTTPClient.TransportError?

    public init(status: Int, operation: String, message: String, cause: HTTPClient.TransportError? = nil) {
        self.status = status
        self.operation = operation
        self.message = message
        self.cause = cause
    }

    public var isNotFound: Bool { status == 404 }
    /// No usable answer: what the engine runs cannot be known from it.
    public var isUnreachable: Bool { status == 0 }

    public var description: String {
        guard status == 0 else { return "\(operation): \(message) (HTTP \(status))" }
        if cause?.code == .answerTooLarge { return "\(operation): the Docker engine's answer was cut off: \(message)" }
        return "\(operation): the Docker engine is unreachable: \(message)"
    }
}

/// The Docker Engine API over libcurl: a unix socket (`unix:///var/run/docker.sock`) or TCP, with
/// TLS by the docker CLI's rules (see `configured`); plain HTTP over TCP only to a loopback host
/// unless the caller says the network is trusted. The API version is negotiated from `/version`:
/// the engine's, capped at the version this code was written against. Podman's
/// Docker-compatible service answers the same calls.
public struct DockerEngine: Sendable {
    /// The newest API version this client speaks.
    public static let clientVersion = "1.41"

    public let host: String
    let socket: String?
    let baseURL: String
    let tls: HTTPClient.TLSFiles?
    public private(set) var version: String

    /// How a tcp engine is reached over TLS; nil: plain HTTP (or a unix socket).
    public var tlsFiles: HTTPClient.TLSFiles? { tls }
    public var usesTLS: Bool { tls != nil }

    /// `host`: `unix:///path` or `tcp://HOST:PORT`; `tls`: how to reach a tcp host over TLS (nil:
    /// plain HTTP, refused to a host other than loopback unless `insecure`).
    public init(host: String, tls: HTTPClient.TLSFiles? = nil, insecure: Bool = false) throws {
        self.host = host
        version = Self.clientVersion
        if host.hasPrefix("unix://") {
            socket = String(host.dropFirst("unix://".count))
            baseURL = "http://localhost"
            self.tls = nil
        } else if host.hasPrefix("tcp://") {
            socket = nil
            let address = host.dropFirst("tcp://".count)
            guard let name = Self.hostName(of: address) else {
                throw EngineClientError(
                    "the Docker host \(host) has no host name", hint: "tcp://HOST:PORT, e.g. tcp://10.0.0.5:2376")
            }
            if tls == nil && !insecure && !Self.isLoopback(name) {
                throw EngineClientError(
                    "refusing plain HTTP to the Docker engine at \(host): anyone on the network could read and change every call, and an engine runs containers as root",
                    hint:
                        "use TLS: DOCKER_TLS_VERIFY=1 with DOCKER_CERT_PATH holding ca.pem, cert.pem and key.pem (or deploy.docker.certificates); on a network you trust, deploy.docker.insecure: true"
                )
            }
            baseURL = (tls == nil ? "http://" : "https://") + address
            self.tls = tls
        } else {
            throw EngineClientError(
                "the Docker host \(host) is neither unix:///PATH nor tcp://HOST:PORT",
                hint: "set DOCKER_HOST or deploy.docker.host")
        }
    }

    /// The engine the docker CLI would reach, by its rules: `host`, else `DOCKER_HOST`, else the
    /// default socket. Over tcp, TLS when `DOCKER_TLS` or `DOCKER_TLS_VERIFY` is set to anything
    /// (not empty), the engine's certificate verified only with `DOCKER_TLS_VERIFY`; the files
    /// from `DOCKER_CERT_PATH`, else `DOCKER_CONFIG`, else `~/.docker`: `ca.pem` (to verify), and
    /// `cert.pem` with `key.pem` when they exist. `DOCKER_CERT_PATH` alone does not turn TLS on
    /// (as with the CLI). A pipeline's `certificates` folder means TLS, verified, with its files.
    public static func configured(
        host: String?, certificates: String?, insecure: Bool = false, environment: [String: String]? = nil
    ) throws -> DockerEngine {
        let environment = environment ?? ProcessInfo.processInfo.environment
        func isSet(_ name: String) -> Bool { !(environment[name] ?? "").isEmpty }
        let host = host ?? environment["DOCKER_HOST"].flatMap { $0.isEmpty ? nil : $0 } ?? "unix:///var/run/docker.sock"
        let verify = certificates != nil || isSet("DOCKER_TLS_VERIFY")
        guard host.hasPrefix("tcp://"), verify || isSet("DOCKER_TLS") else {
            return try DockerEngine(host: host, insecure: insecure)
        }
        let folder: String =
            certificates ?? (isSet("DOCKER_CERT_PATH") ? environment["DOCKER_CERT_PATH"] : nil)
            ?? (isSet("DOCKER_CONFIG") ? environment["DOCKER_CONFIG"] : nil)
            ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.docker")
        func file(_ name: String) -> String? {
            let path = URL(fileURLWithPath: folder).appendingPathComponent(name).path
            return FileManager.default.fileExists(atPath: path) ? path : nil
        }
        let source =
            certificates != nil
            ? "deploy.docker.certificates" : isSet("DOCKER_CERT_PATH") ? "DOCKER_CERT_PATH" : "the docker CLI's folder"
        let authority = file("ca.pem")
        if verify && authority == nil {
            throw EngineClientError(
                "TLS to \(host) is to be verified but \(folder)/ca.pem (from \(source)) does not exist",
                hint:
                    "put the engine's certificate authority there as ca.pem, or point DOCKER_CERT_PATH at the folder that has it"
            )
        }
        let certificate = file("cert.pem")
        let key = file("key.pem")
        if (certificate == nil) != (key == nil) {
            throw EngineClientError(
                "\(folder) (from \(source)) has \(certificate == nil ? "key.pem but no cert.pem" : "cert.pem but no key.pem")",
                hint: "a client certificate needs both cert.pem and key.pem")
        }
        return try DockerEngine(
            host: host, tls: .init(certificate: certificate, key: key, authority: authority, verify: verify),
            insecure: insecure)
    }

    /// The host name of `HOST:PORT` or `[IPv6]:PORT`.
    public static func hostName(of address: Substring) -> String? {
        if address.hasPrefix("[") {
            guard let close = address.firstIndex(of: "]") else { return nil }
            let name = address[address.index(after: address.startIndex)..<close]
            return name.isEmpty ? nil : String(name)
        }
        let name = address.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return name.isEmpty ? nil : String(name)
    }

    /// Only this machine can see the traffic: localhost, 127.0.0.0/8, ::1.
    public static func isLoopback(_ name: String) -> Bool {
        let name = name.lowercased()
        if name == "localhost" || name == "::1" { return true }
        let octets = name.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets.first == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    /// Asks the engine for its API version and uses the lower of its and ours.
    public func negotiated() async throws -> DockerEngine {
        let answer = try await answer(
            "GET", "/version", versioned: false, limit: AnswerLimit.object,
            operation: "asking the engine for its version")
        guard let theirs = JSONAnswer.decode(EngineAnswer.Version.self, from: answer.body)?.apiVersion else {
            throw DockerError(
                status: answer.status, operation: "reading /version",
                message: "the answer has no ApiVersion: is \(host) a Docker engine?")
        }
        var engine = self
        engine.version = Self.negotiatedVersion(engine: theirs)
        return engine
    }

    /// The API version both sides speak: the engine's when it is older than ours, else ours.
    public static func negotiatedVersion(engine: String) -> String {
        let theirs = engine.split(separator: ".").compactMap { Int($0) }
        let ours = clientVersion.split(separator: ".").compactMap { Int($0) }
        return theirs.lexicographicallyPrecedes(ours) ? engine : clientVersion
    }

    /// The most an answer of each kind may hold (documented in the README): an engine that
    /// answers without end, or a hundred times more than a busy engine would, is cut off with
    /// an error rather than fill the controller's memory.
    public enum AnswerLimit {
        /// One object: a container or service inspected, a created id, the version, `/info`.
        public static let object = HTTPClient.BodyLimit(
            1 << 20, for: "one object of the Docker Engine API",
            hint: "is the Docker host an engine (or a proxy in front of one that answers something else)?")
        /// A list of containers, services, tasks, nodes or networks: thousands of entries of a
        /// few kilobytes.
        public static let list = HTTPClient.BodyLimit(
            4 << 20, for: "a list of the Docker Engine API",
            hint:
                "the engine lists far more objects than a release needs: remove stopped containers and old services (docker system prune), or check that the host is a Docker engine"
        )
        /// The last lines a container or service logged.
        public static let logs = HTTPClient.BodyLimit(
            1 << 20, for: "the last lines of a container's log",
            hint: "the container writes very long lines; its full log is on the engine (docker logs)")
        /// The progress an image build or import streams.
        public static let progress = HTTPClient.BodyLimit(
            16 << 20, for: "the progress of an image build or import",
            hint: "the build writes far more output than ours does: check the Dockerfile and the base image")
        /// The events of one window (streamed, never kept whole).
        public static let events = HTTPClient.BodyLimit(
            64 << 20, for: "the events of the Docker engine", hint: "ask for a shorter window, or narrower labels")
    }

    /// One API call; a status outside 2xx throws the engine's message with that status (304,
    /// "already started/stopped", is thrown too: the callers that expect it catch it).
    @discardableResult
    public func call(
        _ method: String, _ path: String, query: [String: String] = [:], json: Any? = nil, body: HTTPClient.Body? = nil,
        contentType: String? = nil, timeout: Duration = .seconds(30), versioned: Bool = true,
        limit: HTTPClient.BodyLimit, operation: String
    ) async throws -> Data {
        try await answer(
            method, path, query: query, json: json, body: body, contentType: contentType, timeout: timeout,
            versioned: versioned, limit: limit,
            operation: operation
        ).body
    }

    /// `call`, with the answer's status.
    func answer(
        _ method: String, _ path: String, query: [String: String] = [:], json: Any? = nil, body: HTTPClient.Body? = nil,
        contentType: String? = nil, timeout: Duration = .seconds(30), versioned: Bool = true,
        limit: HTTPClient.BodyLimit, operation: String
    ) async throws -> HTTPClient.Response {
        var url = baseURL + (versioned ? "/v\(version)" : "") + path
        if !query.isEmpty {
            url +=
                "?"
                + query.sorted { $0.key < $1.key }.map { "\($0.key)=\(HTTPClient.encodeQueryValue($0.value))" }.joined(
                    separator: "&")
        }
        var headers: [String] = []
        var payload = body
        if let json {
            payload = .data(try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]))
            headers.append("Content-Type: application/json")
        } else if let contentType {
            headers.append("Content-Type: \(contentType)")
        }
        if payload == nil && method == "POST" { payload = .data(Data()) }
        let response: HTTPClient.Response
        do {
            response = try await HTTPClient.send(
                .init(
                    method: method, url: url, headers: headers, body: payload, timeout: timeout, limit: limit,
                    unixSocket: socket, tls: tls))
        } catch let error as HTTPClient.TransportError {
            throw DockerError(status: 0, operation: operation, message: "\(host): \(error)", cause: error)
        }
        guard (200..<300).contains(response.status) else {
            throw DockerError(status: response.status, operation: operation, message: Self.message(of: response))
        }
        return response
    }

    /// What an answer outside 2xx says: the engine's `message`, else the start of the body (a
    /// proxy's page), escaped and cut. A redirect is no answer of the Engine API.
    static func message(of response: HTTPClient.Response) -> String {
        let text =
            JSONAnswer.decode(EngineAnswer.Failure.self, from: response.body)?.message
            ?? String(decoding: response.body.prefix(OutsideText.messageLimit), as: UTF8.self)
        let said = OutsideText.bounded(
            text.trimmingCharacters(in: .whitespacesAndNewlines), limit: OutsideText.messageLimit)
        if (300..<400).contains(response.status) && response.status != 304 {
            return
                "a redirect, which the Engine API never answers: is the host a Docker engine, or a proxy in front of one?"
                + (said.isEmpty ? "" : " (it said: \(said))")
        }
        return said.isEmpty ? "no message" : said
    }

    /// Answers whether the engine is up (`GET /_ping`).
    public func ping() async -> Bool {
        (try? await call(
            "GET", "/_ping", timeout: .seconds(3), versioned: false, limit: AnswerLimit.object, operation: "ping"))
            != nil
    }

    // MARK: Containers

    public struct ContainerSummary: Sendable, Equatable {
        public var id: String
        public var name: String
        public var state: String
        public var labels: [String: String]
        public var image: String

        public var isRunning: Bool { state == "running" }
        /// Stopped after running (not merely created).
        public var hasExited: Bool { state == "exited" || state == "dead" || state == "stopped" }
    }

    /// Containers, stopped ones too, carrying every one of `labels`.
    public func containers(labels: [String: String]) async throws -> [ContainerSummary] {
        let data = try await call(
            "GET", "/containers/json", query: ["all": "true", "filters": try Self.labelFilter(labels)],
            limit: AnswerLimit.list, operation: "listing containers")
        return Self.containerSummaries(data)
    }

    /// The containers of a `GET /containers/json` answer; none when it is not a list of objects.
    static func containerSummaries(_ data: Data) -> [ContainerSummary] {
        (JSONAnswer.decode([EngineAnswer.Container].self, from: data) ?? []).map { entry in
            ContainerSummary(
                id: entry.id ?? "",
                name: (entry.names?.first ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "/")),
                state: entry.state ?? "", labels: entry.labels ?? [:], image: entry.image ?? "")
        }
    }

    /// The `filters` query value that selects objects carrying every one of `labels`.
    static func labelFilter(_ labels: [String: String]) throws -> String {
        let filters = ["label": labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }]
        return String(decoding: try JSONSerialization.data(withJSONObject: filters), as: UTF8.self)
    }

    /// Creates a container from an Engine API create body; returns its id.
    public func createContainer(name: String, config: [String: Any]) async throws -> String {
        let answer = try await answer(
            "POST", "/containers/create", query: ["name": name], json: config, limit: AnswerLimit.object,
            operation: "creating container \(name)")
        guard let id = JSONAnswer.decode(EngineAnswer.Created.self, from: answer.body)?.id else {
            throw DockerError(
                status: answer.status, operation: "creating container \(name)",
                message: "the engine answered without an Id")
        }
        return id
    }

    /// Starts; a container that already runs (304) is not an error.
    public func start(_ id: String) async throws {
        do {
            try await call(
                "POST", "/containers/\(id)/start", limit: AnswerLimit.object,
                operation: "starting container \(id.prefix(12))")
        } catch let error as DockerError where error.status == 304 {}
    }

    /// Stops (SIGTERM, then SIGKILL after `seconds`); a container that is gone or already stopped
    /// (304) is not an error.
    public func stop(_ id: String, seconds: Int = 10) async throws {
        do {
            try await call(
                "POST", "/containers/\(id)/stop", query: ["t": String(seconds)], timeout: .seconds(Int64(seconds) + 30),
                limit: AnswerLimit.object,
                operation: "stopping \(id.prefix(12))")
        } catch let error as DockerError where error.isNotFound || error.status == 304 {}
    }

    /// Removes, running or not; a container that is gone is not an error.
    public func remove(_ id: String) async throws {
        do {
            try await call(
                "DELETE", "/containers/\(id)", query: ["force": "true", "v": "true"], limit: AnswerLimit.object,
                operation: "removing \(id.prefix(12))")
        } catch let error as DockerError where error.isNotFound {}
    }

    public func kill(_ id: String, signal: String) async throws {
        try await call(
            "POST", "/containers/\(id)/kill", query: ["signal": signal], limit: AnswerLimit.object,
            operation: "sending \(signal) to \(id.prefix(12))")
    }

    /// Waits for the container to stop; returns its exit status.
    public func wait(_ id: String, timeout: Duration) async throws -> Int {
        let answer = try await call(
            "POST", "/containers/\(id)/wait", timeout: timeout, limit: AnswerLimit.object,
            operation: "waiting for \(id.prefix(12))")
        return JSONAnswer.decode(EngineAnswer.Exit.self, from: answer)?.statusCode ?? -1
    }

    /// What `GET /containers/ID/json` says of a container, as far as the client reads it.
    public struct ContainerInspection: Sendable, Equatable {
        public var id: String = ""
        /// Without Docker's leading `/`.
        public var name: String = ""
        /// `Config.Image`, as the container was created from it.
        public var image: String = ""
        /// `Config.Labels`.
        public var labels: [String: String] = [:]
        /// `State.Status`: `created`, `running`, `paused`, `restarting`, `removing`, `exited`, `dead`.
        public var status: String = ""
        public var isRunning: Bool = false
        /// `State.ExitCode` (0 while it runs).
        public var exitCode: Int? = nil
        /// `State.Error`, cut to a message's length.
        public var error: String = ""
        /// `State.Health.Status` of a container with a health check: `starting`, `healthy`, `unhealthy`.
        public var health: String? = nil
    }

    public func inspect(_ id: String) async throws -> ContainerInspection {
        Self.containerInspection(
            try await call(
                "GET", "/containers/\(id)/json", limit: AnswerLimit.object, operation: "inspecting \(id.prefix(12))"))
    }

    /// The container a `GET /containers/ID/json` answer describes; every field empty when the
    /// answer is not an object.
    static func containerInspection(_ data: Data) -> ContainerInspection {
        guard let answer = JSONAnswer.decode(EngineAnswer.Inspection.self, from: data) else { return .init() }
        return ContainerInspection(
            id: answer.id ?? "", name: (answer.name ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "/")),
            image: answer.image ?? "", labels: answer.labels ?? [:], status: answer.status ?? "",
            isRunning: answer.running ?? false, exitCode: answer.exitCode,
            error: OutsideText.bounded(answer.error ?? "", limit: OutsideText.messageLimit), health: answer.health)
    }

    /// The last `lines` lines of stdout and stderr, from Docker's multiplexed frames (as they
    /// are: `indented` escapes and cuts them for a message).
    public func logs(_ id: String, lines: Int = 20) async throws -> String {
        let data = try await call(
            "GET", "/containers/\(id)/logs", query: ["stdout": "true", "stderr": "true", "tail": String(lines)],
            limit: AnswerLimit.logs,
            operation: "reading logs of \(id.prefix(12))")
        return Self.demultiplex(data)
    }

    /// Docker's log stream: frames of an 8-byte header (stream, 0, 0, 0, big-endian size) and
    /// the bytes; a container with a TTY sends plain bytes.
    static func demultiplex(_ data: Data) -> String {
        let bytes = [UInt8](data)
        var text = [UInt8]()
        var index = 0
        while index + 8 <= bytes.count, [0, 1, 2].contains(bytes[index]), bytes[index + 1] == 0, bytes[index + 2] == 0,
            bytes[index + 3] == 0
        {
            let size = bytes[(index + 4)..<(index + 8)].reduce(0) { $0 << 8 | Int($1) }
            let end = min(bytes.count, index + 8 + size)
            text += bytes[(index + 8)..<end]
            index = end
        }
        if index == 0 { return String(decoding: bytes, as: UTF8.self) }
        return String(decoding: text, as: UTF8.self)
    }

    /// Runs a command in a running container and returns its exit status.
    public func exec(_ id: String, _ command: [String]) async throws -> Int {
        let created = try await call(
            "POST", "/containers/\(id)/exec", json: ["Cmd": command, "AttachStdout": true, "AttachStderr": true],
            limit: AnswerLimit.object,
            operation: "exec in \(id.prefix(12))")
        guard let execID = JSONAnswer.decode(EngineAnswer.Created.self, from: created)?.id else { return -1 }
        try await call(
            "POST", "/exec/\(execID)/start", json: ["Detach": false, "Tty": false], limit: AnswerLimit.logs,
            operation: "exec \(command.joined(separator: " "))")
        let result = try await call("GET", "/exec/\(execID)/json", limit: AnswerLimit.object, operation: "exec result")
        return JSONAnswer.decode(EngineAnswer.Exit.self, from: result)?.exitCode ?? -1
    }

    /// One event of `GET /events`.
    public struct Event: Sendable, Equatable {
        public var type: String
        public var action: String
        public var id: String
        public var attributes: [String: String]
    }

    /// Streams the engine's events about objects carrying `labels`, from `since` until `until`
    /// (both Unix seconds; the engine ends the stream at `until`), handing each to `handle` as it
    /// arrives; `handle` returning false ends the stream early.
    public func events(
        labels: [String: String], since: Int, until: Int, handle: @escaping @Sendable (Event) -> Bool
    ) async throws {
        let url =
            baseURL + "/v\(version)/events?"
            + [
                "filters=\(HTTPClient.encodeQueryValue(try Self.labelFilter(labels)))", "since=\(since)",
                "until=\(until)",
            ].joined(separator: "&")
        let buffer = LineBuffer()
        let timeout = Duration.seconds(Int64(max(1, until - Int(Date().timeIntervalSince1970)) + 30))
        do {
            let request = HTTPClient.Request(
                url: url, timeout: timeout, limit: AnswerLimit.events, unixSocket: socket, tls: tls)
            let response = try await HTTPClient.send(request) { chunk in
                for line in buffer.append(chunk) {
                    guard let event = Self.event(line) else { continue }
                    if !handle(event) { return false }
                }
                return true
            }
            guard (200..<300).contains(response.status) else {
                throw DockerError(
                    status: response.status, operation: "reading events", message: Self.message(of: response))
            }
        } catch let error as HTTPClient.TransportError {
            throw DockerError(status: 0, operation: "reading events", message: "\(host): \(error)", cause: error)
        }
    }

    /// One line of the events stream; nil when it is not a JSON object.
    static func event(_ line: Data) -> Event? {
        guard let answer = JSONAnswer.decode(EngineAnswer.Event.self, from: line) else { return nil }
        return Event(
            type: answer.type ?? "", action: answer.action ?? answer.status ?? "",
            id: answer.actor?.id ?? answer.id ?? "",
            attributes: answer.actor?.attributes ?? [:])
    }

    // MARK: Networks and images

    /// Creates the network unless it exists.
    public func ensureNetwork(_ name: String, labels: [String: String]) async throws {
        let filters = String(decoding: try JSONSerialization.data(withJSONObject: ["name": [name]]), as: UTF8.self)
        let list = try await call(
            "GET", "/networks", query: ["filters": filters], limit: AnswerLimit.list, operation: "listing networks")
        if Self.networkNames(list).contains(name) { return }
        try await call(
            "POST", "/networks/create", json: ["Name": name, "Labels": labels, "CheckDuplicate": true],
            limit: AnswerLimit.object,
            operation: "creating network \(name)")
    }

    /// The names of the networks carrying every one of `labels`.
    public func networks(labels: [String: String]) async throws -> [String] {
        let list = try await call(
            "GET", "/networks", query: ["filters": try Self.labelFilter(labels)], limit: AnswerLimit.list,
            operation: "listing networks")
        return Self.networkNames(list)
    }

    /// The names in a `GET /networks` answer; none when it is not a list of objects.
    static func networkNames(_ data: Data) -> [String] {
        (JSONAnswer.decode([EngineAnswer.Network].self, from: data) ?? []).compactMap(\.name)
    }

    public func removeNetwork(_ name: String) async throws {
        do {
            try await call(
                "DELETE", "/networks/\(name)", limit: AnswerLimit.object, operation: "removing network \(name)")
        } catch let error as DockerError where error.isNotFound {}
    }

    public func imageExists(_ reference: String) async throws -> Bool {
        do {
            try await call(
                "GET", "/images/\(reference)/json", limit: AnswerLimit.object,
                operation: "inspecting image \(reference)")
            return true
        } catch let error as DockerError where error.isNotFound {
            return false
        }
    }

    /// Imports a root filesystem tarball as `repository` (`localhost/NAME:TAG`), streamed from disk.
    public func importImage(tarball: String, repository: String) async throws {
        // podman 4.3 ignores tag=, so the tag travels in repo=; Docker accepts it there too.
        try await call(
            "POST", "/images/create", query: ["fromSrc": "-", "repo": repository], body: .file(tarball),
            contentType: "application/x-tar",
            timeout: .seconds(600), limit: AnswerLimit.progress, operation: "importing \(tarball) as \(repository)")
    }
}

/// Splits a stream of bytes into newline-terminated lines (the events stream is JSON lines).
private final class LineBuffer: @unchecked Sendable {
    // Used from libcurl's write callback only, one transfer at a time.
    private var pending = Data()

    func append(_ chunk: Data) -> [Data] {
        pending.append(chunk)
        var lines: [Data] = []
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
            lines.append(pending[pending.startIndex..<newline])
            pending = Data(pending[pending.index(after: newline)...])
        }
        return lines
    }
}
