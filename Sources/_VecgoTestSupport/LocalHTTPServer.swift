// A small HTTP/1.1 server on 127.0.0.1 for tests: one thread polls every connection, so it
// holds hundreds of requests open at once without a thread each.
import Foundation
import Stores
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A small HTTP/1.1 server on 127.0.0.1 for tests of HTTP clients and credential sources: one
/// request per connection, answered by a handler, every request kept for inspection.
///
/// One thread serves every connection with `poll`, so many requests can be open at once (the
/// process's thread count does not grow with them) and a slow answer (``Response/delaySeconds``)
/// delays only its own connection. The handler runs on that thread, one request at a time.
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
        /// Send only this many bytes of the answer (status line and headers included), then
        /// keep the connection open without sending more (a transfer that stalls); nil sends
        /// it all.
        public var stallAfterBytes: Int?
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
    private let shared: Shared

    /// State the serving thread and the owner share.
    private final class Shared: Sendable {
        let received = Mutex<[Request]>([])
        let stopped = Atomic<Bool>(false)
        let open = Atomic<Int>(0)
        let peakOpen = Atomic<Int>(0)
    }

    /// Starts listening on a free port; `handler` answers each request.
    ///
    /// - Parameter holdUntil: answers wait until this many requests are waiting at once (or
    ///   `holdLimitSeconds` passed), then all go out: a test can see that many requests in
    ///   flight together without depending on timing. 0 (the default) answers at once.
    public init(holdUntil: Int = 0, holdLimitSeconds: Double = 60,
                _ handler: @escaping @Sendable (Request) -> Response) throws {
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
        guard bound == 0, listen(s, 1024) == 0 else {
            close(s)
            throw MissingServer(message: "cannot listen on 127.0.0.1")
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(s, $0, &len) }
        }
        _ = fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK)
        port = Int(UInt16(bigEndian: addr.sin_port))
        let shared = Shared()
        self.shared = shared
        let thread = Thread {
            var loop = Loop(listener: s, shared: shared, handler: handler, holdUntil: holdUntil,
                            holdDeadline: Date().addingTimeInterval(holdLimitSeconds))
            loop.run()
        }
        thread.start()
    }

    deinit { shared.stopped.store(true, ordering: .releasing) }  // the thread closes its sockets

    /// `http://127.0.0.1:<port>`.
    public var url: String { "http://127.0.0.1:\(port)" }

    /// Every request so far.
    public var requests: [Request] { shared.received.withLock { $0 } }

    /// The most connections that were open at once.
    public var peakOpenConnections: Int { shared.peakOpen.load(ordering: .relaxed) }

    /// One client connection: bytes read so far, then the answer being written.
    private struct Connection {
        var fd: Int32
        var input: [UInt8] = []
        /// The whole request, once it arrived.
        var request: Request?
        var output: [UInt8]?
        var written = 0
        /// The request waits for the hold to open (``LocalHTTPServer/init(holdUntil:holdLimitSeconds:_:)``).
        var held = false
        /// When the answer may go out (a slow server).
        var due = Date.distantPast
        var response: Response?
        /// How much of ``output`` may be sent (less than all of it for a stalling answer).
        var limit = Int.max
        /// All it may send is sent: wait, reading only to notice the client leaving.
        var stalled: Bool { output != nil && written >= min(limit, output!.count) && written < output!.count }
    }

    /// The serving loop, on its own thread.
    private struct Loop {
        let listener: Int32
        let shared: Shared
        let handler: @Sendable (Request) -> Response
        let holdUntil: Int
        let holdDeadline: Date
        var released = false
        var connections: [Connection] = []

        init(listener: Int32, shared: Shared, handler: @escaping @Sendable (Request) -> Response, holdUntil: Int, holdDeadline: Date) {
            self.listener = listener
            self.shared = shared
            self.handler = handler
            self.holdUntil = holdUntil
            self.holdDeadline = holdDeadline
            released = holdUntil <= 0
        }

        mutating func run() {
            defer {
                for c in connections { close(c.fd) }
                close(listener)
            }
            while !shared.stopped.load(ordering: .acquiring) {
                var fds = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
                for c in connections {
                    fds.append(pollfd(fd: c.fd, events: Int16(c.output == nil || c.stalled ? POLLIN : POLLOUT), revents: 0))
                }
                var wait = 50  // ms: how soon a stop or a due answer is noticed
                let now = Date()
                for c in connections where c.response != nil && c.output == nil {
                    wait = min(wait, max(0, Int(c.due.timeIntervalSince(now) * 1000)))
                }
                _ = poll(&fds, nfds_t(fds.count), Int32(wait))
                if fds[0].revents != 0 { acceptAll() }
                for (i, pfd) in fds.dropFirst().enumerated() where pfd.revents != 0 {
                    if connections[i].stalled { closeIfLeft(i) } else if connections[i].output == nil { readSome(i) } else { writeSome(i) }
                }
                let held = connections.filter { $0.held && $0.fd >= 0 }.count
                if !released, held >= holdUntil || Date() >= holdDeadline { released = true }
                for i in connections.indices where connections[i].held && connections[i].fd >= 0 && released {
                    connections[i].held = false
                    answer(i)
                }
                for i in connections.indices {
                    if let r = connections[i].response, connections[i].output == nil, Date() >= connections[i].due {
                        connections[i].output = r.status == 0 ? [] : Self.encode(r)
                        connections[i].limit = r.stallAfterBytes ?? Int.max
                        if r.status != 0 { writeSome(i) }
                    }
                }
                let before = connections.count
                connections.removeAll { c in
                    let done = c.fd < 0 || (c.output != nil && c.written >= c.output!.count)
                    if done && c.fd >= 0 { close(c.fd) }
                    return done
                }
                if connections.count != before { shared.open.store(connections.count, ordering: .relaxed) }
            }
        }

        private mutating func acceptAll() {
            while true {
                let c = accept(listener, nil, nil)
                if c < 0 { return }
                _ = fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK)
                connections.append(Connection(fd: c))
                shared.open.store(connections.count, ordering: .relaxed)
                if connections.count > shared.peakOpen.load(ordering: .relaxed) {
                    shared.peakOpen.store(connections.count, ordering: .relaxed)
                }
            }
        }

        private mutating func readSome(_ i: Int) {
            var buffer = [UInt8](repeating: 0, count: 65_536)
            let n = buffer.withUnsafeMutableBytes { recv(connections[i].fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return }
            if n <= 0 {  // closed before a whole request arrived
                close(connections[i].fd)
                connections[i].fd = -1
                return
            }
            connections[i].input += buffer[0..<n]
            guard connections[i].request == nil, let request = Self.parse(connections[i].input) else { return }
            shared.received.withLock { $0.append(request) }
            connections[i].request = request
            connections[i].held = true  // answered once the hold opens (at once when there is none)
        }

        /// Runs the handler for connection `i`'s request and schedules its answer.
        private mutating func answer(_ i: Int) {
            guard let request = connections[i].request else { return }
            let r = handler(request)
            connections[i].response = r
            connections[i].due = Date().addingTimeInterval(r.delaySeconds)
        }

        /// A stalled connection became readable: close it when the client has gone.
        private mutating func closeIfLeft(_ i: Int) {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = buffer.withUnsafeMutableBytes { recv(connections[i].fd, $0.baseAddress, $0.count, 0) }
            if n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                close(connections[i].fd)
                connections[i].fd = -1
            }
        }

        private mutating func writeSome(_ i: Int) {
            guard let out = connections[i].output, connections[i].written < min(out.count, connections[i].limit) else { return }
            let done = connections[i].written
            let end = min(out.count, connections[i].limit)
            let n = out.withUnsafeBytes { send(connections[i].fd, $0.baseAddress! + done, end - done, Int32(MSG_NOSIGNAL)) }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return }
            if n <= 0 {
                close(connections[i].fd)
                connections[i].fd = -1
                return
            }
            connections[i].written += n
        }

        static func encode(_ r: Response) -> [UInt8] {
            let extra = r.headers.map { "\($0.0): \($0.1)\r\n" }.joined()
            let head = "HTTP/1.1 \(r.status) X\r\nContent-Length: \(r.body.count)\r\n\(extra)Connection: close\r\n\r\n"
            return Array(head.utf8) + r.body
        }

        /// A whole request in `data`, or nil while more is to come.
        static func parse(_ data: [UInt8]) -> Request? {
            guard let h = find(data, Array("\r\n\r\n".utf8)) else { return nil }
            let lines = String(decoding: data[0..<h], as: UTF8.self).split(separator: "\r\n")
            var headers: [String: String] = [:]
            for line in lines.dropFirst() {
                let parts = line.split(separator: ":", maxSplits: 1)
                if parts.count == 2 { headers[parts[0].lowercased()] = parts[1].trimmingCharacters(in: .whitespaces) }
            }
            let contentLength = Int(headers["content-length"] ?? "0") ?? 0
            guard data.count >= h + 4 + contentLength else { return nil }
            let first = lines.first?.split(separator: " ") ?? []
            guard first.count >= 2 else { return nil }
            return Request(method: String(first[0]), path: String(first[1]), headers: headers,
                           body: Array(data[(h + 4)..<(h + 4 + contentLength)]))
        }

        private static func find(_ haystack: [UInt8], _ needle: [UInt8]) -> Int? {
            guard haystack.count >= needle.count else { return nil }
            for i in 0...(haystack.count - needle.count) where haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
            return nil
        }
    }
}
