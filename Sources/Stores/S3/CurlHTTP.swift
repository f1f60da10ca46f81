// HTTP over libcurl: typed curl codes, requests and responses, and the one event loop that
// drives every transfer through the multi interface.
internal import CCurl
import Foundation
import Synchronization

/// A libcurl result code, typed (never matched by message text).
struct CurlCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    var rawValue: Int
    init(rawValue: Int) { self.rawValue = rawValue }
    init(_ c: CURLcode) { rawValue = Int(c.rawValue) }

    static let ok = CurlCode(CURLE_OK)
    static let unsupportedProtocol = CurlCode(CURLE_UNSUPPORTED_PROTOCOL)
    static let urlMalformat = CurlCode(CURLE_URL_MALFORMAT)
    static let abortedByCallback = CurlCode(CURLE_ABORTED_BY_CALLBACK)
    static let peerFailedVerification = CurlCode(CURLE_PEER_FAILED_VERIFICATION)
    static let sslCACert = CurlCode(CURLE_SSL_CACERT_BADFILE)
    /// A time limit ran out: connecting, the whole transfer, or the stall timeout.
    static let timedOut = CurlCode(CURLE_OPERATION_TIMEDOUT)

    /// Whether a new attempt may succeed (connection trouble, timeouts, resets).
    var isTransient: Bool {
        ![Self.ok, .unsupportedProtocol, .urlMalformat, .abortedByCallback, .peerFailedVerification, .sslCACert].contains(self)
    }

    var description: String { "curl error \(rawValue): \(String(cString: curl_easy_strerror(CURLcode(UInt32(rawValue)))))" }
}

/// One HTTP request.
struct HTTPRequest: Sendable {
    var method: String
    var url: String
    var headers: [(String, String)]
    var body: [UInt8] = []
    /// This attempt's whole-transfer time limit in milliseconds, instead of the client's
    /// ``CurlHTTPClient/Settings/requestTimeoutMillis`` (the retry loop shortens it to what is
    /// left of the retry time); nil for the client's.
    var timeoutMillis: Int? = nil
}

/// One HTTP response.
struct HTTPResponse: Sendable {
    var status: Int
    var headers: [String: String]  // lower-cased names
    var body: [UInt8]
}

/// An easy handle with one owner; freed in deinit. Touched only by the event loop's thread
/// (the loop hands it to one transfer at a time), hence unchecked Sendable.
final class CurlEasy: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    init?() {
        guard let h = curl_easy_init() else { return nil }
        handle = h
    }
    deinit { curl_easy_cleanup(handle) }
}

/// A multi handle with one owner; freed in deinit. Used only on the event loop's thread,
/// except ``wakeup()``, which libcurl allows from any thread.
final class CurlMulti: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    init?() {
        guard let m = curl_multi_init() else { return nil }
        handle = m
    }
    deinit { curl_multi_cleanup(handle) }
    /// Makes a `curl_multi_poll` in progress return at once.
    func wakeup() { _ = curl_multi_wakeup(handle) }
}

/// One request on its way: what the curl callbacks write into, the request's headers and body
/// kept alive for libcurl, and the caller's continuation, resumed exactly once.
///
/// The response fields and the C resources are touched only by the event loop's thread;
/// `cancelled` and the continuation are thread-safe.
final class CurlTransfer: @unchecked Sendable {
    let request: HTTPRequest
    let settings: CurlHTTPClient.Settings
    var body: [UInt8] = []
    var headers: [String: String] = [:]
    /// Set by the task's cancellation handler; the loop then drops the transfer.
    let cancelled = Atomic<Bool>(false)
    private let continuation = Mutex<CheckedContinuation<(HTTPResponse?, CurlCode), Never>?>(nil)
    /// The easy handle while the transfer runs (loop thread only).
    var easy: CurlEasy?
    /// libcurl keeps pointers to these until the transfer ends (loop thread only).
    var headerList: UnsafeMutablePointer<curl_slist>?
    var requestBody: UnsafeMutableRawBufferPointer?

    init(_ request: HTTPRequest, _ settings: CurlHTTPClient.Settings) {
        self.request = request
        self.settings = settings
    }

