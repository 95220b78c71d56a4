import Foundation

/// The dynamic modules the rendered configuration loads: OpenResty's Lua module and the Nginx
/// Development Kit it needs (Debian: `libnginx-mod-http-lua`, which pulls in
/// `libnginx-mod-http-ndk` and `lua-resty-core`).
public struct NginxModules: Sendable, Equatable {
    /// `ndk_http_module.so`.
    public var developmentKit: String
    /// `ngx_http_lua_module.so`.
    public var lua: String

    public init(developmentKit: String, lua: String) {
        self.developmentKit = developmentKit
        self.lua = lua
    }

    /// Debian's paths (the `lb` image of the `Dockerfile` installs the modules there).
    public static let debian = NginxModules(
        developmentKit: "/usr/lib/nginx/modules/ndk_http_module.so",
        lua: "/usr/lib/nginx/modules/ngx_http_lua_module.so")

    /// Where distributions install nginx's dynamic modules.
    public static let folders = [
        "/usr/lib/nginx/modules", "/usr/lib64/nginx/modules", "/usr/share/nginx/modules", "/usr/local/nginx/modules",
    ]

    /// The modules of this machine's nginx, if installed (looked for as `LocalNginx.find()` looks
    /// for the binary).
    public static func find() -> NginxModules? {
        for folder in folders {
            let modules = NginxModules(
                developmentKit: folder + "/ndk_http_module.so", lua: folder + "/ngx_http_lua_module.so")
            if FileManager.default.fileExists(atPath: modules.developmentKit)
                && FileManager.default.fileExists(atPath: modules.lua)
            {
                return modules
            }
        }
        return nil
    }

    /// Finds the modules or says which package to install.
    ///
    /// - Throws: `TrafficError` naming the package when they are missing.
    public static func required() throws -> NginxModules {
        guard let modules = find() else { throw missing }
        return modules
    }

    /// What to say when the modules are missing.
    public static var missing: TrafficError {
        TrafficError(
            "nginx's Lua module is not installed (looked for ngx_http_lua_module.so and ndk_http_module.so in \(folders.joined(separator: ", ")))",
            hint: "apt-get install libnginx-mod-http-lua")
    }
}
