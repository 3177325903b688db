import Foundation

extension StandInBackend {
    /// One request as the stand-in recorded it.
    struct Request: Decodable {
        let method: String
        let uri: String
        /// Name and value pairs, in the order received.
        let headers: [[String]]
        let body: String
        /// Milliseconds since the epoch when the stand-in had the whole request.
        let at: Double?
        /// The `--name` of the stand-in that received it.
        let server: String?
        /// The client's IP address (the responder host that sent it).
        let peer: String?

        var headerNames: [String] { headers.map { $0[0].lowercased() } }

        /// Every value of the header `name`, in order.
        func values(_ name: String) -> [String] { headers.filter { $0[0].lowercased() == name.lowercased() }.map { $0[1] } }

        func header(_ name: String) -> String? { values(name).first }

        /// The token of the `Authorization: Bearer …` header.
        var bearerToken: String? { header("Authorization").map { String($0.dropFirst("Bearer ".count)) } }
    }

    /// Everything received so far, in the order it arrived.
    static func recorded(in file: URL) -> [Request] {
        guard let text = try? String(contentsOf: file, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(Request.self, from: Data($0.utf8)) }
    }
}
