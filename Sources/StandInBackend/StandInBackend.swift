import ArgumentParser
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// A stand-in for the backend's logout endpoint: answers as told and records every request it
/// sees, for the quick start and the tests. Listens on loopback only.
@main
struct StandInBackend: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crocante-standin-backend",
        abstract: "Stand-in backend: records every request, answers as told (loopback or a private address only).",
        discussion: "Prints `listening on HOST:PORT` once ready, then one line per request received."
    )

    enum Behavior: String, ExpressibleByArgument, CaseIterable {
        /// Answer with --status after --delay-ms.
        case answer
        /// Read the request and never answer, keeping the connection open.
        case blackhole
        /// Send a partial answer, then reset the connection.
        case reset
        /// Answer 200 with a chunked body that never ends, until the client goes away.
        case endless
    }

    @Option(help: "Address to bind: 127.0.0.1, ::1, or a private 10.x.x.x address (a test's network namespace).")
    var host = "127.0.0.1"

    @Option(help: "Port to bind; 0 picks a free one.")
    var port = 0

    @Option(help: "HTTP status to answer with.")
    var status = 200

    @Option(help: "Milliseconds to wait before answering.")
    var delayMs = 0

    @Option(help: "Extra response header, as 'Name: value' (repeatable).")
    var header: [String] = []

    @Option(help: "answer, blackhole, reset or endless.")
    var behavior: Behavior = .answer

    @Option(help: "File to append one JSON line per request to (method, uri, headers, body, at, server, peer).")
    var record: String?

    @Option(help: "Label written as `server` in every recorded line, to tell apart stand-ins sharing one record file.")
    var name = ""

    @Option(help: "Answer the first N requests with --first-status and --first-header instead.")
    var first = 0

    @Option(help: "HTTP status for the first N requests.")
    var firstStatus = 503

    @Option(help: "Extra response header for the first N requests, as 'Name: value' (repeatable).")
    var firstHeader: [String] = []

    @Option(help: "PEM certificate (chain) to serve HTTPS with; needs --tls-key.")
    var tlsCert: String?

    @Option(help: "PEM private key of --tls-cert.")
    var tlsKey: String?

    @Flag(help: "Require a client certificate issued by --client-ca (mTLS).")
    var requireClientCert = false

    @Option(help: "PEM bundle of the CAs client certificates must chain to.")
    var clientCa: String?

    func validate() throws {
        // A 10.x address is for the scale-out tests, inside their own network namespaces; never a public one.
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        let isPrivate = octets.count == 4 && octets[0] == "10" && octets.allSatisfy { UInt8($0) != nil }
        guard host == "127.0.0.1" || host == "::1" || isPrivate else {
            throw ValidationError("--host must be a loopback address or a 10.x.x.x address")
        }
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
        guard !requireClientCert || (tlsCert != nil && clientCa != nil) else {
            throw ValidationError("--require-client-cert needs --tls-cert, --tls-key and --client-ca")
        }
    }

    /// The server TLS context, when --tls-cert is given: TLS 1.2 and up, a client certificate
    /// verified against --client-ca when required (no host name check on a client).
    func tlsContext() throws -> NIOSSLContext? {
        guard let tlsCert, let tlsKey else { return nil }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(tlsCert).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: tlsKey, format: .pem)))
        configuration.minimumTLSVersion = .tlsv12
        if requireClientCert, let clientCa {
            configuration.certificateVerification = .noHostnameVerification
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(clientCa))
        }
        return try NIOSSLContext(configuration: configuration)
    }

    func run() throws {
        // A parent may have left SIGTERM ignored or blocked; the tests stop this process with it.
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        for stopSignal in [SIGTERM, SIGINT] {
            signal(stopSignal, SIG_DFL)
            sigaddset(&stopSignals, stopSignal)
        }
        pthread_sigmask(SIG_UNBLOCK, &stopSignals, nil)

        let recorder = try Recorder(path: record, server: name)
        func fields(_ lines: [String]) -> [(String, String)] {
            lines.compactMap { line in
                line.firstIndex(of: ":").map {
                    (String(line[..<$0]), line[line.index(after: $0)...].trimmingCharacters(in: .whitespaces))
                }
            }
        }
        let reply = Reply(
            status: HTTPResponseStatus(statusCode: status), delay: .milliseconds(Int64(delayMs)),
            headers: fields(header), behavior: behavior,
            first: first, firstStatus: HTTPResponseStatus(statusCode: firstStatus), firstHeaders: fields(firstHeader))
        let tls = try tlsContext()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(RequestHandler(reply: reply, recorder: recorder))
                }
            }
            .bind(host: host, port: port)
            .wait()
        let bound = channel.localAddress?.port ?? port
        say(host.contains(":") ? "listening on [\(host)]:\(bound)" : "listening on \(host):\(bound)")
        try channel.closeFuture.wait()
    }
}

