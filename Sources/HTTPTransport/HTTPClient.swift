import CCurl
public import Foundation
import Synchronization

/// Every HTTP call the orchestrator makes (Prometheus, health probes, nginx, the Docker engine,
/// webhooks), through libcurl.
///
/// A transfer blocks the thread it runs on, so it runs on a thread of its own, never on one of the
/// few threads of Swift's cooperative pool nor on a Dispatch worker (on Linux, Dispatch adds a
/// worker about once a second when its workers block, and the cooperative pool waits for the
/// same workers: ten transfers at once stalled every task for seconds); cancelling the calling task aborts it within a
/// fraction of a second (libcurl's progress callback checks a flag). Every request has a
/// deadline (`timeout`, for the whole transfer, so a peer that drips its answer is cut off too)
/// and a bound on the answer's body that its caller chooses for its purpose (`BodyLimit`): an
/// answer that never ends, or is a million times larger than expected, ends the transfer with
/// an error instead of filling the memory. No compressed encoding is asked for, so the bound is
/// on the bytes kept.
public enum HTTPClient {
    public struct Response: Sendable {
        public var status: Int
        /// The answer's header fields, names in lower case, a repeated field's values joined with
        /// ", "; those of the final answer only (not of an interim `100 Continue`).
        public var headers: [String: String]
        public var body: Data
    }

    /// The most bytes an answer's body may have, chosen by each caller for what it asks: a
    /// Prometheus query of one series is a few hundred bytes, a list of containers may be
    /// megabytes. A larger answer stops the transfer with a `TransportError` of code
    /// `answerTooLarge` that names the URL, this limit and `hint`.
    public struct BodyLimit: Sendable, Equatable {
        public var bytes: Int
        /// What the answer is, for the error: "a Prometheus gate query".
        public var purpose: String
        /// What to do about an answer over the limit.
        public var hint: String

        public init(_ bytes: Int, for purpose: String, hint: String) {
            self.bytes = bytes
            self.purpose = purpose
            self.hint = hint
        }

        /// `bytes` for people: "64 KiB", "16 MiB".
        public var size: String { Self.size(bytes) }

        public static func size(_ bytes: Int) -> String {
            if bytes >= 1 << 20 && bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
            if bytes >= 1 << 10 && bytes % (1 << 10) == 0 { return "\(bytes >> 10) KiB" }
            return "\(bytes) bytes"
        }
    }

    /// The most bytes of response headers read, whatever the purpose: a peer that sends headers
    /// without end is cut off there (libcurl bounds one header line, not their number).
    public static let headerLimit = 256 << 10

    /// A transport failure: the peer could not be reached, did not answer in time, or answered
    /// more than the caller's `BodyLimit`.
    public struct TransportError: Error, CustomStringConvertible, Sendable {
        public struct Code: Hashable, Sendable, CustomStringConvertible {
            private enum Value: String, Sendable {
                case transferFailed = "transfer-failed"
                case timedOut = "timed-out"
                case answerTooLarge = "answer-too-large"
            }

            private let value: Value

            private init(_ value: Value) {
                self.value = value
            }

            /// No answer: the peer could not be reached, the connection broke.
            public static let transferFailed = Code(.transferFailed)
            /// No whole answer before the request's deadline (a peer that is slow, or drips).
            public static let timedOut = Code(.timedOut)
            /// The answer's body (or its headers) went past the limit; the transfer was stopped.
            public static let answerTooLarge = Code(.answerTooLarge)

            public var description: String { value.rawValue }
        }

        public var code: Code
        public var url: String
        public var message: String
        /// The HTTP status of the answer whose body was too large (0 when no status arrived).
        public var status: Int
        public var hint: String?

        public init(_ code: Code, url: String, message: String, status: Int = 0, hint: String? = nil) {
            self.code = code
            self.url = url
            self.message = message
            self.status = status
            self.hint = hint
        }

        public var description: String { "\(url): \(message)" + (hint.map { "\n  hint: \($0)" } ?? "") }
    }

