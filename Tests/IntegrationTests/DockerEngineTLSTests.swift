import EngineAPI
import Foundation
import HTTPTransport
import Orchestrator
import PipelineSchema
import StrictYAML
import TestSupport
import Testing

/// Which engines the client reaches, and how, by the docker CLI's rules; no engine is needed.
struct DockerEngineAddressTests {
    @Test func plainHTTPToAnotherMachineIsRefusedUnlessTheNetworkIsTrusted() throws {
        for host in [
            "tcp://10.1.2.3:2375", "tcp://engine.example:2375", "tcp://[2001:db8::1]:2375", "tcp://127.example:2375",
        ] {
            #expect(throws: EngineClientError.self, "\(host)") {
                try DockerEngine.configured(host: host, certificates: nil, environment: [:])
            }
            #expect(
                try DockerEngine.configured(host: host, certificates: nil, insecure: true, environment: [:]).usesTLS
                    == false)
        }
        for host in ["tcp://127.0.0.1:2375", "tcp://localhost:2375", "tcp://[::1]:2375", "unix:///run/docker.sock"] {
            #expect(
                try DockerEngine.configured(host: host, certificates: nil, environment: [:]).usesTLS == false, "\(host)"
            )
        }
        // DOCKER_CERT_PATH alone turns nothing on, as with the docker CLI: still refused.
        let error = #expect(throws: EngineClientError.self) {
            try DockerEngine.configured(
                host: nil, certificates: nil,
                environment: ["DOCKER_HOST": "tcp://10.1.2.3:2376", "DOCKER_CERT_PATH": "/tmp"])
        }
        #expect(error?.hint?.contains("DOCKER_TLS_VERIFY") == true)
    }

    @Test func tlsFollowsTheDockerCLIsVariables() async throws {
        try await withTemporaryDirectory { folder in
            let home = folder + "/home"
            try FileManager.default.createDirectory(atPath: home + "/.docker", withIntermediateDirectories: true)
            let certs = folder + "/certs"
            try FileManager.default.createDirectory(atPath: certs, withIntermediateDirectories: true)
            for name in ["ca.pem", "cert.pem", "key.pem"] {
                try Data("x".utf8).write(to: URL(fileURLWithPath: certs + "/" + name))
            }
            let host = "tcp://10.1.2.3:2376"
            // DOCKER_TLS_VERIFY (any value) verifies with DOCKER_CERT_PATH's files.
            let verified = try DockerEngine.configured(
                host: host, certificates: nil, environment: ["DOCKER_TLS_VERIFY": "0", "DOCKER_CERT_PATH": certs])
            #expect(
                verified.tlsFiles
                    == .init(
                        certificate: certs + "/cert.pem", key: certs + "/key.pem", authority: certs + "/ca.pem",
                        verify: true))
            // DOCKER_TLS: TLS without verification; the client certificate still presented.
            let unverified = try DockerEngine.configured(
                host: host, certificates: nil, environment: ["DOCKER_TLS": "1", "DOCKER_CERT_PATH": certs])
            #expect(unverified.tlsFiles?.verify == false && unverified.tlsFiles?.certificate == certs + "/cert.pem")
            // Without DOCKER_CERT_PATH: ~/.docker, which has no ca.pem here.
            let missing = #expect(throws: EngineClientError.self) {
                try DockerEngine.configured(
                    host: host, certificates: nil, environment: ["DOCKER_TLS_VERIFY": "1", "HOME": home])
            }
            #expect(missing?.message.contains(home + "/.docker/ca.pem") == true)
            // TLS without verification and without client files: fine.
            #expect(
                try DockerEngine.configured(
                    host: host, certificates: nil, environment: ["DOCKER_TLS": "1", "HOME": home]
                ).tlsFiles
                    == .init(certificate: nil, key: nil, authority: nil, verify: false))
            // Half a client certificate is an error, not a silent downgrade.
            try FileManager.default.removeItem(atPath: certs + "/key.pem")
            #expect(throws: EngineClientError.self) {
                try DockerEngine.configured(host: host, certificates: certs, environment: [:])
            }
        }
    }

    @Test func validateRefusesWhatARunWouldRefuse() async throws {
        try await withTemporaryDirectory { folder in
            let pipeline = folder + "/pipeline.yml"
            func write(_ docker: String) throws {
                try Data(
                    """
                    version: 1
                    name: engine-address
                    stages:
                      - {name: hello, run: [echo, hello]}
                    deploy:
                      runtime: docker
                      service: engine-address
                      model: model
                      docker: {compose: compose.yml\(docker)}
                    """.utf8
                ).write(to: URL(fileURLWithPath: pipeline))
            }
            try write(", host: \"tcp://10.1.2.3:2375\"")
            let refused = #expect(throws: PipelineValidationError.self) {
                try PipelineLoader(environment: [:]).load(pipeline)
            }
            #expect(
                refused?.issues.count == 1 && refused.map { "\($0)" }?.contains("refusing plain HTTP") == true,
                "\(String(describing: refused))")
            try write(", host: \"tcp://10.1.2.3:2375\", insecure: true")
            #expect(try PipelineLoader(environment: [:]).load(pipeline).deploy?.docker?.insecure == true)
        }
    }
}

