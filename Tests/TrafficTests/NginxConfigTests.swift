import Foundation
import Testing
@testable import Traffic

@Suite struct NginxConfigTests {
    static let config = NginxConfig(listenPort: 8088, runtimeFolder: "/tmp/orchestrate-nginx")

    static func split(_ mode: TrafficSplit.Mode = .sticky, blue: Int, green: Int) -> TrafficSplit {
        TrafficSplit(
            mode: mode,
            backends: [.init(color: "blue", address: "127.0.0.1:9001", weight: blue), .init(color: "green", address: "127.0.0.1:9002", weight: green)])
    }

    @Test func theShippedTemplateIsTheBuiltInOne() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let shipped = try String(contentsOf: root.appendingPathComponent("nginx/recommender.conf.template"), encoding: .utf8)
        #expect(shipped == NginxConfig.defaultTemplate)
    }

    @Test func stickySplitHashesUsersWithTheOtherColourAsBackup() throws {
        let text = try Self.config.render(Self.split(blue: 75, green: 25), generation: 3)
        #expect(text.contains("split_clients \"${recommender_user}\" $recommender_backend {\n        25%  recommender_green;\n        *  recommender_blue;"))
        #expect(text.contains("upstream recommender_green {\n        server 127.0.0.1:9002;\n        server 127.0.0.1:9001 backup;"))
        #expect(text.contains("~^/(?:recommend|events)/(?<user>[^/?]+)  $user;"))
        #expect(text.contains("listen 127.0.0.1:8088;"))
        #expect(text.contains("return 200 \"3\";"))
        #expect(NginxConfig.readSplit(fromConfiguration: text) == Self.split(blue: 75, green: 25))
    }

    @Test func zeroPercentRemovesAColourAndAHundredLeavesOne() throws {
        let text = try Self.config.render(Self.split(blue: 0, green: 100), generation: 1)
        #expect(!text.contains("server 127.0.0.1:9001"))
        #expect(!text.contains("split_clients"))
        #expect(text.contains("default  recommender_green;"))
    }

    @Test func weightedSplitUsesServerWeights() throws {
        let text = try Self.config.render(Self.split(.weighted, blue: 50, green: 50), generation: 1)
        #expect(text.contains("server 127.0.0.1:9001 weight=50;"))
        #expect(text.contains("server 127.0.0.1:9002 weight=50;"))
    }

    @Test(arguments: [
        TrafficSplit(mode: .sticky, backends: [.init(color: "blue; evil", address: "127.0.0.1:1", weight: 100)]),
        TrafficSplit(mode: .sticky, backends: [.init(color: "blue", address: "127.0.0.1:1; include /etc/passwd", weight: 100)]),
        TrafficSplit(mode: .sticky, backends: [.init(color: "blue", address: "host}:80", weight: 100)]),
        TrafficSplit(mode: .sticky, backends: [.init(color: "blue", address: "127.0.0.1:70000", weight: 100)]),
        TrafficSplit(mode: .sticky, backends: [.init(color: "blue", address: "127.0.0.1:1", weight: 60)]),
        TrafficSplit(mode: .sticky, backends: [.init(color: "blue", address: "127.0.0.1:1", weight: 0)]),
    ])
    func valuesThatCouldInjectSyntaxOrSendTrafficNowhereAreRefused(split: TrafficSplit) {
        #expect(throws: TrafficError.self) { try Self.config.render(split, generation: 1) }
    }

    @Test func renderedConfigurationsPassNginxTest() async throws {
        let nginx = LocalNginx.find()
        try #require(FileManager.default.isExecutableFile(atPath: nginx), "nginx is installed by ./scripts/test")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("nginx-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let config = NginxConfig(listenPort: 18_088, runtimeFolder: folder)
        for split in [Self.split(blue: 75, green: 25), Self.split(blue: 100, green: 0), Self.split(.weighted, blue: 10, green: 90)] {
            let path = folder + "/nginx.conf"
            try config.render(split, generation: 1).write(toFile: path, atomically: true, encoding: .utf8)
            let controller = NginxController(config: config, configPath: path)
            let problem = try await LocalNginx(nginx: nginx).check(configPath: path, config: config)
            #expect(problem == nil, "\(problem ?? "")")
            #expect(controller.currentSplit() == split)
        }
    }
}
