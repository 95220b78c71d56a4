import Crypto
import Foundation
import FuzzSupport
import RecEngine

// manifest.json, a line `%%safetensors%%`, then model.safetensors. `$TENSORS_SHA256` in the
// manifest becomes the tensors' digest, so that the fuzzer gets past the digest check.
runFuzzer { bytes in
    let (manifest, tensors) = FuzzInput.split(bytes, at: "\n%%safetensors%%\n")
    let tensorBytes = tensors ?? Data()
    let digest = SHA256.hash(data: tensorBytes).map { String(format: "%02x", $0) }.joined()
    let patched = String(decoding: manifest, as: UTF8.self).replacingOccurrences(of: "$TENSORS_SHA256", with: digest)
    FuzzInput.write(Data(patched.utf8), to: "manifest.json")
    FuzzInput.write(tensorBytes, to: "model.safetensors")
    _ = try? ModelDirectory.load(from: FuzzInput.folder)
}
