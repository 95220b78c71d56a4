import Foundation

extension NginxConfig {
    /// The template, the package resource `Resources/recommender.conf.template`.
    public static let defaultTemplate = resourceText("recommender.conf.template")

    /// The balancer and control code, the package resource `Resources/traffic.lua`.
    public static let defaultTrafficLua = resourceText("traffic.lua")

    /// The team-draft interleaving, the package resource `Resources/interleave.lua`.
    public static let defaultInterleaveLua = resourceText("interleave.lua")

    /// The shadow stage's comparisons, the package resource `Resources/shadow.lua`.
    public static let defaultShadowLua = resourceText("shadow.lua")

    /// A text file of this module's resources, which the build puts beside the executable
    /// (`orchestrate_Traffic.resources/`). One missing is a broken installation, not an input.
    static func resourceText(_ name: String) -> String {
        guard let url = Bundle.module.resourceURL?.appendingPathComponent(name),
            let text = try? String(contentsOf: url, encoding: .utf8)
        else {
            fatalError(
                "\(name) is missing from \(Bundle.module.bundlePath): copy the .resources folders beside the orchestrate executable with it"
            )
        }
        return text
    }
}
