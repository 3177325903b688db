import AsyncHTTPClient
import LogoutCore
import NIOCore
import NIOHTTP1
import NIOPosix

/// Revokes tokens with `POST {API_GATEWAY}/{EP_AUTH_LOGOUT}` over pooled keep-alive connections.
public final class HTTPBackendNotifier: BackendNotifier {
    private let client: HTTPClient
    private let eventLoops: MultiThreadedEventLoopGroup
    /// Built once: parsing the URL on every call was a fifth of the call's cost.
    private let template: HTTPClient.Request?
    private let url: String
    private let timeout: TimeAmount

    /// - Parameters:
    ///   - url: the revocation endpoint.
    ///   - concurrency: connections kept to the backend, matching the queue's concurrency cap.
    ///   - connectTimeout: deadline to establish a connection.
    ///   - timeout: deadline for the whole call, connection included.
    public init(url: String, concurrency: Int, connectTimeout: Duration, timeout: Duration) {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: TimeAmount(connectTimeout), read: TimeAmount(timeout))
        configuration.redirectConfiguration = .disallow
        configuration.decompression = .disabled
        configuration.httpVersion = .http1Only
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: concurrency)
        // One event loop is plenty for a few dozen concurrent calls, and keeps the process small.
        eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        client = HTTPClient(eventLoopGroup: eventLoops, configuration: configuration)
        self.url = url
        self.timeout = TimeAmount(timeout)
        template = try? HTTPClient.Request(
            url: url, method: .POST,
            headers: ["Content-Type": "application/json", "Accept": "application/json", "Content-Length": "0"])
    }

    public func revoke(_ token: AccessToken, completion: @escaping @Sendable (RevocationOutcome) -> Void) {
        guard var request = template else {
            completion(.failed(.connection("async-http-client refuses the URL \(url)")))
            return
        }
        request.headers.replaceOrAdd(name: "Authorization", value: "Bearer \(token.value)")
        client.execute(request: request, deadline: .now() + timeout).whenComplete { result in
            switch result {
            case .success(let response):
                completion(RevocationOutcome(status: Int(response.status.code)))
            case .failure(let error):
                completion(.failed(Self.classify(error)))
            }
        }
    }

    private static func classify(_ error: any Error) -> RevocationOutcome.Failure {
        if let error = error as? HTTPClientError,
            [.connectTimeout, .deadlineExceeded, .readTimeout, .writeTimeout].contains(error)
        {
            return .timeout
        }
        if case ChannelError.connectTimeout = error { return .timeout }
        return .connection(String(describing: error))
    }

    /// Closes pooled connections and cancels calls still running (`HTTPClient.syncShutdown`).
    public func shutdown() {
        try? client.syncShutdown()
        try? eventLoops.syncShutdownGracefully()
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
