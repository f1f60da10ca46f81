// Where integration tests find their servers (moto, moto with signatures, the Express proxy).
import Foundation

/// Where the integration tests find their servers. The README test command starts moto and
/// exports these; a test that cannot find them fails with a message saying so (never skips).
public enum TestEnvironment {
    /// The moto server's base URL, from `VECGO_TEST_S3_ENDPOINT` (for example `http://127.0.0.1:5055`).
    public static func s3Endpoint() throws -> String {
        guard let v = ProcessInfo.processInfo.environment["VECGO_TEST_S3_ENDPOINT"], !v.isEmpty else {
            throw MissingServer(message: """
                VECGO_TEST_S3_ENDPOINT is not set: this test needs a running S3-compatible server \
                (moto). Run the README test command (bash scripts/test.sh), which starts moto_server \
                on 127.0.0.1 and sets it.
                """)
        }
        return v
    }

    /// The signature-checking moto server and the IAM keys it accepts, from
    /// `VECGO_TEST_S3_AUTH_ENDPOINT`, `VECGO_TEST_S3_AUTH_KEY` and `VECGO_TEST_S3_AUTH_SECRET`.
    public static func s3AuthEndpoint() throws -> (endpoint: String, key: String, secret: String) {
        let env = ProcessInfo.processInfo.environment
        guard let e = env["VECGO_TEST_S3_AUTH_ENDPOINT"], let k = env["VECGO_TEST_S3_AUTH_KEY"],
              let s = env["VECGO_TEST_S3_AUTH_SECRET"], !e.isEmpty, !k.isEmpty, !s.isEmpty else {
            throw MissingServer(message: """
                VECGO_TEST_S3_AUTH_ENDPOINT/_KEY/_SECRET are not set: this test needs a moto server that \
                checks signatures (INITIAL_NO_AUTH_ACTION_COUNT=0 and an IAM user). Run the README test \
                command (bash scripts/test.sh), which starts one with start_moto_auth in scripts/moto.sh.
                """)
        }
        return (e, k, s)
    }

    /// A bucket name unique to one test, so tests never see each other's objects.
    public static func uniqueBucket(_ tag: String) -> String {
        let clean = tag.lowercased().filter { $0.isLetter || $0.isNumber }
        return "vecgo-\(clean.prefix(20))-\(UInt32.random(in: 0...UInt32.max))"
    }
}

/// Thrown when a test's server is not configured or not reachable.
public struct MissingServer: Error, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// A repeatable random number generator (SplitMix64) for tests and data generators.
public struct SeededRNG: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension TestEnvironment {
    /// A 127.0.0.1 TCP port nothing listens on (bound, then released).
    public static func unusedPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw MissingServer(message: "cannot open a socket") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard bound else { throw MissingServer(message: "cannot bind a socket on 127.0.0.1") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}

extension TestEnvironment {
    /// The S3 Express emulating proxy (Tests/s3express-proxy) in front of moto and the base keys
    /// it accepts, from `VECGO_TEST_EXPRESS_ENDPOINT`, `_KEY` and `_SECRET`.
    public static func expressEndpoint() throws -> (endpoint: String, key: String, secret: String) {
        let env = ProcessInfo.processInfo.environment
        guard let e = env["VECGO_TEST_EXPRESS_ENDPOINT"], let k = env["VECGO_TEST_EXPRESS_KEY"],
              let s = env["VECGO_TEST_EXPRESS_SECRET"], !e.isEmpty, !k.isEmpty, !s.isEmpty else {
            throw MissingServer(message: """
                VECGO_TEST_EXPRESS_ENDPOINT/_KEY/_SECRET are not set: this test needs the S3 Express \
                emulating proxy (Tests/s3express-proxy) in front of moto. Run the README test command \
                (bash scripts/test.sh), which starts it with start_express_proxy in scripts/moto.sh.
                """)
        }
        return (e, k, s)
    }

    /// A directory-bucket name unique to one test (`<tag>-<random>--use1-az4--x-s3`).
    public static func uniqueDirectoryBucket(_ tag: String) -> String {
        let clean = tag.lowercased().filter { $0.isLetter || $0.isNumber }
        return "vecgo-\(clean.prefix(16))-\(UInt32.random(in: 0...UInt32.max))--use1-az4--x-s3"
    }

    /// Calls an unsigned admin endpoint of the S3 Express proxy (`/_proxy/...`) with curl and
    /// returns its JSON answer.
    public static func expressProxyAdmin(_ path: String, post: Bool = false) throws -> [String: Int] {
        let endpoint = try expressEndpoint().endpoint
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["curl", "-sf"] + (post ? ["-X", "POST"] : []) + ["\(endpoint)/_proxy/\(path)"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0, let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw MissingServer(message: "the S3 Express proxy at \(endpoint) did not answer /_proxy/\(path) (curl exit \(p.terminationStatus))")
        }
        return json.compactMapValues { $0 as? Int }
    }
}

/// Runs blocking work (reading a child process's output to its end, waiting for it to exit) on
/// a thread of its own. A test that blocks inside a task holds one of the few threads Swift
/// concurrency runs every task on (two on a 2-core machine); with two such tests at once every
/// other test's continuations stall, and their retry and time budgets run out.
public func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}