    private static let initialized: Bool = curl_global_init(Int(CURL_GLOBAL_ALL)) == CURLE_OK

    /// TLS to a peer (a remote Docker engine): whether its certificate is verified, against which
    /// certificate authority, and the client certificate and key to present, if any.
    public struct TLSFiles: Sendable, Equatable {
        public var certificate: String?
        public var key: String?
        /// nil with `verify`: the system's authorities.
        public var authority: String?
        public var verify: Bool

        public init(certificate: String?, key: String?, authority: String?, verify: Bool = true) {
            self.certificate = certificate
            self.key = key
            self.authority = authority
            self.verify = verify
        }
    }

    /// What a request sends: nothing, bytes, or a file streamed from disk (an image tarball).
    public enum Body: Sendable {
        case data(Data)
        case file(String)
    }

    public struct Request: Sendable {
        public var method: String
        public var url: String
        public var headers: [String]
        public var body: Body?
        /// The deadline of the whole transfer, connecting included.
        public var timeout: Duration
        /// The most bytes of body read (collected, or handed to `onData`).
        public var limit: BodyLimit
        /// Reach the host of `url` through this unix socket (the Docker engine's).
        public var unixSocket: String?
        public var tls: TLSFiles?

        public init(
            method: String = "GET", url: String, headers: [String] = [], body: Body? = nil,
            timeout: Duration = .seconds(5), limit: BodyLimit,
            unixSocket: String? = nil, tls: TLSFiles? = nil
        ) {
            self.method = method
            self.url = url
            self.headers = headers
            self.body = body
            self.timeout = timeout
            self.limit = limit
            self.unixSocket = unixSocket
            self.tls = tls
        }
    }

    /// GET `url`; any status is a response, only transport failures (and an answer over
    /// `limit`) throw.
    public static func get(
        _ url: String, limit: BodyLimit, timeout: Duration = .seconds(5), headers: [String] = []
    ) async throws -> Response {
        try await send(Request(url: url, headers: headers, timeout: timeout, limit: limit))
    }

    /// POST `body` to `url`; any status is a response, only transport failures (and an answer
    /// over `limit`) throw.
    public static func post(
        _ url: String, body: Data, limit: BodyLimit, timeout: Duration = .seconds(5), headers: [String] = []
    ) async throws
        -> Response
    {
        try await send(
            Request(method: "POST", url: url, headers: headers, body: .data(body), timeout: timeout, limit: limit))
    }

