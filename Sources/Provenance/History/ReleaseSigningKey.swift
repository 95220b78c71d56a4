import Crypto
import DurableFiles
public import Foundation
import OrchestratorSupport
import RecEngineContract

/// The Ed25519 private key that signs release records (`orchestrate history keygen` makes one).
///
/// Stored as the base64 of the raw 32-byte key, in a file (`--signing-key FILE`,
/// `ORCHESTRATE_SIGNING_KEY_FILE`) or in `ORCHESTRATE_SIGNING_KEY` itself.
public struct ReleaseSigningKey: Sendable {
    private let rawRepresentation: Data
    public let publicKey: ReleasePublicKey

    /// - Throws: `.invalidInput` when the bytes are not a raw 32-byte Ed25519 private key.
    public init(rawRepresentation: Data, origin: String) throws {
        guard rawRepresentation.count == 32,
            let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: rawRepresentation)
        else {
            throw OrchestratorError(
                .invalidInput,
                "\(origin) is not an Ed25519 private key: expected the base64 of 32 bytes, got \(rawRepresentation.count) bytes",
                hint: "orchestrate history keygen --out FILE writes a key pair")
        }
        self.rawRepresentation = rawRepresentation
        publicKey = ReleasePublicKey(verified: key.publicKey.rawRepresentation)
    }

    /// A new random key.
    public static func generate() -> ReleaseSigningKey {
        let key = Curve25519.Signing.PrivateKey()
        // 32 fresh bytes from swift-crypto are always a valid key.
        return ReleaseSigningKey(
            unchecked: key.rawRepresentation, publicKey: ReleasePublicKey(verified: key.publicKey.rawRepresentation))
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

    /// Reads a key file, refusing, as ssh does, one that others can read: a private key anyone
    /// on the machine can copy signs nothing. A `.pub` file (the public half) and anything but a
    /// small regular file are refused before a byte is read.
    ///
    /// - Throws: `.invalidInput` (exit 2) saying what is wrong and what to run.
    public init(file: String) throws {
        if file.hasSuffix(".pub") {
            throw OrchestratorError(
                .invalidInput,
                "the signing key \(file) is a public key (.pub): records are signed with the private key; nothing was signed",
                hint:
                    "--signing-key \(file.dropLast(4)) (history keygen --out FILE writes the private key as FILE and the public key as FILE.pub)"
            )
        }
        let data = try KeyFile.read(file, what: "the signing key")
        var info = stat()
        if stat(file, &info) == 0, info.st_mode & 0o077 != 0 {
            throw OrchestratorError(
                .invalidInput,
                "the signing key \(file) is readable by others (mode \(String(info.st_mode & 0o777, radix: 8))): a private key must be readable by its owner only; it was not used",
                hint: "chmod 600 \(file)")
        }
        try self.init(base64: String(decoding: data, as: UTF8.self), origin: "the signing key \(file)")
    }

    /// The key a command signs with: `file` (`--signing-key`), else `ORCHESTRATE_SIGNING_KEY_FILE`,
    /// else `ORCHESTRATE_SIGNING_KEY`; nil when none is given (records are then unsigned).
    public static func resolve(file: String?, environment: [String: String]) throws -> ReleaseSigningKey? {
        if let file { return try ReleaseSigningKey(file: file) }
        if let file = environment["ORCHESTRATE_SIGNING_KEY_FILE"], !file.isEmpty {
            return try ReleaseSigningKey(file: file)
        }
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
        if FileKind.of(argument) != .missing {
            text = String(decoding: try KeyFile.read(argument, what: "the public key"), as: UTF8.self)
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

/// Key files: written once, never over an existing file, with their mode from the start; read
/// only when small and regular (a key is a line of base64), a FIFO or a device never opened (one
/// blocks, the other never ends).
public enum KeyFile {
    /// The largest key file read; one holds 45 bytes (the base64 of 32, and a newline).
    static let maxBytes = 4096

    /// - Throws: `.invalidInput` (exit 2) naming the file and what it is.
    static func read(_ path: String, what: String) throws -> Data {
        switch FileKind.of(path) {
        case .missing:
            throw OrchestratorError(
                .invalidInput, "\(what) \(path) does not exist",
                hint: "orchestrate history keygen --out FILE writes a key pair")
        case .regular(let size) where size > Int64(maxBytes):
            throw OrchestratorError(
                .invalidInput,
                "\(what) \(path) is \(size) bytes: a key file holds one line of base64 (45 bytes); it was not read",
                hint: "name the file history keygen wrote")
        case .regular:
            break
        case let kind:
            throw OrchestratorError(
                .invalidInput, "\(what) \(path) is \(kind.description), not a key file; it was not read",
                hint: "name the file history keygen wrote")
        }
        do {
            guard let data = try AtomicFile.read(path, limit: maxBytes) else {
                throw OrchestratorError(
                    .invalidInput, "\(what) \(path) does not exist",
                    hint: "orchestrate history keygen --out FILE writes a key pair")
            }
            return data
        } catch let error as AtomicFileError {
            throw OrchestratorError(
                .invalidInput,
                "cannot read \(what) \(path): \(error.step) failed: \(String(cString: strerror(error.code)))",
                hint: "check the path and its permissions")
        }
    }

    /// Writes a new key file with `mode`.
    ///
    /// - Throws: `.invalidInput` when the file exists (a key is never overwritten) or cannot be
    ///   created; `.fileSystem` when it cannot be written (the partial file is removed).
    public static func create(_ path: String, contents: String, mode: mode_t) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else {
            let code = errno
            throw OrchestratorError(
                .invalidInput, "cannot create \(path): \(String(cString: strerror(code)))",
                hint: code == EEXIST
                    ? "keygen never overwrites a key: choose another --out, or remove the old pair first" : nil)
        }
        defer { close(descriptor) }
        let bytes = Data(contents.utf8)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(descriptor) == 0 else {
            let reason =
                written >= 0 && written < bytes.count
                ? "a short write (\(written) of \(bytes.count) bytes)" : String(cString: strerror(errno))
            unlink(path)
            throw OrchestratorError(.fileSystem, "could not write \(path): \(reason)")
        }
    }
}
