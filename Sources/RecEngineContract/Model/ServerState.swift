/// What `recengine serve --state-file` writes once it listens: how a controller finds the process
/// and the port it bound (which `--port 0` leaves to the system).
public struct ServerState: Sendable, Codable, Equatable {
    public var pid: Int32
    public var port: Int
    public var color: String
    public var modelSHA256: String
    public var modelVersion: String

    public init(pid: Int32, port: Int, color: String, modelSHA256: String, modelVersion: String) {
        self.pid = pid
        self.port = port
        self.color = color
        self.modelSHA256 = modelSHA256
        self.modelVersion = modelVersion
    }

    enum CodingKeys: String, CodingKey {
        case pid, port, color
        case modelSHA256 = "model_sha256"
        case modelVersion = "model_version"
    }
}
