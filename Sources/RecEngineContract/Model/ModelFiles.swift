/// The files of a model directory (`recengine train --out`).
public enum ModelFiles {
    /// The tensors; their SHA-256 is the model's identity (`manifest.json` names it).
    public static let tensors = "model.safetensors"
    /// Ids, parameters, provenance, metrics and the tensors' SHA-256.
    public static let manifest = "manifest.json"
    /// The largest `manifest.json` read (it lists every user and item id).
    public static let maximumManifestSize = 512 << 20
}
