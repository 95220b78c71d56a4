import CCurl
public import Foundation

/// Every HTTP call the orchestrator makes (Prometheus, health probes, nginx), through libcurl.
public enum HTTPClient {
    public struct Response: Sendable {
        public var status: Int
        public var body: Data
    }

    /// A transport failure: the peer could not be reached or did not answer in time.
    public struct TransportError: Error, CustomStringConvertible {
        public var url: String
        public var message: String
        public var description: String { "\(url): \(message)" }
    }

    private static let initialized: Bool = curl_global_init(Int(CURL_GLOBAL_ALL)) == CURLE_OK

    /// GET `url`; any status is a response, only transport failures throw.
    public static func get(_ url: String, timeout: Duration = .seconds(5), headers: [String] = []) async throws -> Response {
        try await Task.detached { try perform(url, timeout: timeout, headers: headers, body: nil) }.value
    }

    /// POST `body` to `url`; any status is a response, only transport failures throw.
    public static func post(_ url: String, body: Data, timeout: Duration = .seconds(5), headers: [String] = []) async throws -> Response {
        try await Task.detached { try perform(url, timeout: timeout, headers: headers, body: body) }.value
    }

    private final class Buffer {
        var data = Data()
    }

    private static func perform(_ url: String, timeout: Duration, headers: [String], body: Data?) throws -> Response {
        guard initialized, let handle = curl_easy_init() else { throw TransportError(url: url, message: "libcurl could not start") }
        defer { curl_easy_cleanup(handle) }
        let buffer = Buffer()
        let context = Unmanaged.passRetained(buffer)
        defer { context.release() }
        let milliseconds = Int(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        ccurl_setopt_string(handle, CURLOPT_URL, url)
        ccurl_setopt_long(handle, CURLOPT_TIMEOUT_MS, milliseconds)
        ccurl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, min(milliseconds, 3000))
        ccurl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        ccurl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0)
        ccurl_setopt_pointer(handle, CURLOPT_WRITEDATA, context.toOpaque())
        ccurl_setopt_data_callback(handle, CURLOPT_WRITEFUNCTION) { data, size, count, context in
            guard let data, let context else { return 0 }
            let buffer = Unmanaged<Buffer>.fromOpaque(context).takeUnretainedValue()
            buffer.data.append(UnsafeRawPointer(data).assumingMemoryBound(to: UInt8.self), count: size * count)
            return size * count
        }
        // libcurl copies the body with COPYPOSTFIELDS, so it need not outlive this call.
        if let body {
            ccurl_setopt_long(handle, CURLOPT_POST, 1)
            ccurl_setopt_long(handle, CURLOPT_POSTFIELDSIZE, body.count)
            body.withUnsafeBytes { bytes in
                _ = ccurl_setopt_pointer(handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress))
            }
        }
        var list: UnsafeMutablePointer<curl_slist>? = nil
        for header in headers { list = curl_slist_append(list, header) }
        defer { curl_slist_free_all(list) }
        if list != nil { ccurl_setopt_slist(handle, CURLOPT_HTTPHEADER, list) }
        let code = curl_easy_perform(handle)
        guard code == CURLE_OK else {
            throw TransportError(url: url, message: String(cString: curl_easy_strerror(code)))
        }
        var status = 0
        ccurl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return Response(status: status, body: buffer.data)
    }

    /// Percent-encodes a query parameter value.
    public static func encodeQueryValue(_ value: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
    }
}
