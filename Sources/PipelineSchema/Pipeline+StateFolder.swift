import Foundation

extension Pipeline {
    /// The folder of the controller's state for this pipeline's service (`StateStore` keeps its
    /// files there): `<history folder>/state/<service>`.
    public var stateFolder: String {
        let base = URL(fileURLWithPath: history).deletingLastPathComponent().appendingPathComponent("state")
        return base.appendingPathComponent(deploy?.service ?? name).path
    }

    /// nginx's runtime folder (pid file, logs, control socket) inside a state folder.
    public static func nginxFolder(inStateFolder folder: String) -> String { folder + "/nginx" }
}
