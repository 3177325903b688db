import Foundation

/// One tab of a ``Chromium``, attached with a flat session.
struct BrowserPage {
    let browser: Chromium
    let session: String

    /// Opens a new tab on `about:blank`.
    init(_ browser: Chromium) throws {
        self.browser = browser
        let target = try browser.send("Target.createTarget", ["url": "about:blank"])
        guard let targetID = target["targetId"] as? String else { throw HarnessError("no targetId") }
        let attached = try browser.send("Target.attachToTarget", ["targetId": targetID, "flatten": true])
        guard let session = attached["sessionId"] as? String else { throw HarnessError("no sessionId") }
        self.session = session
        try send("Page.enable")
        try send("Runtime.enable")
    }

    @discardableResult
    func send(_ method: String, _ params: [String: Any] = [:], timeout: Duration = .seconds(30)) throws -> [String: Any] {
        try browser.send(method, params, session: session, timeout: timeout)
    }

    /// Goes to `url` and waits until its document has loaded.
    func navigate(_ url: String) throws {
        let reply = try send("Page.navigate", ["url": url])
        if let failure = reply["errorText"] as? String { throw HarnessError("navigation to \(url) failed: \(failure)") }
        try waitUntil("document.readyState === 'complete' && location.href === \(Self.literal(url))")
    }

    /// The value of a JavaScript expression, promises awaited; throws on an exception.
    @discardableResult
    func evaluate(_ expression: String, timeout: Duration = .seconds(30)) throws -> Any? {
        let reply = try send(
            "Runtime.evaluate", ["expression": expression, "awaitPromise": true, "returnByValue": true], timeout: timeout)
        if let exception = reply["exceptionDetails"] as? [String: Any] {
            let text = (exception["exception"] as? [String: Any])?["description"] ?? exception["text"] ?? "exception"
            throw HarnessError("page threw: \(text)")
        }
        return (reply["result"] as? [String: Any])?["value"]
    }

    /// Polls a JavaScript condition until it is true; errors while a page is being replaced count as false.
    func waitUntil(_ condition: String, timeout: Duration = .seconds(45)) throws {
        let met = Harness.waitUntil(timeout: timeout) { ((try? evaluate(condition, timeout: .seconds(5))) as? Bool) == true }
        guard met else { throw HarnessError("page never met: \(condition)") }
    }

    /// Every cookie of the browser (HttpOnly ones included, which the page cannot see).
    func cookies() throws -> [[String: Any]] {
        try browser.send("Storage.getCookies")["cookies"] as? [[String: Any]] ?? []
    }

    /// The page as PNG, written to `file`.
    func screenshot(to file: URL) throws {
        let reply = try send("Page.captureScreenshot", ["format": "png"])
        guard let base64 = reply["data"] as? String, let data = Data(base64Encoded: base64) else { throw HarnessError("no screenshot data") }
        try data.write(to: file)
    }

    /// `text` as a JavaScript string literal.
    static func literal(_ text: String) -> String {
        let data = try! JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self).dropFirst().dropLast().description
    }
}
