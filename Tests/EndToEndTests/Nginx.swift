import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// nginx in the foreground with a site inside a minimal main configuration, everything under
/// one directory, accepting on a loopback port.
final class Nginx {
    let process: ManagedProcess
    let directory: URL

    /// nginx.conf.example with its upstream pointed at `fastcgiAddress`, listening on
    /// 127.0.0.1:`port`, and `replacements` made after those; each must still match, so a change
    /// to the example cannot silently make a test vacuous.
    static func site(fastcgiAddress: String, port: UInt16, replacements: [(String, String)] = []) throws -> String {
        try site([("unix:/run/crocante-logout/fcgi.sock", fastcgiAddress), ("listen 80;", "listen 127.0.0.1:\(port);")] + replacements)
    }

    /// nginx.conf.example with `replacements` made in order; each must match.
    static func site(_ replacements: [(String, String)]) throws -> String {
        var site = try String(contentsOf: Harness.packageRoot.appendingPathComponent("nginx.conf.example"), encoding: .utf8)
        for (from, to) in replacements {
            guard site.contains(from) else { throw HarnessError("nginx.conf.example no longer contains \(from)") }
            site = site.replacingOccurrences(of: from, with: to)
        }
        return site
    }

    /// Starts nginx with `site` and waits until it accepts on `port`.
    convenience init(site: String, port: UInt16, directory: URL) throws {
        try self.init(site: site, directory: directory) { RawHTTP.accepts(port: port) }
    }

    /// Starts nginx with `site`, through `launcher` (a command that execs its arguments, such as
    /// `ip netns exec NAME`, so the pid stays nginx's), and waits until `accepts` holds.
    init(site: String, directory: URL, launcher: [String] = [], accepts: () -> Bool) throws {
        self.directory = directory
        let root = directory.path
        let main = """
            \(geteuid() == 0 ? "user root;" : "")
            worker_processes 1;
            error_log \(root)/nginx-error.log info;
            pid \(root)/nginx.pid;
            events { worker_connections 1024; }
            http {
                access_log off;
                client_body_temp_path \(root)/body;
                fastcgi_temp_path \(root)/fastcgi;
                proxy_temp_path \(root)/proxy;
                uwsgi_temp_path \(root)/uwsgi;
                scgi_temp_path \(root)/scgi;
                include \(root)/site.conf;
            }
            """
        try site.write(to: directory.appendingPathComponent("site.conf"), atomically: true, encoding: .utf8)
        try main.write(to: directory.appendingPathComponent("nginx.conf"), atomically: true, encoding: .utf8)
        if !FileManager.default.fileExists(atPath: "\(root)/fastcgi_params") {
            try FileManager.default.copyItem(atPath: "/etc/nginx/fastcgi_params", toPath: "\(root)/fastcgi_params")
        }
        let command = launcher + ["/usr/sbin/nginx", "-p", root, "-c", "\(root)/nginx.conf", "-g", "daemon off;"]
        let process = try ManagedProcess(
            URL(fileURLWithPath: command[0]), Array(command.dropFirst()), environment: [:], logDirectory: directory, name: "nginx")
        guard Harness.waitUntil({ accepts() || !process.isRunning }), process.isRunning else {
            throw HarnessError("nginx did not start: \(process.stderr)")
        }
        self.process = process
    }

    var errorLog: String {
        (try? String(contentsOf: directory.appendingPathComponent("nginx-error.log"), encoding: .utf8)) ?? ""
    }

    func stop() { process.stop() }
}