    /// Sends a request; any status is a response, only transport failures throw. With `onData`,
    /// the body is handed over as it arrives (a stream of events or logs) instead of collected;
    /// `onData` returning false ends the transfer, which is then not an error. Either way, the
    /// body read is at most `request.limit`.
    ///
    /// - Throws: `TransportError` (code `answerTooLarge` for an answer over the limit), or
    ///   `CancellationError` when the calling task was cancelled.
    public static func send(_ request: Request, onData: (@Sendable (Data) -> Bool)? = nil) async throws -> Response {
        let cancellation = CancellationFlag()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                // A thread of its own, not a Dispatch worker: Dispatch on Linux adds a worker about
                // once a second when its workers block, and Swift's tasks wait for the same workers.
                Thread {
                    continuation.resume(
                        with: Result { try perform(request, onData: onData, cancellation: cancellation) })
                }.start()
            }
        } onCancel: {
            cancellation.cancel()
        }
    }

    /// Set when the task waiting for a transfer is cancelled; read by libcurl's progress callback.
    private final class CancellationFlag: Sendable {
        private let flag = Atomic<Bool>(false)
        func cancel() { flag.store(true, ordering: .relaxed) }
        var isCancelled: Bool { flag.load(ordering: .relaxed) }
    }

    private final class Transfer {
        var data = Data()
        var onData: ((Data) -> Bool)?
        var stopped = false
        var upload: FileHandle?
        let cancellation: CancellationFlag
        let limit: Int
        /// Body bytes read so far, kept or handed over.
        var received = 0
        var headerBytes = 0
        var headers: [String: String] = [:]
        /// Which limit stopped the transfer, if one did.
        var exceeded: Exceeded?

        enum Exceeded {
            case body, headers
        }

        init(cancellation: CancellationFlag, limit: Int) {
            self.cancellation = cancellation
            self.limit = limit
        }
    }

    private static func perform(
        _ request: Request, onData: ((Data) -> Bool)?, cancellation: CancellationFlag
    ) throws -> Response {
        let url = request.url
        if cancellation.isCancelled { throw CancellationError() }
        guard initialized, let handle = curl_easy_init() else {
            throw TransportError(.transferFailed, url: url, message: "libcurl could not start")
        }
        defer { curl_easy_cleanup(handle) }
        let transfer = Transfer(cancellation: cancellation, limit: request.limit.bytes)
        transfer.onData = onData
        let context = Unmanaged.passRetained(transfer)
        defer { context.release() }
        let milliseconds = Int(
            request.timeout.components.seconds * 1000 + request.timeout.components.attoseconds / 1_000_000_000_000_000)
        ccurl_setopt_string(handle, CURLOPT_URL, url)
        ccurl_setopt_long(handle, CURLOPT_TIMEOUT_MS, milliseconds)
        ccurl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, min(milliseconds, 3000))
        ccurl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        ccurl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0)
        // An answer that announces a larger body is refused before its first byte; one that does
        // not (chunked, or lying) is stopped by the write callback.
        ccurl_setopt_offset(handle, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(request.limit.bytes))
        if let socket = request.unixSocket { ccurl_setopt_string(handle, CURLOPT_UNIX_SOCKET_PATH, socket) }
        if let tls = request.tls {
            if let certificate = tls.certificate { ccurl_setopt_string(handle, CURLOPT_SSLCERT, certificate) }
            if let key = tls.key { ccurl_setopt_string(handle, CURLOPT_SSLKEY, key) }
            if tls.verify {
                if let authority = tls.authority { ccurl_setopt_string(handle, CURLOPT_CAINFO, authority) }
            } else {
                ccurl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 0)
                ccurl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 0)
            }
        }
        // The progress callback runs at least once a second and on every chunk: it aborts the
        // transfer when the caller's task is cancelled.
        ccurl_setopt_long(handle, CURLOPT_NOPROGRESS, 0)
        ccurl_setopt_pointer(handle, CURLOPT_XFERINFODATA, context.toOpaque())
        ccurl_setopt_progress_callback(handle) { context, _, _, _, _ in
            guard let context else { return 0 }
            return Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue().cancellation.isCancelled ? 1 : 0
        }
        ccurl_setopt_pointer(handle, CURLOPT_WRITEDATA, context.toOpaque())
        ccurl_setopt_data_callback(handle, CURLOPT_WRITEFUNCTION) { data, size, count, context in
            guard let data, let context else { return 0 }
            let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
            transfer.received += size * count
            guard transfer.received <= transfer.limit else {
                transfer.exceeded = .body
                return 0
            }
            let bytes = Data(bytes: data, count: size * count)
            if let onData = transfer.onData {
                guard onData(bytes) else {
                    transfer.stopped = true
                    return 0
                }
            } else {
                transfer.data.append(bytes)
            }
            return size * count
        }
        ccurl_setopt_pointer(handle, CURLOPT_HEADERDATA, context.toOpaque())
        ccurl_setopt_data_callback(handle, CURLOPT_HEADERFUNCTION) { data, size, count, context in
            guard let data, let context else { return 0 }
            let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
            transfer.headerBytes += size * count
            guard transfer.headerBytes <= HTTPClient.headerLimit else {
                transfer.exceeded = .headers
                return 0
            }
            // libcurl hands over one whole line at a time: a status line starts an answer's
            // fields afresh, so an interim 100 Continue's are not kept.
            let line = String(decoding: UnsafeRawBufferPointer(start: data, count: size * count), as: UTF8.self)
            if line.hasPrefix("HTTP/") {
                transfer.headers = [:]
            } else if let colon = line.firstIndex(of: ":") {
                let name = line[..<colon].lowercased()
                let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
                transfer.headers[name] = transfer.headers[name].map { "\($0), \(value)" } ?? value
            }
            return size * count
        }
        switch request.body {
        case .data(let body)?:
            // libcurl copies the body with COPYPOSTFIELDS, so it need not outlive this call.
            ccurl_setopt_long(handle, CURLOPT_POST, 1)
            ccurl_setopt_long(handle, CURLOPT_POSTFIELDSIZE, body.count)
            body.withUnsafeBytes { bytes in
                _ = ccurl_setopt_pointer(
                    handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress))
            }
        case .file(let path)?:
            guard let file = FileHandle(forReadingAtPath: path),
                let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? Int
            else { throw TransportError(.transferFailed, url: url, message: "cannot read \(path) to send it") }
            transfer.upload = file
            ccurl_setopt_long(handle, CURLOPT_POST, 1)
            ccurl_setopt_long(handle, CURLOPT_POSTFIELDSIZE, size)
            ccurl_setopt_pointer(handle, CURLOPT_READDATA, context.toOpaque())
            ccurl_setopt_data_callback(handle, CURLOPT_READFUNCTION) { buffer, size, count, context in
                guard let buffer, let context else { return 0 }
                let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
                guard let chunk = try? transfer.upload?.read(upToCount: size * count) else { return 0 }
                chunk.copyBytes(to: UnsafeMutableRawBufferPointer(start: buffer, count: chunk.count))
                return chunk.count
            }
        case nil:
            break
        }
        if request.method == "HEAD" {
            // A HEAD answer announces the length of a body it never sends: libcurl must not wait
            // for that body until the deadline.
            ccurl_setopt_long(handle, CURLOPT_NOBODY, 1)
        } else if request.method != "GET" && request.method != "POST" {
            ccurl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, request.method)
        }
        var list: UnsafeMutablePointer<curl_slist>? = nil
        // An empty `Expect:` keeps libcurl from asking for `100 Continue` before a body over 1 MiB
        // and then waiting a whole second for an answer most receivers never send.
        for header in request.headers + (request.body == nil ? [] : ["Expect:"]) {
            list = curl_slist_append(list, header)
        }
        defer { curl_slist_free_all(list) }
        if list != nil { ccurl_setopt_slist(handle, CURLOPT_HTTPHEADER, list) }
        let code = curl_easy_perform(handle)
        try? transfer.upload?.close()
        if code == CURLE_ABORTED_BY_CALLBACK && cancellation.isCancelled { throw CancellationError() }
        var status = 0
        ccurl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        if code == CURLE_FILESIZE_EXCEEDED || transfer.exceeded == .body {
            let limit = request.limit
            throw TransportError(
                .answerTooLarge, url: url,
                message:
                    "the answer (HTTP \(status)) is larger than \(limit.size), the limit for \(limit.purpose): reading stopped there",
                status: status, hint: limit.hint)
        }
        if transfer.exceeded == .headers {
            throw TransportError(
                .answerTooLarge, url: url,
                message: "the answer's headers are larger than \(BodyLimit.size(headerLimit)): reading stopped there",
                status: status,
                hint: "is \(url) the service it should be? No HTTP service of ours sends that much")
        }
        if code == CURLE_OPERATION_TIMEDOUT {
            throw TransportError(
                .timedOut, url: url, message: "no whole answer within \(Self.seconds(request.timeout)) s, the deadline",
                status: status)
        }
        guard code == CURLE_OK || (code == CURLE_WRITE_ERROR && transfer.stopped) else {
            throw TransportError(.transferFailed, url: url, message: String(cString: curl_easy_strerror(code)))
        }
        return Response(status: status, headers: transfer.headers, body: transfer.data)
    }

    /// A duration in seconds for people: "10", "0.5".
    static func seconds(_ duration: Duration) -> String {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
    }

    /// Percent-encodes a query parameter value.
    public static func encodeQueryValue(_ value: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
    }
}
