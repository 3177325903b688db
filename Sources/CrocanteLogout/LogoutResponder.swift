import FastCGI
import LogoutCore
import Revocation

/// Connects the FastCGI server to the logout decision and the revocation queue.
struct LogoutResponder: FastCGIResponder {
    let endpoint: LogoutEndpoint
    let revocations: RevocationQueue

    func respond(to request: FastCGIRequest) -> (response: [UInt8], followUp: AccessToken?) {
        let decision = endpoint.decide(method: request.method, path: request.path, cookieHeader: request.cookieHeader)
        return (decision.response.bytes, decision.tokenToRevoke)
    }

    /// Runs after the response has left: queueing is O(1) and never waits for the backend.
    func afterResponse(_ token: AccessToken) {
        revocations.enqueue(token)
    }
}
