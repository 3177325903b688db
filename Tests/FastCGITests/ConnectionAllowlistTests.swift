import FastCGI
import Testing

@Suite struct ConnectionAllowlistTests {
    typealias Network = ConnectionAllowlist.Network

    @Test(arguments: [
        ("127.0.0.1", "127.0.0.1/32"),
        ("10.1.2.3/8", "10.0.0.0/8"),
        ("192.168.1.0/24", "192.168.1.0/24"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("::1", "::1/128"),
        ("fd00:1::5/16", "fd00::/16"),
    ])
    func parses(text: String, canonical: String) throws {
        #expect(try #require(Network(parsing: text)).description == canonical)
    }

    @Test(arguments: ["", "localhost", "10.0.0.0/33", "::1/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0/8", "1.2.3.4/8/8", "[::1]"])
    func refuses(text: String) {
        #expect(Network(parsing: text) == nil)
    }

    static let v4 = [UInt8]([10, 1, 2, 3])
    static let mapped = [UInt8]([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 10, 1, 2, 3])
    static let loopback6 = [UInt8](repeating: 0, count: 15) + [1]

    @Test(arguments: [
        ("10.0.0.0/8", v4, true),
        ("10.0.0.0/8", mapped, true),
        ("11.0.0.0/8", v4, false),
        ("10.1.2.3", v4, true),
        ("10.1.2.4", v4, false),
        ("10.1.2.0/31", v4, false),
        ("::1", loopback6, true),
        ("::1", v4, false),
        ("127.0.0.1", loopback6, false),
    ])
    func matches(network: String, peer: [UInt8], expected: Bool) throws {
        #expect(try #require(Network(parsing: network)).contains(peer) == expected)
    }

    @Test func listsParseAndAnEmptyListAllowsEveryone() throws {
        let clients = try #require(ConnectionAllowlist.clients(parsing: " 127.0.0.1 , 10.0.0.0/8,::1"))
        #expect(clients.count == 3)
        #expect(ConnectionAllowlist.clients(parsing: "127.0.0.1, nope") == nil)
        #expect(ConnectionAllowlist.clients(parsing: " , ") == nil)
        let list = ConnectionAllowlist(clients: clients)
        #expect(list.allows(address: Self.v4))
        #expect(!list.allows(address: [192, 0, 2, 1]))
        #expect(list.allows(uid: 1000, gid: 1000), "no peer list: every unix peer")
        #expect(ConnectionAllowlist.everyone.allows(address: [192, 0, 2, 1]))
        #expect(!ConnectionAllowlist.everyone.isRestricted)
    }

    @Test func peersParseAndMatchByUidOrGid() throws {
        let peers = try #require(ConnectionAllowlist.peers(parsing: "uid:33, gid:33,uid:0"))
        #expect(peers.users == [33, 0] && peers.groups == [33])
        let list = ConnectionAllowlist(users: peers.users, groups: peers.groups)
        #expect(list.allows(uid: 33, gid: 1))
        #expect(list.allows(uid: 1000, gid: 33))
        #expect(!list.allows(uid: 1000, gid: 1000))
        for bad in ["www-data", "uid:", "uid:-1", "user:33", "gid:99999999999", ""] {
            #expect(ConnectionAllowlist.peers(parsing: bad) == nil, "\(bad)")
        }
    }
}
