public import Foundation

/// A DSSE envelope (the in-toto / Sigstore signing format): a payload, its type, and signatures
/// over DSSE's pre-authentication encoding of both, so that a signature for one type of payload
/// never passes for another. A signed history line, and a signed head file, are such envelopes.
public struct SignedEnvelope: Sendable, Codable, Equatable {
    /// The type of a release record's canonical JSON bytes.
    public static let releasePayloadType = "application/vnd.orchestrate.release+json"
    /// The type of the history's head (line count and last line's digest).
    public static let headPayloadType = "application/vnd.orchestrate.release-head+json"

    public struct Signature: Sendable, Codable, Equatable {
        /// `ReleasePublicKey.keyID` of the signing key.
        public var keyid: String
        /// The Ed25519 signature (base64 in JSON).
        public var sig: Data
    }

    public var payloadType: String
    /// The signed bytes (base64 in JSON), exactly as signed: nothing is re-encoded to check them.
    public var payload: Data
    public var signatures: [Signature]

    /// Signs `payload` with `key`.
    static func signing(_ payload: Data, type payloadType: String, with key: ReleaseSigningKey) throws -> SignedEnvelope
    {
        let signature = try key.signature(for: preAuthenticationEncoding(payloadType: payloadType, payload: payload))
        return SignedEnvelope(
            payloadType: payloadType, payload: payload, signatures: [.init(keyid: key.publicKey.keyID, sig: signature)])
    }

    /// DSSE v1's PAE: `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII decimal.
    static func preAuthenticationEncoding(payloadType: String, payload: Data) -> Data {
        var bytes = Data("DSSEv1 \(payloadType.utf8.count) \(payloadType) \(payload.count) ".utf8)
        bytes.append(payload)
        return bytes
    }

    /// What a trusted key says about this envelope.
    enum Check: Equatable {
        case valid
        /// No signature names the key: signed by these key ids only.
        case signedByOthers([String])
        /// A signature names the key but does not match the payload: edited after signing.
        case invalid
    }

    func check(with key: ReleasePublicKey) -> Check {
        let mine = signatures.filter { $0.keyid == key.keyID }
        guard !mine.isEmpty else { return .signedByOthers(signatures.map(\.keyid)) }
        let message = Self.preAuthenticationEncoding(payloadType: payloadType, payload: payload)
        return mine.contains { key.isValidSignature($0.sig, for: message) } ? .valid : .invalid
    }

    /// The envelope as one JSON line (no newline).
    func jsonLine() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    static func decode(_ bytes: Data) -> SignedEnvelope? {
        try? JSONDecoder().decode(SignedEnvelope.self, from: bytes)
    }
}
