import Crypto
import RecEngine
public import Foundation

/// The Ed25519 private key that signs release records (`orchestrate history keygen` makes one).
///
/// Stored as the base64 of the raw 32-byte key, in a file (`--signing-key FILE`,
/// `ORCHESTRATE_SIGNING_KEY_FILE`) or in `ORCHESTRATE_SIGNING_KEY` itself.
public struct ReleaseSigningKey: Sendable {
    private let rawRepresentation: Data
    public let publicKey: ReleasePublicKey

    /// - Throws: `.invalidInput` when the bytes are not a raw 32-byte Ed25519 private key.
    public init(rawRepresentation: Data, origin: String) throws {
        guard rawRepresentation.count == 32, let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: rawRepresentation) else {
            throw OrchestratorError(
                .invalidInput, "\(origin) is not an Ed25519 private key: expected the base64 of 32 bytes, got \(rawRepresentation.count) bytes",
                hint: "orchestrate history keygen --out FILE writes a key pair")
        }
        self.rawRepresentation = rawRepresentation
        publicKey = ReleasePublicKey(verified: key.publicKey.rawRepresentation)
    }

    /// A new random key.
    public static func generate() -> ReleaseSigningKey {
        let key = Curve25519.Signing.PrivateKey()
        // 32 fresh bytes from swift-crypto are always a valid key.
        return ReleaseSigningKey(unchecked: key.rawRepresentation, publicKey: ReleasePublicKey(verified: key.publicKey.rawRepresentation))
    }

    private init(unchecked rawRepresentation: Data, publicKey: ReleasePublicKey) {
        self.rawRepresentation = rawRepresentation
        self.publicKey = publicKey
    }

    /// Reads a key from its base64 text; `origin` names where it came from in errors.
    public init(base64 text: String, origin: String) throws {
        guard let raw = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw OrchestratorError(
                .invalidInput, "\(origin) is not base64: expected the base64 of a 32-byte Ed25519 private key",
                hint: "orchestrate history keygen --out FILE writes a key pair")
        }
        try self.init(rawRepresentation: raw, origin: origin)
    }

    /// Reads a key file.
    public init(file: String) throws {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw OrchestratorError(.invalidInput, "cannot read the signing key \(file)", hint: "check the path and its permissions")
        }
        try self.init(base64: String(decoding: data.prefix(1024), as: UTF8.self), origin: "the signing key \(file)")
    }

    /// The key a command signs with: `file` (`--signing-key`), else `ORCHESTRATE_SIGNING_KEY_FILE`,
    /// else `ORCHESTRATE_SIGNING_KEY`; nil when none is given (records are then unsigned).
    public static func resolve(file: String?, environment: [String: String]) throws -> ReleaseSigningKey? {
        if let file { return try ReleaseSigningKey(file: file) }
        if let file = environment["ORCHESTRATE_SIGNING_KEY_FILE"], !file.isEmpty { return try ReleaseSigningKey(file: file) }
        if let text = environment["ORCHESTRATE_SIGNING_KEY"], !text.isEmpty {
            return try ReleaseSigningKey(base64: text, origin: "ORCHESTRATE_SIGNING_KEY")
        }
        return nil
    }

    /// The base64 of the raw private key: what a key file holds.
    public var base64: String { rawRepresentation.base64EncodedString() }

    func signature(for message: Data) throws -> Data {
        try Curve25519.Signing.PrivateKey(rawRepresentation: rawRepresentation).signature(for: message)
    }
}

/// The Ed25519 public key that checks release records' signatures, and its key id.
public struct ReleasePublicKey: Sendable, Equatable {
    public let rawRepresentation: Data

    fileprivate init(verified rawRepresentation: Data) {
        self.rawRepresentation = rawRepresentation
    }

    /// Reads `--public-key`: the path of a file holding the base64 key, or the base64 itself.
    ///
    /// - Throws: `.invalidInput` when neither is a 32-byte Ed25519 public key.
    public init(fileOrBase64 argument: String) throws {
        var text = argument
        var origin = "--public-key"
        if let data = FileManager.default.contents(atPath: argument) {
            text = String(decoding: data.prefix(1024), as: UTF8.self)
            origin = "the public key \(argument)"
        }
        guard let raw = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)), raw.count == 32,
            (try? Curve25519.Signing.PublicKey(rawRepresentation: raw)) != nil
        else {
            throw OrchestratorError(
                .invalidInput, "\(origin) is neither a readable file nor the base64 of a 32-byte Ed25519 public key",
                hint: "pass the .pub file orchestrate history keygen wrote, or its contents")
        }
        rawRepresentation = raw
    }

    /// The first 16 hex digits of the SHA-256 of the raw key: short enough to read, long enough
    /// that two keys of one installation never share it.
    public var keyID: String { String(SHA256.hash(data: rawRepresentation).hexString.prefix(16)) }

    public var base64: String { rawRepresentation.base64EncodedString() }

    /// Whether `signature` is this key's signature of `message`.
    func isValidSignature(_ signature: Data, for message: Data) -> Bool {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: rawRepresentation) else { return false }
        return key.isValidSignature(signature, for: message)
    }
}
