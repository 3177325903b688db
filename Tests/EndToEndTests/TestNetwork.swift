import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Test hosts made of network namespaces: one namespace holding a bridge (the "switch"), and one
/// namespace per host, joined to the bridge by a veth pair whose host end is `eth0` with a private
/// address. Every link is made inside the test's own namespaces, so the machine's interfaces are
/// never touched; ``remove()`` (also run at deinit) deletes every namespace it made, and with
/// them their links.
final class TestNetwork {
    /// One test host.
    struct Host {
        let name: String
        let namespace: String
        let address: String
    }

    /// `crl-<pid>-<random>`: unique per run, and the pid says whose namespaces they are.
    let prefix: String
    let switchNamespace: String
    private(set) var hosts: [String: Host] = [:]
    private var namespaces: [String] = []

    /// Why these tests cannot run here, or nil when they can: root and a working `ip netns add`.
    static let unavailableReason: String? = {
        guard geteuid() == 0 else { return "needs root to make network namespaces" }
        guard FileManager.default.isExecutableFile(atPath: ip) else { return "needs \(ip) (iproute2)" }
        let probe = "crl-\(getpid())-probe"
        guard let added = try? Harness.run(ip, ["netns", "add", probe]), added.status == 0 else {
            return "`ip netns add` is refused here"
        }
        _ = try? Harness.run(ip, ["netns", "del", probe])
        return nil
    }()

    static var isAvailable: Bool { unavailableReason == nil }

    static let ip = "/usr/sbin/ip"

    /// Makes the switch and one namespace per host, each with `address`/`prefixLength` on `eth0`
    /// and its loopback up. Namespaces left by an earlier run whose process is gone are deleted first.
    init(hosts: [(name: String, address: String)], prefixLength: Int = 24) throws {
        prefix = "crl-\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
        switchNamespace = "\(prefix)-switch"
        Self.removeStale()
        do {
            try addNamespace(switchNamespace)
            try Self.ip(["-n", switchNamespace, "link", "add", "br0", "type", "bridge"])
            try Self.ip(["-n", switchNamespace, "link", "set", "br0", "up"])
            for (name, address) in hosts {
                let namespace = "\(prefix)-\(name)"
                try addNamespace(namespace)
                // Made inside the switch with its peer created straight in the host's namespace; the
                // port is named `port-<host>` (a bare "a" would read as `ip link add address`).
                let port = "port-\(name)"
                try Self.ip(["-n", switchNamespace, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", namespace])
                try Self.ip(["-n", switchNamespace, "link", "set", port, "master", "br0", "up"])
                try Self.ip(["-n", namespace, "addr", "add", "\(address)/\(prefixLength)", "dev", "eth0"])
                try Self.ip(["-n", namespace, "link", "set", "eth0", "up"])
                try Self.ip(["-n", namespace, "link", "set", "lo", "up"])
                self.hosts[name] = Host(name: name, namespace: namespace, address: address)
            }
        } catch {
            remove()
            throw error
        }
    }

    func host(_ name: String) -> Host { hosts[name]! }

    /// The command prefix that runs a program inside `host`'s namespace; `ip netns exec` execs it,
    /// so the pid is the program's own.
    func launcher(_ host: String) -> [String] { [Self.ip, "netns", "exec", self.host(host).namespace] }

    /// Takes `host`'s link down or up, as pulling its cable would (from inside the host).
    func setLink(_ host: String, up: Bool) throws {
        try Self.ip(["-n", self.host(host).namespace, "link", "set", "eth0", up ? "up" : "down"])
    }

    /// Makes `address` unreachable from `host` (a blackhole route: connecting fails at once), or
    /// reachable again.
    func setBlackhole(from host: String, to address: String, _ on: Bool) throws {
        try Self.ip(["-n", self.host(host).namespace, "route", on ? "add" : "del", "blackhole", "\(address)/32"])
    }

    /// Deletes every namespace this network made (their veth pairs and bridge go with them),
    /// after killing any process still inside one: the stacks stop theirs by pid first, so this
    /// only catches one whose stop failed.
    func remove() {
        for namespace in namespaces.reversed() { Self.delete(namespace) }
        namespaces = []
    }

    /// SIGKILLs the processes `ip netns pids` finds in `namespace`, then deletes it.
    private static func delete(_ namespace: String) {
        if let pids = try? Harness.run(ip, ["netns", "pids", namespace]) {
            for pid in pids.stdout.split(separator: "\n").compactMap({ pid_t($0) }) { kill(pid, SIGKILL) }
        }
        _ = try? Harness.run(ip, ["netns", "del", namespace])
    }

    deinit { remove() }

    private func addNamespace(_ name: String) throws {
        try Self.ip(["netns", "add", name])
        namespaces.append(name)
    }

    private static func ip(_ arguments: [String]) throws {
        let result = try Harness.run(ip, arguments)
        guard result.status == 0 else { throw HarnessError("ip \(arguments.joined(separator: " ")): \(result.stderr)") }
    }

    /// Deletes `crl-<pid>-…` namespaces of test processes that no longer exist (a run killed
    /// hard), with what that run left running inside them.
    private static func removeStale() {
        guard let listing = try? Harness.run(ip, ["netns", "list"]) else { return }
        for line in listing.stdout.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            let fields = name.split(separator: "-")
            guard fields.count >= 3, fields[0] == "crl", let pid = pid_t(fields[1]), pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { delete(name) }
        }
    }
}
