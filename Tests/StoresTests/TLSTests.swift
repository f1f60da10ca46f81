import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Stores
import Testing
import _VecgoTestSupport

/// TLS is verified by default: a server with a self-signed certificate is refused (and not
/// retried), and trusted once its certificate is given as the CA bundle.
@Suite struct TLSTests {
    static let server = """
        import http.server, ssl, sys
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = b"tls-ok"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *args):
                pass
        srv = http.server.HTTPServer(("127.0.0.1", 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[1], sys.argv[2])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        print(srv.server_address[1], flush=True)
        srv.serve_forever()
        """

    static func run(_ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw MissingServer(message: "\(args.joined(separator: " ")) failed (exit \(p.terminationStatus)); the TLS test needs openssl and python3 (scripts/setup.sh installs them)")
        }
    }

    @Test func certificatesAreVerifiedByDefaultAndAPrivateCACanBeTrusted() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vecgo-tls-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cert = dir + "/cert.pem", key = dir + "/key.pem"
        try Self.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
                      "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", Self.server, cert, key]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer {
            // SIGKILL: a child can inherit a blocked SIGTERM from the test process's thread and outlive the test.
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        var line = ""
        while !line.hasSuffix("\n") {
            let chunk = out.fileHandleForReading.availableData
            guard !chunk.isEmpty else { throw MissingServer(message: "the python3 TLS server did not start") }
            line += String(decoding: chunk, as: UTF8.self)
        }
        let port = try #require(Int(line.trimmingCharacters(in: .whitespacesAndNewlines)))

        var config = S3Configuration(bucket: "b", endpoint: "https://127.0.0.1:\(port)",
                                     credentials: S3Credentials(accessKeyID: "k", secretAccessKey: "s"))
        config.maxAttempts = 3
        let refused = await #expect(throws: StoreError.self) { _ = try await S3Store(config).read("x") }
        #expect(refused?.code == .network)
        #expect(refused?.message.contains("curl error 60") == true, "\(String(describing: refused))")  // peer failed verification
        #expect(refused?.message.contains("attempts") == false, "a certificate failure was retried")

        config.caBundlePath = cert
        #expect(try await S3Store(config).read("x") == Array("tls-ok".utf8))
    }
}
