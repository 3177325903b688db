import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// After a handshake failed with `CERTIFICATE_VERIFY_FAILED`, connects once more and looks at
/// the certificate the backend presents, to tell "expired" from "unknown CA" in the log.
///
/// The probe's own verification callback refuses every certificate, so nothing is ever sent
/// on its connection: no request, no token.
enum TLSProbe {
    /// Completes with the specific reason, or `.untrusted` when the probe cannot tell (no
    /// connection, no certificate, deadline passed). Never fails.
    static func diagnose(
        host: String, port: Int, configuration: TLSConfiguration, on eventLoop: any EventLoop, timeout: TimeAmount,
        now: @escaping @Sendable () -> Date = Date.init
    ) -> EventLoopFuture<TLSFailure> {
        let verdict = eventLoop.makePromise(of: TLSFailure.self)
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            return eventLoop.makeSucceededFuture(.untrusted)
        }
        let isAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
        let timer = eventLoop.scheduleTask(in: timeout) { verdict.succeed(.untrusted) }
        let connecting = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = try NIOSSLClientHandler(
                        context: context, serverHostname: isAddress ? nil : host,
                        customVerificationCallback: { certificates, result in
                            verdict.succeed(classify(leaf: certificates.first, now: now()))
                            result.succeed(.failed)
                        })
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: host, port: port)
        connecting.whenFailure { _ in verdict.succeed(.untrusted) }
        // The first of callback, failure and timer wins; NIO ignores the later ones.
        let once = verdict.futureResult
        once.whenComplete { _ in
            timer.cancel()
            connecting.whenSuccess { $0.close(promise: nil) }
        }
        return once
    }

    /// What is wrong with a certificate the backend presented and verification refused.
    static func classify(leaf: NIOSSLCertificate?, now: Date) -> TLSFailure {
        guard let leaf else { return .untrusted }
        let seconds = Int(now.timeIntervalSince1970)
        if leaf.notValidAfter < seconds { return .expired }
        if leaf.notValidBefore > seconds { return .notYetValid }
        // The dates hold, the host name is checked separately: the chain leads to no trusted root.
        return .unknownCA
    }
}
