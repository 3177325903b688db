import Crypto
import Synchronization

/// AES-256-GCM under a fixed list of keys, with contexts keyed once (`GCMContext`) and lent to
/// one thread at a time.
///
/// A caller takes a set (one context per key, in the keys' order), uses it alone and gives it
/// back; a set is made only when every set is lent out, so there are never more sets than
/// threads ever inside `withContexts` at once (the workers). Lending costs two uncontended
/// lock round trips, against a key schedule per message without it.
package final class GCMKeyring: Sendable {
    private let keys: [SymmetricKey]
    private let nonceLength: Int
    private let direction: GCMContext.Direction
    private let idle: Mutex<[ContextSet]>

    /// The contexts of one set may move between threads; the lock makes sure one uses them at a time.
    private struct ContextSet: @unchecked Sendable {
        let contexts: [GCMContext]
    }

    /// Makes the first set at once: a libcrypto that cannot (say, a broken OpenSSL configuration)
    /// stops the process at start-up, not at its first cookie.
    package init(keys: [SymmetricKey], nonceLength: Int, direction: GCMContext.Direction) {
        self.keys = keys
        self.nonceLength = nonceLength
        self.direction = direction
        idle = Mutex([Self.makeSet(keys: keys, nonceLength: nonceLength, direction: direction)])
    }

    /// Runs `body` with a context per key, current first, that no other thread uses meanwhile.
    package func withContexts<Result>(_ body: ([GCMContext]) -> Result) -> Result {
        let set = idle.withLock { $0.popLast() } ?? Self.makeSet(keys: keys, nonceLength: nonceLength, direction: direction)
        defer { idle.withLock { $0.append(set) } }
        return body(set.contexts)
    }

    private static func makeSet(keys: [SymmetricKey], nonceLength: Int, direction: GCMContext.Direction) -> ContextSet {
        ContextSet(contexts: keys.map { GCMContext(key: $0, nonceLength: nonceLength, direction: direction) })
    }
}
