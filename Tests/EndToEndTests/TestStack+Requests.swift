import Foundation

extension TestStack {
    /// One request through nginx with curl: the parsed answer and curl's raw output.
    func curl(_ method: String = "POST", path: String = "/api/auth/logout", headers: [String] = [], extra: [String] = [])
        throws -> (answer: HTTPAnswer, raw: String)
    {
        var arguments = ["-sS", "-i", "--max-time", "30"] + (method == "HEAD" ? ["-I"] : ["-X", method])
        for header in headers { arguments += ["-H", header] }
        arguments += extra + ["http://127.0.0.1:\(nginxPort)\(path)"]
        let result = try Harness.run("/usr/bin/curl", arguments)
        guard result.status == 0 else { throw HarnessError("curl failed (\(result.status)): \(result.stderr)") }
        return (try RawHTTP.parse(Array(result.stdout.utf8)), result.stdout)
    }

    /// One request through nginx with exact bytes: each `cookies` element becomes its own
    /// `Cookie:` header line.
    func send(
        _ method: String = "POST", path: String = "/api/auth/logout", cookies: [[UInt8]] = [], headers: [String] = [],
        body: [UInt8] = []
    ) throws -> HTTPAnswer {
        try RawHTTP.parse(RawHTTP.exchange(port: nginxPort, RawHTTP.request(method, path: path, cookies: cookies, headers: headers, body: body)))
    }

    /// POST /api/auth/logout with `crocante_session=<cookie>` (or no cookie).
    func logout(_ cookie: String?) throws -> HTTPAnswer {
        try send(cookies: cookie.map { [Array("crocante_session=\($0)".utf8)] } ?? [])
    }

    /// The responder's status page as JSON numbers, through the path nginx.conf.example exposes to loopback.
    func status() throws -> [String: Int] {
        let answer = try send("GET", path: "/crocante-logout/status")
        return (try? JSONDecoder().decode([String: Int].self, from: Data(answer.body.utf8))) ?? [:]
    }
}