/// TLS to a real engine: podman's Docker API behind nginx's stream module, which speaks TLS and
/// asks for a client certificate signed by the test's authority (as a dockerd with `--tlsverify`
/// does).
@Suite(
    .enabled(if: TestEngine.available, "needs ORCHESTRATE_TEST_DOCKER_HOST: scripts/test starts podman's Docker API"))
struct DockerEngineTLSTests {
    @Test func mutualTLSByTheDockerCLIsRules() async throws {
        let socket = String(try #require(TestEngine.host).dropFirst("unix://".count))
        try await withTemporaryDirectory { folder in
            let authority = try await CertificateAuthority(folder: folder + "/ca", name: "orchestrate test CA")
            let stranger = try await CertificateAuthority(folder: folder + "/other-ca", name: "another CA")
            try await authority.issue(folder + "/server", commonName: "127.0.0.1", serverAddress: "127.0.0.1")
            let client = folder + "/client"
            try await authority.issue(client, commonName: "orchestrate")
            try FileManager.default.copyItem(atPath: authority.folder + "/ca.pem", toPath: client + "/ca.pem")
            let port = try freePort()
            let nginx = try TLSProxy.start(
                folder: folder + "/nginx", port: port, certificates: folder + "/server",
                clientAuthority: authority.folder + "/ca.pem", socket: socket)
            defer { nginx.stop() }
            let host = "tcp://127.0.0.1:\(port)"

            // DOCKER_TLS_VERIFY with DOCKER_CERT_PATH: verified both ways.
            let engine = try DockerEngine.configured(
                host: nil, certificates: nil,
                environment: ["DOCKER_HOST": host, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": client])
            #expect(try await engine.negotiated().version == "1.41")

            // No client certificate: the engine refuses the handshake.
            let anonymous = folder + "/anonymous"
            try FileManager.default.createDirectory(atPath: anonymous, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: authority.folder + "/ca.pem", toPath: anonymous + "/ca.pem")
            await #expect(throws: DockerError.self) {
                try await DockerEngine.configured(host: host, certificates: anonymous, environment: [:]).negotiated()
            }

            // An engine certificate from an authority we do not trust: refused by us.
            let distrustful = folder + "/distrustful"
            try FileManager.default.copyItem(atPath: client, toPath: distrustful)
            try FileManager.default.removeItem(atPath: distrustful + "/ca.pem")
            try FileManager.default.copyItem(atPath: stranger.folder + "/ca.pem", toPath: distrustful + "/ca.pem")
            let untrusted = await #expect(throws: DockerError.self) {
                try await DockerEngine.configured(
                    host: host, certificates: nil,
                    environment: ["DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": distrustful]
                ).negotiated()
            }
            #expect(untrusted?.message.lowercased().contains("certificate") == true, "\(String(describing: untrusted))")

            // DOCKER_TLS without verification: the same untrusted folder works (as the CLI's --tls).
            #expect(
                try await DockerEngine.configured(
                    host: host, certificates: nil, environment: ["DOCKER_TLS": "1", "DOCKER_CERT_PATH": distrustful]
                ).negotiated().ping())

            // Plain HTTP to the TLS port (loopback, so allowed) gets no engine.
            await #expect(throws: (any Error).self) {
                try await DockerEngine.configured(host: host, certificates: nil, environment: [:]).negotiated()
            }
        }
    }
}

