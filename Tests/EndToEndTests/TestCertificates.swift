import Foundation

/// A throwaway PKI made with the `openssl` CLI at test time, in a temporary directory (no key is
/// ever committed): a test CA, a server certificate for 127.0.0.1 and localhost, one for another
/// host, an expired one, and a client certificate; all under the same CA. Made once per run.
final class TestCertificates: @unchecked Sendable {
    let directory: URL

    /// A certificate and its key, as paths.
    struct Pair {
        let certificate: String
        let key: String
    }

    var ca: String { path("ca.pem") }
    var server: Pair { pair("server") }
    var wrongHost: Pair { pair("wronghost") }
    var expired: Pair { pair("expired") }
    var client: Pair { pair("client") }
    /// A second CA that signed nothing here: trusting only it distrusts every test certificate.
    var otherCA: String { path("other-ca.pem") }

    /// Made on first use; the directory stays until the test process ends (it holds only test keys).
    static let shared: Result<TestCertificates, Error> = Result { try TestCertificates() }

    static func make() throws -> TestCertificates { try shared.get() }

    private init() throws {
        directory = try Harness.temporaryDirectory()
        try Data(Self.configuration.utf8).write(to: directory.appendingPathComponent("ca.cnf"))
        try Data().write(to: directory.appendingPathComponent("index.txt"))
        try Data("01\n".utf8).write(to: directory.appendingPathComponent("serial"))
        try makeCA("ca", subject: "/CN=crocante test CA")
        try makeCA("other-ca", subject: "/CN=crocante other CA")
        for (name, extensions, host) in [
            ("server", "server", "localhost"), ("wronghost", "wronghost", "wrong.example"),
            ("expired", "server", "localhost"), ("client", "client", "crocante-logout test client"),
        ] {
            try openssl(["req", "-new", "-config", "ca.cnf", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                         "-nodes", "-keyout", "\(name).key", "-out", "\(name).csr", "-subj", "/CN=\(host)"])
            // `openssl ca` takes explicit dates, so an expired certificate needs no fake clock.
            let dates = name == "expired" ? ["-startdate", "20200101000000Z", "-enddate", "20200102000000Z"] : ["-days", "3"]
            try openssl(["ca", "-batch", "-notext", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key",
                         "-extfile", "ca.cnf", "-extensions", extensions] + dates + ["-in", "\(name).csr", "-out", "\(name).pem"])
        }
        // The keys' bytes must never be logged: the ledger checks every responder's output for them.
        for name in ["client", "server", "ca"] {
            let pem = try String(contentsOfFile: path("\(name).key"), encoding: .utf8)
            SecretLedger.record(pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.map(String.init))
        }
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    func pair(_ name: String) -> Pair { Pair(certificate: path("\(name).pem"), key: path("\(name).key")) }

    private func makeCA(_ name: String, subject: String) throws {
        try openssl(["req", "-x509", "-config", "ca.cnf", "-extensions", "v3_ca", "-newkey", "ec", "-pkeyopt",
                     "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "\(name).key", "-out", "\(name).pem", "-days", "3",
                     "-subj", subject])
    }

    private func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw HarnessError("openssl \(arguments.prefix(2)): \(text)") }
    }

    /// A minimal CA: `openssl ca`'s database in the directory, and the extensions of each kind.
    private static let configuration = """
        [ca]
        default_ca = test
        [test]
        dir = .
        database = index.txt
        new_certs_dir = .
        serial = serial
        default_md = sha256
        policy = anything
        unique_subject = no
        [anything]
        commonName = supplied
        [req]
        distinguished_name = dn
        prompt = no
        [dn]
        CN = unused
        [v3_ca]
        basicConstraints = critical, CA:TRUE
        keyUsage = critical, keyCertSign, cRLSign
        subjectKeyIdentifier = hash
        [server]
        basicConstraints = critical, CA:FALSE
        keyUsage = critical, digitalSignature
        extendedKeyUsage = serverAuth
        subjectAltName = IP:127.0.0.1, DNS:localhost
        [wronghost]
        basicConstraints = critical, CA:FALSE
        keyUsage = critical, digitalSignature
        extendedKeyUsage = serverAuth
        subjectAltName = DNS:wrong.example, IP:192.0.2.1
        [client]
        basicConstraints = critical, CA:FALSE
        keyUsage = critical, digitalSignature
        extendedKeyUsage = clientAuth

        """
}
