import AsyncHTTPClient
import Foundation
import LogoutCore
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Revokes tokens with `POST {API_GATEWAY}/{EP_AUTH_LOGOUT}` over pooled keep-alive connections.
///
/// Reads only the status and `Retry-After` of an answer and discards its body as it streams, so
/// a huge or endless body costs no memory (an endless one meets the call deadline).
public final class HTTPBackendNotifier: BackendNotifier {
    private let client: HTTPClient
    private let eventLoops: MultiThreadedEventLoopGroup
    /// Built once: parsing the URL on every call was a fifth of the call's cost.
    private let template: HTTPClient.Request
    private let timeout: TimeAmount
    /// For an https backend reached directly: where and how ``TLSProbe`` looks when a
    /// certificate is refused. Nil for http, or through a proxy (the probe does not tunnel).
    private let probe: (host: String, port: Int, configuration: TLSConfiguration, timeout: TimeAmount)?

    /// - Parameters:
    ///   - url: the revocation endpoint.
    ///   - concurrency: connections kept to the backend, matching the queue's concurrency cap.
    ///   - connectTimeout: deadline to establish a connection.
    ///   - timeout: deadline for the whole call, connection included.
    ///   - tls: trust and client certificate for an `https://` URL (the system store when nil).
    ///   - proxy: an http proxy every call goes through (`CONNECT` for https).
    /// - Throws: `CrocanteError.invalidSetting("API_GATEWAY", ...)` when async-http-client refuses
    ///   the URL or its host or port is unusable, at start rather than at the first call.
    public init(
        url: String, concurrency: Int, connectTimeout: Duration, timeout: Duration, tls: BackendTLS? = nil,
        proxy: BackendProxy? = nil
    ) throws(CrocanteError) {
        template = try Self.request(url: url)
        var configuration = HTTPClient.Configuration()
        if template.scheme.lowercased() == "https" {
            let tlsConfiguration: TLSConfiguration
            if let tls {
                tlsConfiguration = tls.configuration
            } else {
                tlsConfiguration = try BackendTLS(ca: nil, clientCertificate: nil, clientKey: nil).configuration
            }
            configuration.tlsConfiguration = tlsConfiguration
            probe = proxy == nil ? (template.host, template.port, tlsConfiguration, TimeAmount(connectTimeout)) : nil
        } else {
            probe = nil
        }
        configuration.proxy = proxy.map { .server(host: $0.host, port: $0.port) }
        configuration.timeout = .init(connect: TimeAmount(connectTimeout), read: TimeAmount(timeout))
        configuration.redirectConfiguration = .disallow
        configuration.decompression = .disabled
        configuration.httpVersion = .http1Only
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: concurrency)
        // One event loop is plenty for a few dozen concurrent calls, and keeps the process small.
        eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        client = HTTPClient(eventLoopGroup: eventLoops, configuration: configuration)
        self.timeout = TimeAmount(timeout)
    }

    /// Throws what ``init(url:concurrency:connectTimeout:timeout:tls:proxy:)`` throws for `url`,
    /// without making a client: for `check-config`, which must refuse the same URLs as `serve`.
    public static func validate(url: String) throws(CrocanteError) {
        _ = try request(url: url)
    }

    /// The request every call copies. Checks what async-http-client does not before NIO sees
    /// it: a port outside 1...65535 traps in NIO ("Not enough bits") instead of failing, inside
    /// `HTTPClient.Request(url:)` itself when the host is an IP literal, so the port is checked
    /// on Foundation's parse (the one async-http-client uses) first.
    static func request(url: String) throws(CrocanteError) -> HTTPClient.Request {
        guard let parsed = URL(string: url) else {
            throw .invalidSetting("API_GATEWAY", reason: "not a URL")
        }
        // Foundation reads a port too big for an Int as no port at all (the scheme's default).
        if let text = explicitPort(in: url), !text.isEmpty {
            guard text.count <= 5, let port = Int(text), (1...65_535).contains(port), parsed.port == port else {
                throw .invalidSetting("API_GATEWAY", reason: "port \(text.prefix(12)) is outside 1...65535")
            }
        }
        let request: HTTPClient.Request
        do {
            request = try HTTPClient.Request(
                url: url, method: .POST,
                headers: ["Content-Type": "application/json", "Accept": "application/json", "Content-Length": "0"])
        } catch {
            throw .invalidSetting("API_GATEWAY", reason: "not a URL the HTTP client accepts (\(error))")
        }
        guard (1...65_535).contains(request.port) else {
            throw .invalidSetting("API_GATEWAY", reason: "port \(request.port) is outside 1...65535")
        }
        guard !request.host.isEmpty || url.contains("+unix:") || url.hasPrefix("unix:") else {
            throw .invalidSetting("API_GATEWAY", reason: "the URL names no host")
        }
        return request
    }

    /// The port as written in `url`'s authority (RFC 3986 §3.2), nil when none is written.
    static func explicitPort(in url: String) -> Substring? {
        guard let start = url.range(of: "://")?.upperBound else { return nil }
        let rest = url[start...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        let hostAndPort = authority.split(separator: "@", omittingEmptySubsequences: false).last ?? authority
        let afterHost = hostAndPort.hasPrefix("[") ? hostAndPort.drop { $0 != "]" }.dropFirst() : hostAndPort
        guard let colon = afterHost.lastIndex(of: ":") else { return nil }
        return afterHost[afterHost.index(after: colon)...]
    }

    public func revoke(_ token: AccessToken, completion: @escaping @Sendable (RevocationOutcome) -> Void) {
        var request = template
        request.headers.replaceOrAdd(name: "Authorization", value: "Bearer \(token.value)")
        let probe = probe
        let task = client.execute(request: request, delegate: StatusOnly(), deadline: .now() + timeout)
        task.futureResult.whenComplete { result in
            switch result {
            case .success(let answer):
                let retryAfter = answer.retryAfter.flatMap { RetryAfter.parse($0, now: Self.wallNow()) }
                completion(RevocationOutcome(status: answer.status, retryAfter: retryAfter))
            case .failure(let error):
                let failure = Self.classify(error)
                // "Certificate verify failed" hides which check failed: one more handshake says.
                if case .tls(let tls) = failure, tls.needsDiagnosis, let probe {
                    TLSProbe.diagnose(
                        host: probe.host, port: probe.port, configuration: probe.configuration, on: task.eventLoop,
                        timeout: probe.timeout
                    ).whenSuccess { completion(.failed(.tls($0))) }
                } else {
                    completion(.failed(failure))
                }
            }
        }
    }

    static func classify(_ error: any Error) -> RevocationOutcome.Failure {
        if let tls = TLSFailure(classifying: error) { return .tls(tls) }
        if let error = error as? HTTPClientError,
            [.connectTimeout, .deadlineExceeded, .readTimeout, .writeTimeout].contains(error)
        {
            return .timeout
        }
        if case ChannelError.connectTimeout = error { return .timeout }
        return .connection(String(describing: error))
    }

    private static func wallNow() -> UnixMilliseconds {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000 + Int64(now.tv_nsec) / 1_000_000
    }

    /// Closes pooled connections and cancels calls still running (`HTTPClient.syncShutdown`).
    public func shutdown() {
        try? client.syncShutdown()
        try? eventLoops.syncShutdownGracefully()
    }
}

/// Keeps the status and `Retry-After` of the response head and drops every body part as it
/// arrives: no body byte is ever accumulated.
final class StatusOnly: HTTPClientResponseDelegate {
    typealias Response = (status: Int, retryAfter: String?)

    private let head = Mutex<Response?>(nil)

    func didReceiveHead(task: HTTPClient.Task<Response>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        self.head.withLock { $0 = (Int(head.status.code), head.headers.first(name: "Retry-After")) }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Response>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        task.eventLoop.makeSucceededVoidFuture()
    }

    func didFinishRequest(task: HTTPClient.Task<Response>) throws -> Response {
        guard let head = head.withLock({ $0 }) else { throw HTTPClientError.remoteConnectionClosed }
        return head
    }
}