/// A certificate authority made with openssl, for the TLS test.
struct CertificateAuthority {
    let folder: String

    init(folder: String, name: String) async throws {
        self.folder = folder
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try await Self.openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", "/CN=\(name)", "-keyout", folder + "/ca-key.pem", "-out", folder + "/ca.pem",
        ])
    }

    /// `cert.pem` and `key.pem` in `target`, signed by this authority; a server certificate for
    /// `serverAddress` (an IP address) when given, else a client certificate.
    func issue(_ target: String, commonName: String, serverAddress: String? = nil) async throws {
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        try await Self.openssl([
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=\(commonName)",
            "-keyout", target + "/key.pem", "-out", target + "/request.pem",
        ])
        let extensions =
            serverAddress.map { "subjectAltName=IP:\($0)\nextendedKeyUsage=serverAuth\n" }
            ?? "extendedKeyUsage=clientAuth\n"
        try Data(extensions.utf8).write(to: URL(fileURLWithPath: target + "/extensions.cnf"))
        try await Self.openssl([
            "x509", "-req", "-in", target + "/request.pem", "-CA", folder + "/ca.pem", "-CAkey", folder + "/ca-key.pem",
            "-CAcreateserial",
            "-days", "2", "-extfile", target + "/extensions.cnf", "-out", target + "/cert.pem",
        ])
    }

    static func openssl(_ arguments: [String]) async throws {
        let result = try await runCommand("/usr/bin/openssl", arguments)
        guard result.status == 0 else {
            throw PlaygroundError("openssl \(arguments.prefix(2).joined(separator: " ")) failed: \(result.stderr)")
        }
    }
}

/// nginx's stream module in front of a unix socket, with TLS and required client certificates.
struct TLSProxy {
    let child: ChildProcess

    static func start(
        folder: String, port: Int, certificates: String, clientAuthority: String, socket engineSocket: String
    ) throws -> TLSProxy {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        // As root, nginx's workers would run as nobody, who cannot open the engine's socket.
        let user = geteuid() == 0 ? "user root;" : ""
        let configuration = """
            load_module /usr/lib/nginx/modules/ngx_stream_module.so;
            \(user)
            worker_processes 1;
            daemon off;
            pid \(folder)/nginx.pid;
            error_log \(folder)/error.log info;
            events {}
            stream {
                server {
                    listen 127.0.0.1:\(port) ssl;
                    ssl_certificate \(certificates)/cert.pem;
                    ssl_certificate_key \(certificates)/key.pem;
                    ssl_client_certificate \(clientAuthority);
                    ssl_verify_client on;
                    proxy_pass unix:\(engineSocket);
                }
            }
            """
        try Data(configuration.utf8).write(to: URL(fileURLWithPath: folder + "/nginx.conf"))
        // In a process group of its own, stopped whole: killing only the master (as this once
        // did) leaves its worker running, re-parented to init, on the port.
        let child = try ChildProcess.spawn(
            "/usr/sbin/nginx", ["-e", folder + "/error.log", "-p", folder, "-c", folder + "/nginx.conf"],
            log: folder + "/output.log",
            ownProcessGroup: true)
        // Ready once it accepts connections.
        for _ in 0..<100 {
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(descriptor) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            if connected { return TLSProxy(child: child) }
            usleep(50_000)
        }
        child.stopProcessGroup()
        throw PlaygroundError(
            "nginx (stream, TLS) did not listen on \(port): \((try? String(contentsOfFile: folder + "/error.log", encoding: .utf8)) ?? "")"
        )
    }

    func stop() {
        child.stopProcessGroup()
    }
}
