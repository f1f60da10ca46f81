internal import CCurl
import Dispatch

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
}

/// One HTTP response.
struct HTTPResponse: Sendable {
    var status: Int
    var headers: [String: String]  // lower-cased names
    var body: [UInt8]
}

/// An easy handle with one owner; freed in deinit. Used by one transfer at a time (the pool
/// hands it out and takes it back), hence unchecked Sendable.
final class CurlEasy: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    init?() {
        guard let h = curl_easy_init() else { return nil }
        handle = h
    }
    deinit { curl_easy_cleanup(handle) }
}

/// What the curl callbacks write into during one transfer.
final class TransferState {
    var body: [UInt8] = []
    var headers: [String: String] = [:]
    var cancelled: () -> Bool = { false }
}

/// HTTP over libcurl: a pool of easy handles (so connections are reused), transfers run on
/// their own threads (never on Swift's cooperative pool), cancellation aborts a transfer.
final class CurlHTTPClient: Sendable {
    private let pool = Locked<[CurlEasy]>([])
    private let queue = DispatchQueue(label: "vecgo.curl", attributes: .concurrent)
    let connectTimeoutMillis: Int
    let requestTimeoutMillis: Int
    /// Certificates to trust instead of the system's (a private CA); verification stays on.
    let caBundlePath: String?

    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    init(connectTimeoutMillis: Int, requestTimeoutMillis: Int, caBundlePath: String? = nil) {
        _ = Self.globalInit
        self.connectTimeoutMillis = connectTimeoutMillis
        self.requestTimeoutMillis = requestTimeoutMillis
        self.caBundlePath = caBundlePath
    }

    /// Performs one request. Throws ``StoreError`` `.network` (with the curl code) on transport
    /// failure, `.cancelled` when the task is cancelled.
    func perform(_ request: HTTPRequest) async throws -> (HTTPResponse?, CurlCode) {
        let cancelFlag = Locked(false)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<(HTTPResponse?, CurlCode), any Error>) in
                queue.async {
                    c.resume(returning: self.performBlocking(request, cancelled: { cancelFlag.withLock { $0 } }))
                }
            }
        } onCancel: {
            cancelFlag.withLock { $0 = true }
        }
    }

    private func performBlocking(_ request: HTTPRequest, cancelled: @escaping () -> Bool) -> (HTTPResponse?, CurlCode) {
        let easy = pool.withLock { $0.popLast() } ?? CurlEasy()
        guard let easy else { return (nil, CurlCode(CURLE_FAILED_INIT)) }
        let h = easy.handle
        curl_easy_reset(h)
        let state = TransferState()
        state.cancelled = cancelled
        let unmanaged = Unmanaged.passRetained(state)
        defer { unmanaged.release() }
        var list: UnsafeMutablePointer<curl_slist>?
        for (name, value) in request.headers { list = curl_slist_append(list, "\(name): \(value)") }
        // No implicit headers: no Expect: 100-continue round trip, no form content type.
        list = curl_slist_append(list, "Expect:")
        list = curl_slist_append(list, "Content-Type:")
        list = curl_slist_append(list, "Accept:")
        defer { curl_slist_free_all(list) }

        let code: CURLcode = request.url.withCString { url in
            request.method.withCString { method in
                request.body.withUnsafeBytes { body in
                    _ = vecgo_curl_setopt_string(h, CURLOPT_URL, url)
                    _ = vecgo_curl_setopt_long(h, CURLOPT_NOSIGNAL, 1)
                    _ = vecgo_curl_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, connectTimeoutMillis)
                    _ = vecgo_curl_setopt_long(h, CURLOPT_TIMEOUT_MS, requestTimeoutMillis)
                    _ = vecgo_curl_setopt_long(h, CURLOPT_SSL_VERIFYPEER, 1)
                    _ = vecgo_curl_setopt_long(h, CURLOPT_SSL_VERIFYHOST, 2)
                    if let caBundlePath { _ = vecgo_curl_setopt_string(h, CURLOPT_CAINFO, caBundlePath) }
                    _ = vecgo_curl_setopt_slist(h, CURLOPT_HTTPHEADER, list)
                    _ = vecgo_curl_setopt_pointer(h, CURLOPT_WRITEDATA, unmanaged.toOpaque())
                    _ = vecgo_curl_setopt_data_cb(h, CURLOPT_WRITEFUNCTION, curlWrite)
                    _ = vecgo_curl_setopt_pointer(h, CURLOPT_HEADERDATA, unmanaged.toOpaque())
                    _ = vecgo_curl_setopt_data_cb(h, CURLOPT_HEADERFUNCTION, curlHeader)
                    _ = vecgo_curl_setopt_long(h, CURLOPT_NOPROGRESS, 0)
                    _ = vecgo_curl_setopt_pointer(h, CURLOPT_XFERINFODATA, unmanaged.toOpaque())
                    _ = vecgo_curl_setopt_xferinfo_cb(h, curlProgress)
                    switch request.method {
                    case "GET": _ = vecgo_curl_setopt_long(h, CURLOPT_HTTPGET, 1)
                    case "HEAD": _ = vecgo_curl_setopt_long(h, CURLOPT_NOBODY, 1)
                    default:
                        _ = vecgo_curl_setopt_string(h, CURLOPT_CUSTOMREQUEST, method)
                        if request.method == "PUT" || request.method == "POST" {
                            _ = vecgo_curl_setopt_off(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
                            _ = vecgo_curl_setopt_pointer(h, CURLOPT_POSTFIELDS,
                                                          UnsafeMutableRawPointer(mutating: body.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!))
                        }
                    }
                    return curl_easy_perform(h)
                }
            }
        }
        let result = CurlCode(code)
        var status = 0
        _ = vecgo_curl_getinfo_long(h, CURLINFO_RESPONSE_CODE, &status)
        if result == .ok {
            pool.withLock { $0.append(easy) }  // keep the connection for the next request
            return (HTTPResponse(status: status, headers: state.headers, body: state.body), result)
        }
        return (nil, result)  // a failed handle is dropped, with its connection
    }
}

private func curlWrite(_ ptr: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ user: UnsafeMutableRawPointer?) -> Int {
    let state = Unmanaged<TransferState>.fromOpaque(user!).takeUnretainedValue()
    let n = size * count
    if let ptr, n > 0 {
        ptr.withMemoryRebound(to: UInt8.self, capacity: n) { state.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: n)) }
    }
    return n
}

private func curlHeader(_ ptr: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ user: UnsafeMutableRawPointer?) -> Int {
    let state = Unmanaged<TransferState>.fromOpaque(user!).takeUnretainedValue()
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

private func curlProgress(_ user: UnsafeMutableRawPointer?, _: curl_off_t, _: curl_off_t, _: curl_off_t, _: curl_off_t) -> Int32 {
    let state = Unmanaged<TransferState>.fromOpaque(user!).takeUnretainedValue()
    return state.cancelled() ? 1 : 0
}
