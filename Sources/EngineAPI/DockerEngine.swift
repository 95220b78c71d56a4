public import Foundation
public import HTTPTransport

/// A failure the Docker engine reported (its `message`), or a transport failure reaching it.
public struct DockerError: Error, CustomStringConvertible, Sendable {
    /// The HTTP status, 0 when the engine could not be reached.
    public var status: Int
    public var operation: String
    public var message: String

    public var isNotFound: Bool { status == 404 }
    public var isUnreachable: Bool { status == 0 }

    public var description: String {
        status == 0 ? "\(operation): the Docker engine is unreachable: \(message)" : "\(operation): \(message) (HTTP \(status))"
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
                throw EngineClientError("the Docker host \(host) has no host name", hint: "tcp://HOST:PORT, e.g. tcp://10.0.0.5:2376")
            }
            if tls == nil && !insecure && !Self.isLoopback(name) {
                throw EngineClientError(
                    "refusing plain HTTP to the Docker engine at \(host): anyone on the network could read and change every call, and an engine runs containers as root",
                    hint: "use TLS: DOCKER_TLS_VERIFY=1 with DOCKER_CERT_PATH holding ca.pem, cert.pem and key.pem (or deploy.docker.certificates); on a network you trust, deploy.docker.insecure: true")
            }
            baseURL = (tls == nil ? "http://" : "https://") + address
            self.tls = tls
        } else {
            throw EngineClientError("the Docker host \(host) is neither unix:///PATH nor tcp://HOST:PORT", hint: "set DOCKER_HOST or deploy.docker.host")
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
            ?? (isSet("DOCKER_CONFIG") ? environment["DOCKER_CONFIG"] : nil) ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.docker")
        func file(_ name: String) -> String? {
            let path = URL(fileURLWithPath: folder).appendingPathComponent(name).path
            return FileManager.default.fileExists(atPath: path) ? path : nil
        }
        let source = certificates != nil ? "deploy.docker.certificates" : isSet("DOCKER_CERT_PATH") ? "DOCKER_CERT_PATH" : "the docker CLI's folder"
        let authority = file("ca.pem")
        if verify && authority == nil {
            throw EngineClientError(
                "TLS to \(host) is to be verified but \(folder)/ca.pem (from \(source)) does not exist",
                hint: "put the engine's certificate authority there as ca.pem, or point DOCKER_CERT_PATH at the folder that has it")
        }
        let certificate = file("cert.pem")
        let key = file("key.pem")
        if (certificate == nil) != (key == nil) {
            throw EngineClientError(
                "\(folder) (from \(source)) has \(certificate == nil ? "key.pem but no cert.pem" : "cert.pem but no key.pem")",
                hint: "a client certificate needs both cert.pem and key.pem")
        }
        return try DockerEngine(host: host, tls: .init(certificate: certificate, key: key, authority: authority, verify: verify), insecure: insecure)
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
        let data = try await call("GET", "/version", versioned: false, operation: "asking the engine for its version")
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let theirs = object["ApiVersion"] as? String else {
            throw DockerError(status: 200, operation: "reading /version", message: "the answer has no ApiVersion: is \(host) a Docker engine?")
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

    /// One API call; a status of 400 or more throws the engine's message.
    @discardableResult
    public func call(
        _ method: String, _ path: String, query: [String: String] = [:], json: Any? = nil, body: HTTPClient.Body? = nil,
        contentType: String? = nil, timeout: Duration = .seconds(30), versioned: Bool = true, operation: String
    ) async throws -> Data {
        var url = baseURL + (versioned ? "/v\(version)" : "") + path
        if !query.isEmpty {
            url += "?" + query.sorted { $0.key < $1.key }.map { "\($0.key)=\(HTTPClient.encodeQueryValue($0.value))" }.joined(separator: "&")
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
                .init(method: method, url: url, headers: headers, body: payload, timeout: timeout, unixSocket: socket, tls: tls))
        } catch {
            throw DockerError(status: 0, operation: operation, message: "\(host): \(error)")
        }
        guard response.status < 400 else {
            let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any]
            let message = object?["message"] as? String ?? String(decoding: response.body.prefix(500), as: UTF8.self)
            throw DockerError(status: response.status, operation: operation, message: message)
        }
        return response.body
    }

    /// A JSON answer.
    func object(_ method: String, _ path: String, query: [String: String] = [:], json: Any? = nil, operation: String) async throws -> [String: Any] {
        let data = try await call(method, path, query: query, json: json, operation: operation)
        return (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
    }

    /// Answers whether the engine is up (`GET /_ping`).
    public func ping() async -> Bool {
        (try? await call("GET", "/_ping", timeout: .seconds(3), versioned: false, operation: "ping")) != nil
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
        let data = try await call("GET", "/containers/json", query: ["all": "true", "filters": try Self.labelFilter(labels)], operation: "listing containers")
        let list = (try? JSONSerialization.jsonObject(with: data) as? [[String: Any]]) ?? []
        return list.map { entry in
            let names = entry["Names"] as? [String] ?? []
            return ContainerSummary(
                id: entry["Id"] as? String ?? "", name: (names.first ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "/")),
                state: entry["State"] as? String ?? "", labels: entry["Labels"] as? [String: String] ?? [:], image: entry["Image"] as? String ?? "")
        }
    }

    /// The `filters` query value that selects objects carrying every one of `labels`.
    static func labelFilter(_ labels: [String: String]) throws -> String {
        let filters = ["label": labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }]
        return String(decoding: try JSONSerialization.data(withJSONObject: filters), as: UTF8.self)
    }

    /// Creates a container from an Engine API create body; returns its id.
    public func createContainer(name: String, config: [String: Any]) async throws -> String {
        let answer = try await object("POST", "/containers/create", query: ["name": name], json: config, operation: "creating container \(name)")
        guard let id = answer["Id"] as? String else {
            throw DockerError(status: 200, operation: "creating container \(name)", message: "the engine answered without an Id")
        }
        return id
    }

    public func start(_ id: String) async throws {
        try await call("POST", "/containers/\(id)/start", operation: "starting container \(id.prefix(12))")
    }

    /// Stops (SIGTERM, then SIGKILL after `seconds`); a container that is gone is not an error.
    public func stop(_ id: String, seconds: Int = 10) async throws {
        do {
            try await call("POST", "/containers/\(id)/stop", query: ["t": String(seconds)], timeout: .seconds(Int64(seconds) + 30), operation: "stopping \(id.prefix(12))")
        } catch let error as DockerError where error.isNotFound || error.status == 304 {}
    }

    /// Removes, running or not; a container that is gone is not an error.
    public func remove(_ id: String) async throws {
        do {
            try await call("DELETE", "/containers/\(id)", query: ["force": "true", "v": "true"], operation: "removing \(id.prefix(12))")
        } catch let error as DockerError where error.isNotFound {}
    }

    public func kill(_ id: String, signal: String) async throws {
        try await call("POST", "/containers/\(id)/kill", query: ["signal": signal], operation: "sending \(signal) to \(id.prefix(12))")
    }

    /// Waits for the container to stop; returns its exit status.
    public func wait(_ id: String, timeout: Duration) async throws -> Int {
        let answer = try await call("POST", "/containers/\(id)/wait", timeout: timeout, operation: "waiting for \(id.prefix(12))")
        let object = (try? JSONSerialization.jsonObject(with: answer) as? [String: Any]) ?? [:]
        return (object["StatusCode"] as? Int) ?? -1
    }

    public func inspect(_ id: String) async throws -> [String: Any] {
        try await object("GET", "/containers/\(id)/json", operation: "inspecting \(id.prefix(12))")
    }

    /// The last `lines` lines of stdout and stderr, from Docker's multiplexed frames.
    public func logs(_ id: String, lines: Int = 20) async throws -> String {
        let data = try await call(
            "GET", "/containers/\(id)/logs", query: ["stdout": "true", "stderr": "true", "tail": String(lines)], operation: "reading logs of \(id.prefix(12))")
        return Self.demultiplex(data)
    }

    /// Docker's log stream: frames of an 8-byte header (stream, 0, 0, 0, big-endian size) and
    /// the bytes; a container with a TTY sends plain bytes.
    static func demultiplex(_ data: Data) -> String {
        let bytes = [UInt8](data)
        var text = [UInt8]()
        var index = 0
        while index + 8 <= bytes.count, [0, 1, 2].contains(bytes[index]), bytes[index + 1] == 0, bytes[index + 2] == 0, bytes[index + 3] == 0 {
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
        let created = try await object(
            "POST", "/containers/\(id)/exec", json: ["Cmd": command, "AttachStdout": true, "AttachStderr": true], operation: "exec in \(id.prefix(12))")
        guard let execID = created["Id"] as? String else { return -1 }
        try await call("POST", "/exec/\(execID)/start", json: ["Detach": false, "Tty": false], operation: "exec \(command.joined(separator: " "))")
        let result = try await object("GET", "/exec/\(execID)/json", operation: "exec result")
        return result["ExitCode"] as? Int ?? -1
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
        let url = baseURL + "/v\(version)/events?" + [
            "filters=\(HTTPClient.encodeQueryValue(try Self.labelFilter(labels)))", "since=\(since)", "until=\(until)",
        ].joined(separator: "&")
        let buffer = LineBuffer()
        let timeout = Duration.seconds(Int64(max(1, until - Int(Date().timeIntervalSince1970)) + 30))
        do {
            let response = try await HTTPClient.send(.init(url: url, timeout: timeout, unixSocket: socket, tls: tls)) { chunk in
                for line in buffer.append(chunk) {
                    guard let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any] else { continue }
                    let actor = object["Actor"] as? [String: Any] ?? [:]
                    let event = Event(
                        type: object["Type"] as? String ?? "", action: object["Action"] as? String ?? object["status"] as? String ?? "",
                        id: actor["ID"] as? String ?? object["id"] as? String ?? "", attributes: actor["Attributes"] as? [String: String] ?? [:])
                    if !handle(event) { return false }
                }
                return true
            }
            guard response.status < 400 else {
                throw DockerError(status: response.status, operation: "reading events", message: String(decoding: response.body.prefix(300), as: UTF8.self))
            }
        } catch let error as DockerError {
            throw error
        } catch {
            throw DockerError(status: 0, operation: "reading events", message: "\(host): \(error)")
        }
    }

    // MARK: Networks and images

    /// Creates the network unless it exists.
    public func ensureNetwork(_ name: String, labels: [String: String]) async throws {
        let filters = String(decoding: try JSONSerialization.data(withJSONObject: ["name": [name]]), as: UTF8.self)
        let data = try await call("GET", "/networks", query: ["filters": filters], operation: "listing networks")
        let list = (try? JSONSerialization.jsonObject(with: data) as? [[String: Any]]) ?? []
        if list.contains(where: { $0["Name"] as? String == name }) { return }
        try await call("POST", "/networks/create", json: ["Name": name, "Labels": labels, "CheckDuplicate": true], operation: "creating network \(name)")
    }

    /// The names of the networks carrying every one of `labels`.
    public func networks(labels: [String: String]) async throws -> [String] {
        let data = try await call("GET", "/networks", query: ["filters": try Self.labelFilter(labels)], operation: "listing networks")
        let list = (try? JSONSerialization.jsonObject(with: data) as? [[String: Any]]) ?? []
        return list.compactMap { $0["Name"] as? String }
    }

    public func removeNetwork(_ name: String) async throws {
        do {
            try await call("DELETE", "/networks/\(name)", operation: "removing network \(name)")
        } catch let error as DockerError where error.isNotFound {}
    }

    public func imageExists(_ reference: String) async throws -> Bool {
        do {
            try await call("GET", "/images/\(reference)/json", operation: "inspecting image \(reference)")
            return true
        } catch let error as DockerError where error.isNotFound {
            return false
        }
    }

    /// Imports a root filesystem tarball as `repository` (`localhost/NAME:TAG`), streamed from disk.
    public func importImage(tarball: String, repository: String) async throws {
        // podman 4.3 ignores tag=, so the tag travels in repo=; Docker accepts it there too.
        try await call(
            "POST", "/images/create", query: ["fromSrc": "-", "repo": repository], body: .file(tarball), contentType: "application/x-tar",
            timeout: .seconds(600), operation: "importing \(tarball) as \(repository)")
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