    deinit {
        curl_slist_free_all(headerList)
        requestBody?.deallocate()
    }

    func setContinuation(_ c: CheckedContinuation<(HTTPResponse?, CurlCode), Never>) {
        continuation.withLock { $0 = c }
    }

    /// Resumes the caller with `result`; later calls do nothing.
    func finish(_ result: (HTTPResponse?, CurlCode)) {
        let c = continuation.withLock { c -> CheckedContinuation<(HTTPResponse?, CurlCode), Never>? in
            defer { c = nil }
            return c
        }
        c?.resume(returning: result)
    }
}

/// The one thread that drives every transfer of the process through libcurl's multi interface:
/// it waits in `curl_multi_poll` on all their sockets at once, so many parallel transfers need
/// no thread each. The multi handle's connection cache keeps connections for reuse.
///
/// Other threads hand it work through a mutex-protected queue and `curl_multi_wakeup`; only
/// this thread touches the multi handle and the easy handles.
final class CurlEventLoop: Sendable {
    /// The process's loop, started on first use.
    static let shared = CurlEventLoop()

    /// Idle connections kept for reuse (all hosts together).
    static let maxCachedConnections = 256

    private enum Command {
        case add(CurlTransfer)
        case cancel(CurlTransfer)
    }

    private let multi: CurlMulti?
    private let inbox = Locked<[Command]>([])

    private init() {
        _ = CurlHTTPClient.globalInit
        multi = CurlMulti()
        guard let multi else { return }
        _ = vecgo_curl_multi_setopt_long(multi.handle, CURLMOPT_MAXCONNECTS, Self.maxCachedConnections)
        let thread = Thread { [inbox] in
            var loop = Loop(multi: multi, inbox: inbox)
            loop.run()
        }
        thread.name = "vecgo.curl"
        thread.start()
    }

    /// Starts `transfer`; its continuation is resumed when it ends, fails or is cancelled.
    func submit(_ transfer: CurlTransfer) {
        guard let multi else { return transfer.finish((nil, CurlCode(CURLE_FAILED_INIT))) }
        inbox.withLock { $0.append(.add(transfer)) }
        multi.wakeup()
    }

    /// Stops `transfer` promptly: the loop removes it and resumes its caller with
    /// ``CurlCode/abortedByCallback``.
    func cancel(_ transfer: CurlTransfer) {
        transfer.cancelled.store(true, ordering: .sequentiallyConsistent)
        inbox.withLock { $0.append(.cancel(transfer)) }
        multi?.wakeup()
    }

    /// The loop's own state, on its thread only.
    private struct Loop {
        let multi: CurlMulti
        let inbox: Locked<[Command]>
        /// Running transfers by easy handle.
        var running: [UnsafeMutableRawPointer: CurlTransfer] = [:]
        /// Easy handles of transfers that ended well (resetting one is cheaper than a new one).
        var spare: [CurlEasy] = []

        init(multi: CurlMulti, inbox: Locked<[Command]>) {
            self.multi = multi
            self.inbox = inbox
        }

        mutating func run() {
            while true {
                for command in inbox.withLock({ q -> [Command] in defer { q = [] }; return q }) {
                    switch command {
                    case .add(let t): start(t)
                    case .cancel(let t):
                        if let easy = t.easy, running[easy.handle] != nil { end(t, easy, CurlCode(CURLE_ABORTED_BY_CALLBACK)) }
                    }
                }
                var active: Int32 = 0
                _ = curl_multi_perform(multi.handle, &active)
                var left: Int32 = 0
                while let message = curl_multi_info_read(multi.handle, &left) {
                    guard message.pointee.msg == CURLMSG_DONE, let h = message.pointee.easy_handle,
                          let t = running[h], let easy = t.easy else { continue }
                    end(t, easy, CurlCode(message.pointee.data.result))
                }
                // Sleeps until a socket is ready, a curl timer is due, or a wakeup (new work).
                _ = curl_multi_poll(multi.handle, nil, 0, running.isEmpty ? 60_000 : 1000, nil)
            }
        }

