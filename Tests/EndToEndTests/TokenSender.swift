import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Logs out distinct sessions through nginx from a few threads, each cookie once, in order,
/// until the list ends or it is told to stop; remembers which got a 200.
final class TokenSender: Sendable {
    private let endpoint: HTTPEndpoint
    private let cookies: [String]
    private let tokens: [String]
    private let pause: Duration
    private let next = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    /// Status (or -1 for a socket error) of each index sent.
    private let statuses = Mutex<[Int: Int]>([:])
    private let group = DispatchGroup()

    /// - Parameter pause: how long each thread waits between its logouts (sets the rate).
    convenience init(port: UInt16, tokens: [String], cookies: [String], pause: Duration = .zero) {
        self.init(endpoint: .loopback(port: port), tokens: tokens, cookies: cookies, pause: pause)
    }

    init(endpoint: HTTPEndpoint, tokens: [String], cookies: [String], pause: Duration = .zero) {
        (self.endpoint, self.tokens, self.cookies, self.pause) = (endpoint, tokens, cookies, pause)
    }

    func start(threads: Int) {
        for _ in 0..<threads {
            group.enter()
            Thread.detachNewThread { [self] in
                while !stopping.load(ordering: .relaxed) {
                    let index = next.add(1, ordering: .relaxed).oldValue
                    guard index < cookies.count else { break }
                    let request = RawHTTP.request("POST", path: "/api/auth/logout", cookies: [Array("crocante_session=\(cookies[index])".utf8)])
                    let status = (try? RawHTTP.parse(RawHTTP.exchange(endpoint, request)).status) ?? -1
                    statuses.withLock { $0[index] = status }
                    if pause > .zero { usleep(UInt32(pause.components.seconds * 1_000_000 + pause.components.attoseconds / 1_000_000_000_000)) }
                }
                group.leave()
            }
        }
    }

    /// Stops after the requests under way; returns at once when the list is already done.
    @discardableResult
    func stop() -> [Int: Int] {
        stopping.store(true, ordering: .relaxed)
        group.wait()
        return statuses.withLock { $0 }
    }

    /// Waits for the whole list to be sent.
    func finish() -> [Int: Int] {
        group.wait()
        return statuses.withLock { $0 }
    }

    var sent: Int { statuses.withLock { $0.count } }

    /// The tokens whose logout was answered 200.
    var answeredTokens: [String] { statuses.withLock { $0.filter { $0.value == 200 }.keys.sorted().map { tokens[$0] } } }

    /// How many answers had each status (-1: socket error).
    var tally: [Int: Int] { statuses.withLock { Dictionary($0.values.map { ($0, 1) }, uniquingKeysWith: +) } }
}
