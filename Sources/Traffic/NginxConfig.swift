import Foundation

/// Renders the nginx configuration from a template. It depends only on where nginx listens and
/// keeps its files, not on the split: the split reaches the running nginx through the control
/// socket (see `NginxController`), so a traffic step never reloads nginx.
///
/// Every value that reaches the file is checked first, so nothing can inject nginx syntax.
public struct NginxConfig: Sendable {
    public var template: String
    public var listenAddress: String
    public var listenPort: Int
    /// Where nginx keeps its pid file, error log, temporary files, control socket and the state
    /// file with the last applied split.
    public var runtimeFolder: String
    /// The Lua module and the NDK; nil when they are not installed (rendering then says which
    /// package to install).
    public var modules: NginxModules?
    /// The balancer and control code (`Resources/traffic.lua`).
    public var trafficLua: String
    /// The team-draft interleaving (`Resources/interleave.lua`).
    public var interleaveLua: String
    /// The shadow stage's comparisons (`Resources/shadow.lua`).
    public var shadowLua: String

    public init(
        template: String = NginxConfig.defaultTemplate, listenAddress: String = "127.0.0.1", listenPort: Int,
        runtimeFolder: String,
        modules: NginxModules? = NginxModules.find(), trafficLua: String = NginxConfig.defaultTrafficLua,
        interleaveLua: String = NginxConfig.defaultInterleaveLua, shadowLua: String = NginxConfig.defaultShadowLua
    ) {
        self.template = template
        self.listenAddress = listenAddress
        self.listenPort = listenPort
        self.runtimeFolder = runtimeFolder
        self.modules = modules
        self.trafficLua = trafficLua
        self.interleaveLua = interleaveLua
        self.shadowLua = shadowLua
    }

    public var pidFile: String { runtimeFolder + "/nginx.pid" }
    public var errorLog: String { runtimeFolder + "/error.log" }
    /// The control listener (`GET`/`POST /traffic`), never the public port.
    public var controlSocket: String { runtimeFolder + "/control.sock" }
    /// The last split the controller applied, in the line format of `TrafficState`; a starting
    /// nginx loads it.
    public var stateFile: String { runtimeFolder + "/traffic.state" }

    /// A rendered configuration and its identity, which the running nginx reports on its control
    /// socket, so the controller can tell whether a reload is needed.
    public struct Rendering: Sendable, Equatable {
        public var text: String
        public var id: String
    }

    /// The configuration text.
    ///
    /// - Throws: `TrafficError` when a value would be misread by nginx or the modules are missing.
    public func render() throws -> Rendering {
        try TrafficSplit.check(host: listenAddress, what: "the listen address")
        guard (1...65535).contains(listenPort) else {
            throw TrafficError("listen port \(listenPort) is outside 1...65535")
        }
        guard runtimeFolder.hasPrefix("/"), !runtimeFolder.contains(where: { ";{}\"'\n\r\t\\ $#".contains($0) }) else {
            throw TrafficError(
                "the nginx runtime folder \(runtimeFolder) must be an absolute path without characters nginx or Lua would misread"
            )
        }
        // sockaddr_un holds 108 bytes with the terminating zero.
        guard controlSocket.utf8.count <= 107 else {
            throw TrafficError(
                "the control socket path \(controlSocket) is longer than 107 bytes, the limit of a unix socket",
                hint: "put the pipeline (its releases/state folder) on a shorter path")
        }
        guard let modules else { throw NginxModules.missing }
        for path in [modules.developmentKit, modules.lua]
        where !path.hasPrefix("/") || path.contains(where: { ";{}\"'\n\r\t\\ $#".contains($0) }) {
            throw TrafficError("the nginx module path \(path) has characters nginx would misread")
        }
        let values = [
            "load_modules": "load_module \(modules.developmentKit);\nload_module \(modules.lua);", "pid_file": pidFile,
            "error_log": errorLog,
            "temp_folder": runtimeFolder, "listen_address": listenAddress, "listen_port": String(listenPort),
            "control_socket": controlSocket,
            "state_file": stateFile,
        ]
        var text = template
        for (key, value) in values {
            text = text.replacingOccurrences(of: "{{\(key)}}", with: value)
        }
        var rest = text[...]
        while let open = rest.range(of: "{{"), let close = rest[open.upperBound...].range(of: "}}") {
            let name = rest[open.upperBound..<close.lowerBound]
            guard ["traffic_lua", "interleave_lua", "shadow_lua", "config_id"].contains(name) else {
                throw TrafficError("the template has an unknown placeholder {{\(name)}}")
            }
            rest = rest[close.upperBound...]
        }
        for name in ["traffic_lua", "interleave_lua", "shadow_lua", "config_id"]
        where text.components(separatedBy: "{{\(name)}}").count != 2 {
            throw TrafficError("the template must have {{\(name)}} exactly once")
        }
        guard !trafficLua.contains("{{"), !interleaveLua.contains("{{"), !shadowLua.contains("{{") else {
            throw TrafficError("the Lua code must not contain {{")
        }
        text = text.replacingOccurrences(of: "{{traffic_lua}}", with: trafficLua).replacingOccurrences(
            of: "{{interleave_lua}}", with: interleaveLua
        ).replacingOccurrences(of: "{{shadow_lua}}", with: shadowLua)
        let id = Self.fingerprint(text)
        return Rendering(text: text.replacingOccurrences(of: "{{config_id}}", with: id), id: id)
    }

    /// FNV-1a, 64 bits, in hex: tells renderings apart (it is no defence against a forger, who
    /// would need write access to nginx's files anyway).
    static func fingerprint(_ text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
