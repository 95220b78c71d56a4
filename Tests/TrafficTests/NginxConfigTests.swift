import Foundation
import Testing

@testable import Traffic

@Suite struct NginxConfigTests {
    static let modules = NginxModules(
        developmentKit: "/modules/ndk_http_module.so", lua: "/modules/ngx_http_lua_module.so")
    static let config = NginxConfig(listenPort: 8088, runtimeFolder: "/tmp/orchestrate-nginx", modules: modules)

    /// The template, the balancer and the interleaving are package resources (one file each, no
    /// copy in Swift).
    @Test func theTemplateAndLuaAreTheModulesResources() throws {
        #expect(
            NginxConfig.defaultTemplate.hasPrefix(
                "# Rendered by orchestrate from Sources/Traffic/Resources/recommender.conf.template"))
        #expect(NginxConfig.defaultTemplate.contains("{{traffic_lua}}"))
        #expect(NginxConfig.defaultTrafficLua.contains("return M\n"))
        let resources = try #require(Bundle.module.resourceURL)
        #expect(
            try String(contentsOf: resources.appendingPathComponent("traffic.lua"), encoding: .utf8)
                == NginxConfig.defaultTrafficLua)
        #expect(NginxConfig.defaultTemplate.contains("{{interleave_lua}}"))
        #expect(NginxConfig.defaultInterleaveLua.hasPrefix("-- Team-draft interleaving inside nginx"))
        #expect(
            try String(contentsOf: resources.appendingPathComponent("interleave.lua"), encoding: .utf8)
                == NginxConfig.defaultInterleaveLua)
    }

    @Test func theConfigurationLoadsTheLuaBalancerAndListensForTheControllerOnASocket() throws {
        let rendering = try Self.config.render()
        let text = rendering.text
        let ndk = try #require(text.range(of: "load_module /modules/ndk_http_module.so;\n"))
        let lua = try #require(text.range(of: "load_module /modules/ngx_http_lua_module.so;\n"))
        #expect(ndk.upperBound <= lua.lowerBound, "the NDK is loaded before the Lua module that needs it")
        #expect(text.contains("lua_shared_dict orchestrate_traffic 1m;"))
        #expect(
            text.contains(
                "server 0.0.0.1:1;\n        balancer_by_lua_block {\n            orchestrate_traffic.balance()\n        }\n        keepalive 32;"
            ))
        #expect(text.contains("listen 127.0.0.1:8088;"))
        #expect(text.contains("listen unix:/tmp/orchestrate-nginx/control.sock;"))
        #expect(text.contains("proxy_next_upstream error timeout;"))
        #expect(text.contains("location = /nginx_status {\n            stub_status;"))
        #expect(
            text.contains(#"orchestrate_traffic.configure("/tmp/orchestrate-nginx/traffic.state", "\#(rendering.id)")"#)
        )
        #expect(text.contains(NginxConfig.defaultTrafficLua))
        #expect(text.contains(NginxConfig.defaultInterleaveLua))
        #expect(text.contains("location = /interleaving {"), "the interleaving's counts on the control socket")
        #expect(!text.contains("{{"))
        #expect(rendering.id.count == 16 && rendering.id.allSatisfy(\.isHexDigit))
    }

    @Test func theConfigurationChangesWithWhereNginxListensOnly() throws {
        let first = try Self.config.render()
        #expect(try Self.config.render() == first)
        var otherPort = Self.config
        otherPort.listenPort = 8089
        #expect(try otherPort.render().id != first.id)
        var otherLua = Self.config
        otherLua.trafficLua += "-- changed\n"
        #expect(try otherLua.render().id != first.id, "new balancer code is a new configuration (a reload)")
    }

    @Test func missingLuaModulesNameThePackageToInstall() {
        let config = NginxConfig(listenPort: 8088, runtimeFolder: "/tmp/orchestrate-nginx", modules: nil)
        #expect {
            try config.render()
        } throws: { error in
            "\(error)".contains("apt-get install libnginx-mod-http-lua")
        }
    }

    /// A configuration a test expects to be refused, named for the test's output.
    struct Refused: CustomTestStringConvertible, Sendable {
        var testDescription: String
        var config: NginxConfig
    }

    @Test(arguments: [
        Refused(
            testDescription: "space in the folder",
            config: NginxConfig(listenPort: 8088, runtimeFolder: "/tmp/with space", modules: modules)),
        Refused(
            testDescription: "Lua in the folder",
            config: NginxConfig(listenPort: 8088, runtimeFolder: "/tmp/a\"; os.execute(\"x\") --", modules: modules)),
        Refused(
            testDescription: "relative folder",
            config: NginxConfig(listenPort: 8088, runtimeFolder: "relative/folder", modules: modules)),
        Refused(
            testDescription: "socket path too long",
            config: NginxConfig(
                listenPort: 8088, runtimeFolder: "/tmp/" + String(repeating: "long", count: 25), modules: modules)),
        Refused(
            testDescription: "port 70000",
            config: NginxConfig(listenPort: 70000, runtimeFolder: "/tmp/orchestrate-nginx", modules: modules)),
        Refused(
            testDescription: "syntax in the address",
            config: NginxConfig(
                listenAddress: "127.0.0.1;", listenPort: 8088, runtimeFolder: "/tmp/orchestrate-nginx", modules: modules
            )),
        Refused(
            testDescription: "syntax in a module path",
            config: NginxConfig(
                listenPort: 8088, runtimeFolder: "/tmp/orchestrate-nginx",
                modules: NginxModules(developmentKit: "/m/ndk.so;", lua: "/m/lua.so"))),
        Refused(
            testDescription: "unknown placeholder",
            config: NginxConfig(
                template: "{{unknown}}", listenPort: 8088, runtimeFolder: "/tmp/orchestrate-nginx", modules: modules)),
    ])
    func valuesNginxOrLuaWouldMisreadAreRefused(refused: Refused) {
        #expect(throws: TrafficError.self) { try refused.config.render() }
    }

    @Test func theRenderedConfigurationPassesNginxTest() async throws {
        let nginx = LocalNginx.find()
        try #require(FileManager.default.isExecutableFile(atPath: nginx), "nginx is installed by ./scripts/test")
        try #require(NginxModules.find() != nil, "libnginx-mod-http-lua is installed by ./scripts/test")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("nginx-test-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let config = NginxConfig(listenPort: 18_088, runtimeFolder: folder)
        let path = folder + "/nginx.conf"
        try config.render().text.write(toFile: path, atomically: true, encoding: .utf8)
        let problem = try await LocalNginx(nginx: nginx).check(configPath: path, config: config)
        #expect(problem == nil, "\(problem ?? "")")
    }
}