        private mutating func start(_ t: CurlTransfer) {
            if t.cancelled.load(ordering: .sequentiallyConsistent) {
                return t.finish((nil, CurlCode(CURLE_ABORTED_BY_CALLBACK)))
            }
            guard let easy = spare.popLast() ?? CurlEasy() else { return t.finish((nil, CurlCode(CURLE_FAILED_INIT))) }
            configure(easy.handle, t)
            t.easy = easy
            guard curl_multi_add_handle(multi.handle, easy.handle) == CURLM_OK else {
                t.easy = nil
                return t.finish((nil, CurlCode(CURLE_FAILED_INIT)))
            }
            running[easy.handle] = t
        }

        /// Takes a transfer out of the multi handle and answers its caller.
        private mutating func end(_ t: CurlTransfer, _ easy: CurlEasy, _ code: CurlCode) {
            _ = curl_multi_remove_handle(multi.handle, easy.handle)
            running[easy.handle] = nil
            t.easy = nil
            guard code == .ok else { return t.finish((nil, code)) }  // a failed handle is dropped
            var status = 0
            _ = vecgo_curl_getinfo_long(easy.handle, CURLINFO_RESPONSE_CODE, &status)
            curl_easy_reset(easy.handle)
            spare.append(easy)
            t.finish((HTTPResponse(status: status, headers: t.headers, body: t.body), code))
        }

        private func configure(_ h: UnsafeMutableRawPointer, _ t: CurlTransfer) {
            let request = t.request
            let client = t.settings
            var list: UnsafeMutablePointer<curl_slist>?
            for (name, value) in request.headers { list = curl_slist_append(list, "\(name): \(value)") }
            // No implicit headers: no Expect: 100-continue round trip, no form content type.
            list = curl_slist_append(list, "Expect:")
            list = curl_slist_append(list, "Content-Type:")
            list = curl_slist_append(list, "Accept:")
            t.headerList = list
            let me = Unmanaged.passUnretained(t).toOpaque()  // `running` keeps it alive
            // libcurl copies string options; the header list and the body live in the transfer.
            _ = vecgo_curl_setopt_string(h, CURLOPT_URL, request.url)
            _ = vecgo_curl_setopt_long(h, CURLOPT_NOSIGNAL, 1)
            _ = vecgo_curl_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, client.connectTimeoutMillis)
            _ = vecgo_curl_setopt_long(h, CURLOPT_TIMEOUT_MS, request.timeoutMillis ?? client.requestTimeoutMillis)
            if client.stallTimeoutMillis > 0 {
                // Abort (curl error 28, retried as a timeout) when under 1 byte/s moves, either
                // way, for the stall time: libcurl checks once a second through the multi
                // handle's timers, waiting for an answer and uploading included.
                _ = vecgo_curl_setopt_long(h, CURLOPT_LOW_SPEED_LIMIT, 1)
                _ = vecgo_curl_setopt_long(h, CURLOPT_LOW_SPEED_TIME, client.stallTimeSeconds)
            }
            _ = vecgo_curl_setopt_long(h, CURLOPT_SSL_VERIFYPEER, 1)
            _ = vecgo_curl_setopt_long(h, CURLOPT_SSL_VERIFYHOST, 2)
            if let ca = client.caBundlePath { _ = vecgo_curl_setopt_string(h, CURLOPT_CAINFO, ca) }
            _ = vecgo_curl_setopt_slist(h, CURLOPT_HTTPHEADER, list)
            _ = vecgo_curl_setopt_pointer(h, CURLOPT_WRITEDATA, me)
            _ = vecgo_curl_setopt_data_cb(h, CURLOPT_WRITEFUNCTION, curlWrite)
            _ = vecgo_curl_setopt_pointer(h, CURLOPT_HEADERDATA, me)
            _ = vecgo_curl_setopt_data_cb(h, CURLOPT_HEADERFUNCTION, curlHeader)
            switch request.method {
            case "GET": _ = vecgo_curl_setopt_long(h, CURLOPT_HTTPGET, 1)
            case "HEAD": _ = vecgo_curl_setopt_long(h, CURLOPT_NOBODY, 1)
            default:
                _ = vecgo_curl_setopt_string(h, CURLOPT_CUSTOMREQUEST, request.method)
                if request.method == "PUT" || request.method == "POST" {
                    let body = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, request.body.count), alignment: 1)
                    request.body.withUnsafeBytes { if let base = $0.baseAddress { body.baseAddress!.copyMemory(from: base, byteCount: $0.count) } }
                    t.requestBody = body
                    _ = vecgo_curl_setopt_off(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.body.count))
                    _ = vecgo_curl_setopt_pointer(h, CURLOPT_POSTFIELDS, body.baseAddress!)
                }
            }
        }
    }
}