/// One unbuffered line on stdout, so a test reading the pipe sees it at once.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// How to answer, fixed for the process's life.
struct Reply: Sendable {
    let status: HTTPResponseStatus
    let delay: TimeAmount
    let headers: [(String, String)]
    let behavior: StandInBackend.Behavior
    /// The first `first` requests (counted across connections) get `firstStatus` and `firstHeaders`.
    let first: Int
    let firstStatus: HTTPResponseStatus
    let firstHeaders: [(String, String)]
}

/// Appends one JSON line per request to a file, and a short line to stdout.
final class Recorder: Sendable {
    private let file: Mutex<FileHandle?>
    private let server: String
    private let seen = Atomic<Int>(0)

    init(path: String?, server: String) throws {
        self.server = server
        if let path {
            if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try handle.seekToEnd()
            file = Mutex(handle)
        } else {
            file = Mutex(nil)
        }
    }

    struct Entry: Encodable {
        let method: String
        let uri: String
        let headers: [[String]]
        let body: String
        /// Milliseconds since the epoch when the request was complete, so tests can see retry delays.
        let at: Double
        let server: String
        /// The client's IP address: which responder host sent it, in the scale-out tests.
        let peer: String
    }

    /// Records the request; returns how many requests came before it.
    @discardableResult
    func record(_ head: HTTPRequestHead, body: ByteBuffer, peer: String) -> Int {
        let index = seen.add(1, ordering: .relaxed).oldValue
        let entry = Entry(
            method: head.method.rawValue, uri: head.uri, headers: head.headers.map { [$0.name, $0.value] },
            body: String(buffer: body), at: Date().timeIntervalSince1970 * 1000, server: server, peer: peer)
        guard var line = try? JSONEncoder().encode(entry) else { return index }
        line.append(UInt8(ascii: "\n"))
        file.withLock { try? $0?.write(contentsOf: line) }
        say("\(head.method.rawValue) \(head.uri)")
        return index
    }
}

final class RequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let reply: Reply
    private let recorder: Recorder
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()

    init(reply: Reply, recorder: Recorder) {
        self.reply = reply
        self.recorder = recorder
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
        case .body(var chunk):
            body.writeBuffer(&chunk)
        case .end:
            guard let head else { return }
            let index = recorder.record(head, body: body, peer: context.channel.remoteAddress?.ipAddress ?? "")
            respond(context: context, keepAlive: head.isKeepAlive, early: index < reply.first)
        }
    }

    /// Writes `chunk` again each time the last one has left, while the connection is open; each
    /// round goes through the event loop, so no stack grows.
    private func streamForever(context: ChannelHandlerContext, chunk: ByteBuffer) {
        guard context.channel.isActive else { return }
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(chunk)))).whenSuccess {
            let context = loopBound.value
            context.eventLoop.execute { self.streamForever(context: loopBound.value, chunk: chunk) }
            _ = context
        }
    }

    private func respond(context: ChannelHandlerContext, keepAlive: Bool, early: Bool) {
        switch reply.behavior {
        case .blackhole:
            return
        case .reset:
            var headers = HTTPHeaders([("Content-Length", "100")])
            headers.add(name: "Content-Type", value: "application/json")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: reply.status, headers: headers))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "{\"par")))), promise: nil)
            // SO_LINGER 0 turns the close into a TCP reset.
            let channel = context.channel
            guard let provider = channel as? any SocketOptionProvider else {
                channel.close(promise: nil)
                return
            }
            provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
        case .endless:
            let headers = HTTPHeaders([("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")])
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            streamForever(context: context, chunk: ByteBuffer(repeating: UInt8(ascii: " "), count: 64 * 1024))
        case .answer:
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            let reply = reply
            let status = early ? reply.firstStatus : reply.status
            let extraHeaders = early ? reply.firstHeaders : reply.headers
            context.eventLoop.scheduleTask(in: reply.delay) {
                let context = loopBound.value
                let body = ByteBuffer(string: status.code < 300 ? "{}" : "{\"error\":\"stand-in\"}")
                var headers = HTTPHeaders(extraHeaders)
                headers.add(name: "Content-Type", value: "application/json")
                headers.add(name: "Content-Length", value: "\(body.readableBytes)")
                if !keepAlive { headers.add(name: "Connection", value: "close") }
                context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
                context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
                context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in
                    if !keepAlive { context.close(promise: nil) }
                }
            }
        }
    }
}
