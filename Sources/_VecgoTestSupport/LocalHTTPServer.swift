import Foundation
import Stores
#if canImport(Glibc)
import Glibc
#endif

/// A small HTTP/1.1 server on 127.0.0.1 for tests of HTTP credential sources: one request per
/// connection, answered by a handler, every request kept for inspection.
public final class LocalHTTPServer: Sendable {
    /// A request as received.
    public struct Request: Sendable {
        public var method: String
        public var path: String
        /// Header names lower-cased.
        public var headers: [String: String]
        public var body: [UInt8]
    }

    /// An answer.
    public struct Response: Sendable {
        public var status: Int
        public var body: [UInt8]
        public var headers: [(String, String)]
        /// Wait this long before answering (a slow server).
        public var delaySeconds: Double = 0
        public init(_ status: Int, _ body: String, headers: [(String, String)] = []) {
            self.status = status
            self.body = Array(body.utf8)
            self.headers = headers
        }

        /// Close the connection without answering (a connection reset).
        public static let dropConnection = Response(0, "")
    }

    /// The port it listens on.
    public let port: Int
    private let fd: Int32
    private let received = Locked<[Request]>([])

    /// Starts listening on a free port; `handler` answers each request.
    public init(_ handler: @escaping @Sendable (Request) -> Response) throws {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard s >= 0 else { throw MissingServer(message: "socket() failed") }
        var one: Int32 = 1
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(s, 16) == 0 else {
            close(s)
            throw MissingServer(message: "cannot listen on 127.0.0.1")
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(s, $0, &len) }
        }
        port = Int(UInt16(bigEndian: addr.sin_port))
        fd = s
        let thread = Thread { [received] in
            while true {
                let c = accept(s, nil, nil)
                if c < 0 { return }  // closed
                if let request = Self.readRequest(c) {
                    received.withLock { $0.append(request) }
                    Self.write(c, handler(request))
                }
                close(c)
            }
        }
        thread.start()
    }

    deinit {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    /// `http://127.0.0.1:<port>`.
    public var url: String { "http://127.0.0.1:\(port)" }

    /// Every request so far.
    public var requests: [Request] { received.withLock { $0 } }

    private static func readRequest(_ c: Int32) -> Request? {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var headerEnd: Int?
        var contentLength = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return nil }
            data += buffer[0..<n]
            if headerEnd == nil, let r = find(data, Array("\r\n\r\n".utf8)) {
                headerEnd = r
                let head = String(decoding: data[0..<r], as: UTF8.self)
                for line in head.split(separator: "\r\n").dropFirst() {
                    let parts = line.split(separator: ":", maxSplits: 1)
                    if parts.count == 2, parts[0].lowercased() == "content-length" {
                        contentLength = Int(parts[1].trimmingCharacters(in: .whitespaces)) ?? 0
                    }
                }
            }
            if let h = headerEnd, data.count >= h + 4 + contentLength { break }
        }
        let h = headerEnd!
        let lines = String(decoding: data[0..<h], as: UTF8.self).split(separator: "\r\n")
        let first = lines.first?.split(separator: " ") ?? []
        guard first.count >= 2 else { return nil }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { headers[parts[0].lowercased()] = parts[1].trimmingCharacters(in: .whitespaces) }
        }
        return Request(method: String(first[0]), path: String(first[1]), headers: headers,
                       body: Array(data[(h + 4)..<(h + 4 + contentLength)]))
    }

    private static func write(_ c: Int32, _ r: Response) {
        if r.delaySeconds > 0 { Thread.sleep(forTimeInterval: r.delaySeconds) }
        guard r.status != 0 else { return }  // dropConnection
        let extra = r.headers.map { "\($0.0): \($0.1)\r\n" }.joined()
        let head = "HTTP/1.1 \(r.status) X\r\nContent-Length: \(r.body.count)\r\n\(extra)Connection: close\r\n\r\n"
        let bytes = Array(head.utf8) + r.body
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { send(c, $0.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            done += n
        }
    }

    private static func find(_ haystack: [UInt8], _ needle: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
        return nil
    }
}
