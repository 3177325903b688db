import Testing

@testable import FastCGI

@Suite struct KeepConnectionPolicyTests {
    struct Look: Sendable, CustomTestStringConvertible {
        var readable = false
        var closed = false
        var othersWaiting = false
        var idleMilliseconds = 0
        var stopping = false
        var expected: KeepConnectionPolicy.Step

        var testDescription: String {
            "readable \(readable) closed \(closed) others \(othersWaiting) idle \(idleMilliseconds) stopping \(stopping)"
        }
    }

    static let policy = KeepConnectionPolicy(enabled: true, idleLimit: .milliseconds(500))

    static let looks: [Look] = [
        Look(expected: .keepWaiting),
        Look(idleMilliseconds: 499, expected: .keepWaiting),
        Look(idleMilliseconds: 500, expected: .release(.idle)),
        Look(readable: true, expected: .serveNext),
        // Nobody queues behind an idle connection, nor behind one with a request already on it.
        Look(othersWaiting: true, expected: .release(.othersWaiting)),
        Look(readable: true, othersWaiting: true, expected: .release(.othersWaiting)),
        Look(readable: true, closed: true, expected: .release(.peerClosed)),
        Look(closed: true, expected: .release(.peerClosed)),
        Look(readable: true, stopping: true, expected: .release(.stopping)),
        Look(othersWaiting: true, stopping: true, expected: .release(.stopping)),
    ]

    /// A connection pending with nobody in accept waits out the grace first: a worker about to
    /// finish usually takes it, and a kept connection given up costs nginx a request sent again.
    @Test func aPendingConnectionWaitsOutTheGraceBeforeAKeptConnectionIsGivenUp() {
        #expect(!Self.policy.othersWait(pendingFor: .zero))
        #expect(!Self.policy.othersWait(pendingFor: KeepConnectionPolicy.yieldGrace - .nanoseconds(1)))
        #expect(Self.policy.othersWait(pendingFor: KeepConnectionPolicy.yieldGrace))
        #expect(KeepConnectionPolicy.yieldGrace <= .milliseconds(1), "a pending connection waits at most a millisecond more")
    }

    @Test(arguments: looks)
    func eachLookAtTheTwoDescriptorsHasOneMeaning(_ look: Look) {
        let step = Self.policy.step(
            connectionReadable: look.readable, connectionClosed: look.closed, othersWaiting: look.othersWaiting,
            idleFor: .milliseconds(look.idleMilliseconds), stopping: look.stopping)
        #expect(step == look.expected)
    }
}
