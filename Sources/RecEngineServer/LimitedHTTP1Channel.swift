import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1

/// HTTP/1.1 as Hummingbird serves it, with the limits a server open to untrusted clients needs:
/// at most `limits.maximumConnections` open connections (see `ConnectionTable`), a request head
/// complete within `limits.headerTimeout` of its first byte (`RequestHeadDeadline`), and
/// Hummingbird's own idle timeout for connections that send nothing.
struct LimitedHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let http1: HTTP1Channel
    let headerTimeout: TimeAmount
    let connections: ConnectionTable

    init(
        responder: @escaping HTTPChannelHandler.Responder, limits: InferenceServerConfiguration.ConnectionLimits,
        connections: ConnectionTable
    ) {
        http1 = HTTP1Channel(responder: responder, configuration: .init(idleTimeout: TimeAmount(limits.idleTimeout)))
        headerTimeout = TimeAmount(limits.headerTimeout)
        self.connections = connections
    }

    /// Why a connection was closed as soon as it was accepted.
    struct AllConnectionsBusy: Error {}

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        switch connections.admit(channel) {
        case .refused:
            logger.debug(
                "connection closed: every connection is busy with a request",
                metadata: ["server.connections": "\(connections.maximum)"])
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(AllConnectionsBusy())
        case .admittedClosingTheLongestWaiting:
            logger.debug(
                "connection limit reached: closed the connection waiting longest for a request",
                metadata: ["server.connections": "\(connections.maximum)"])
        case .admitted:
            break
        }
        let connections = self.connections
        let headerTimeout = self.headerTimeout
        channel.closeFuture.whenComplete { _ in connections.remove(channel) }
        return http1.setup(channel: channel, logger: logger).flatMapThrowing { value in
            // Still on the channel's event loop, in the same turn: no byte has been read yet.
            let pipeline = channel.pipeline.syncOperations
            let deadline = RequestHeadDeadline(timeout: headerTimeout, connections: connections, logger: logger)
            try pipeline.addHandler(deadline, position: .first)
            let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try pipeline.addHandler(RequestProgress(deadline: deadline), position: .after(decoder))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await http1.handle(value: value, logger: logger)
    }
}

/// Closes a connection whose request head is not complete `timeout` after its first byte
/// (a slowloris client), answering 408 first.
///
/// First in the pipeline, it sees bytes as they arrive; `RequestProgress`, after the HTTP
/// decoder, tells it when a head is complete and when its answer has been written.
final class RequestHeadDeadline: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private let timeout: TimeAmount
    private let connections: ConnectionTable
    private let logger: Logger
    private var waitingForHead = true
    private var expiry: Scheduled<Void>?
    private var context: ChannelHandlerContext?

    init(timeout: TimeAmount, connections: ConnectionTable, logger: Logger) {
        self.timeout = timeout
        self.connections = connections
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelExpiry()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelExpiry()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // The decoder behind may complete a head in this very call (the usual case).
        context.fireChannelRead(data)
        if waitingForHead, expiry == nil {
            expiry = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in expire() }
        }
    }

    /// A request head arrived in full.
    func headArrived() {
        waitingForHead = false
        cancelExpiry()
        if let channel = context?.channel { connections.requestStarted(on: channel) }
    }

    /// The answer is written; the deadline starts again at the next request's first byte.
    func answerWritten() {
        waitingForHead = true
        if let channel = context?.channel { connections.requestFinished(on: channel) }
    }

    private func cancelExpiry() {
        expiry?.cancel()
        expiry = nil
    }

    private func expire() {
        expiry = nil
        guard waitingForHead, let context else { return }
        let seconds = timeout.nanoseconds / 1_000_000_000
        logger.debug(
            "connection closed: its request head did not arrive in time",
            metadata: ["server.header_timeout": "\(seconds)s"])
        let body = "error: the request head did not arrive within \(seconds) s of its first byte\n"
        let answer =
            "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n" + body
        context.writeAndFlush(
            wrapOutboundOut(.byteBuffer(context.channel.allocator.buffer(string: answer))), promise: nil)
        context.close(promise: nil)
    }
}

/// Tells `RequestHeadDeadline` when a request head is complete and when its answer is written.
/// It sits right after the HTTP decoder, where requests and answers are HTTP parts.
final class RequestProgress: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let deadline: RequestHeadDeadline

    init(deadline: RequestHeadDeadline) {
        self.deadline = deadline
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) { deadline.headArrived() }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { deadline.answerWritten() }
        context.write(data, promise: promise)
    }
}

@available(*, unavailable)
extension RequestHeadDeadline: Sendable {}

@available(*, unavailable)
extension RequestProgress: Sendable {}
