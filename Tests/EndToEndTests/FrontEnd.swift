import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A FastCGI front end other than nginx (HAProxy, Apache httpd, lighttpd) in the foreground,
/// running its deploy/ example inside a minimal main configuration, everything under one
/// directory, accepting on a loopback port. Never the distribution's own instance: its own
/// configuration files, pid file and logs, and no port of its own (no port 80).
final class FrontEnd {
    enum Kind: String, CaseIterable, Sendable, CustomStringConvertible {
        case haproxy, apache, lighttpd

        var description: String { rawValue }

        /// The example in deploy/ the tests run.
        var example: String {
            switch self {
            case .haproxy: return "deploy/haproxy.cfg.example"
            case .apache: return "deploy/apache-crocante-logout.conf.example"
            case .lighttpd: return "deploy/lighttpd-crocante-logout.conf.example"
            }
        }

        var executable: String {
            switch self {
            case .haproxy: return "/usr/sbin/haproxy"
            case .apache: return "/usr/sbin/apache2"
            case .lighttpd: return "/usr/sbin/lighttpd"
            }
        }

        /// The example's listening line and what it becomes. Apache's and lighttpd's examples
        /// have none (Debian's main configuration listens): the tests' main configuration does.
        func listenReplacement(port: UInt16) -> (String, String)? {
            self == .haproxy ? ("bind :80", "bind 127.0.0.1:\(port)") : nil
        }
    }

    let kind: Kind
    let process: ManagedProcess
    let directory: URL

    /// The kind's example with the responder's socket at `socketPath`, listening on
    /// 127.0.0.1:`port`, and `replacements` made after those; each must match, so a change to
    /// the example cannot silently make a test vacuous.
    static func site(_ kind: Kind, socketPath: String, port: UInt16, replacements: [(String, String)] = []) throws -> String {
        var site = try String(contentsOf: Harness.packageRoot.appendingPathComponent(kind.example), encoding: .utf8)
        let all = [("/run/crocante-logout/fcgi.sock", socketPath)] + [kind.listenReplacement(port: port)].compactMap { $0 } + replacements
        for (from, to) in all {
            guard site.contains(from) else { throw HarnessError("\(kind.example) no longer contains \(from)") }
            site = site.replacingOccurrences(of: from, with: to)
        }
        return site
    }

    /// Starts `kind` with `site` and waits until it accepts on `port`.
    init(_ kind: Kind, site: String, port: UInt16, directory: URL) throws {
        self.kind = kind
        self.directory = directory
        let root = directory.path
        let sitePath = "\(root)/\(kind)-site.conf"
        let mainPath = "\(root)/\(kind)-main.conf"
        try site.write(toFile: sitePath, atomically: true, encoding: .utf8)
        try Self.mainConfiguration(kind, root: root, port: port, sitePath: sitePath).write(toFile: mainPath, atomically: true, encoding: .utf8)
        let arguments: [String]
        switch kind {
        case .haproxy: arguments = ["-db", "-f", mainPath, "-f", sitePath]
        case .apache: arguments = ["-f", mainPath, "-DFOREGROUND"]
        case .lighttpd: arguments = ["-D", "-f", mainPath]
        }
        let process = try ManagedProcess(
            URL(fileURLWithPath: kind.executable), arguments, environment: [:], logDirectory: directory, name: kind.rawValue,
            clearsSignalMask: true)
        guard Harness.waitUntil({ RawHTTP.accepts(port: port) || !process.isRunning }), process.isRunning else {
            throw HarnessError("\(kind) did not start: \(process.stderr) \(Self.errorLog(kind, root: root))")
        }
        self.process = process
    }

    /// What each needs around the example to run alone: logs, pid and runtime files in `root`.
    private static func mainConfiguration(_ kind: Kind, root: String, port: UInt16, sitePath: String) -> String {
        switch kind {
        case .haproxy:
            // The example is the second -f file; only what a stock haproxy.cfg's global and
            // defaults sections would give it.
            return """
                global
                    maxconn 1024
                defaults
                    mode http
                    timeout connect 1s
                    timeout client 10s
                    timeout server 10s

                """
        case .apache:
            let modules = ["mpm_event", "authz_core", "authz_host", "proxy", "proxy_fcgi"]
            // As root, httpd's workers must switch to an unprivileged user (it refuses to serve
            // as root); the responder's socket is mode 0666 in the tests.
            let user = geteuid() == 0 ? "User www-data\nGroup www-data" : ""
            return """
                ServerRoot \(root)
                ServerName 127.0.0.1
                Listen 127.0.0.1:\(port)
                DefaultRuntimeDir \(root)
                PidFile \(root)/apache.pid
                ErrorLog \(root)/apache-error.log
                LogLevel warn
                Mutex posixsem
                \(user)
                \(modules.map { "LoadModule \($0)_module /usr/lib/apache2/modules/mod_\($0).so" }.joined(separator: "\n"))
                Include \(sitePath)
                """
        case .lighttpd:
            return """
                server.document-root = "\(root)"
                server.errorlog = "\(root)/lighttpd-error.log"
                server.bind = "127.0.0.1"
                server.port = \(port)
                include "\(sitePath)"
                """
        }
    }

    private static func errorLog(_ kind: Kind, root: String) -> String {
        let name: String
        switch kind {
        case .haproxy: return ""  // -db: haproxy logs its errors to stderr
        case .apache: name = "apache-error.log"
        case .lighttpd: name = "lighttpd-error.log"
        }
        return (try? String(contentsOfFile: "\(root)/\(name)", encoding: .utf8)) ?? ""
    }

    /// Its error log (HAProxy's is its stderr).
    var errorLog: String { process.stderr + Self.errorLog(kind, root: directory.path) }

    func stop() { process.stop() }
}