/// HTTP over libcurl: every transfer runs on the process's one ``CurlEventLoop`` (never on
/// Swift's cooperative pool, never a thread each); connections are reused; cancelling the task
/// stops its transfer at once.
final class CurlHTTPClient: Sendable {
    /// What a transfer is set up with.
    struct Settings: Sendable {
        var connectTimeoutMillis: Int
        var requestTimeoutMillis: Int
        /// A transfer during which no byte moves (either way) for this long is aborted with
        /// curl error 28; 0 turns the check off. libcurl counts whole seconds (see
        /// ``stallTimeSeconds``).
        var stallTimeoutMillis: Int = 0
        /// Certificates to trust instead of the system's (a private CA); verification stays on.
        var caBundlePath: String?

        /// The stall timeout in libcurl's unit, whole seconds (rounded up, at least 1).
        var stallTimeSeconds: Int { max(1, (stallTimeoutMillis + 999) / 1000) }
    }

    let settings: Settings
    var stallTimeoutMillis: Int { settings.stallTimeoutMillis }
    var connectTimeoutMillis: Int { settings.connectTimeoutMillis }
    var requestTimeoutMillis: Int { settings.requestTimeoutMillis }
    var caBundlePath: String? { settings.caBundlePath }

    static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    init(connectTimeoutMillis: Int, requestTimeoutMillis: Int, stallTimeoutMillis: Int = 0, caBundlePath: String? = nil) {
        _ = Self.globalInit
        settings = Settings(connectTimeoutMillis: connectTimeoutMillis, requestTimeoutMillis: requestTimeoutMillis,
                            stallTimeoutMillis: max(0, stallTimeoutMillis), caBundlePath: caBundlePath)
    }

    /// Performs one request.
    ///
    /// - Returns: the response when the transfer completed (any status), else nil and the curl
    ///   code that says why; ``CurlCode/abortedByCallback`` when the task was cancelled.
    /// - Throws: nothing today; the signature leaves room for transport errors.
    func perform(_ request: HTTPRequest) async throws -> (HTTPResponse?, CurlCode) {
        let transfer = CurlTransfer(request, settings)
        let loop = CurlEventLoop.shared
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<(HTTPResponse?, CurlCode), Never>) in
                transfer.setContinuation(c)
                loop.submit(transfer)
            }
        } onCancel: {
            loop.cancel(transfer)
        }
    }
}

private func curlWrite(_ ptr: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ user: UnsafeMutableRawPointer?) -> Int {
    let state = Unmanaged<CurlTransfer>.fromOpaque(user!).takeUnretainedValue()
    let n = size * count
    if let ptr, n > 0 {
        ptr.withMemoryRebound(to: UInt8.self, capacity: n) { state.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: n)) }
    }
    return n
}

private func curlHeader(_ ptr: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ user: UnsafeMutableRawPointer?) -> Int {
    let state = Unmanaged<CurlTransfer>.fromOpaque(user!).takeUnretainedValue()
    let n = size * count
    guard let ptr else { return n }
    let line = ptr.withMemoryRebound(to: UInt8.self, capacity: n) { String(decoding: UnsafeBufferPointer(start: $0, count: n), as: UTF8.self) }
    if line.hasPrefix("HTTP/") {
        state.headers = [:]  // a new response (after a redirect or 100-continue) starts
    } else if let colon = line.firstIndex(of: ":") {
        let name = line[..<colon].lowercased()
        let value = String(line[line.index(after: colon)...].filter { !$0.isNewline }).trimmingSpaces
        state.headers[name] = value
    }
    return n
}
