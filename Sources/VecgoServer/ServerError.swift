// The server's JSON errors: `{"error": {"code": "...", "message": "..."}}`, and how a
// VecgoError code, a malformed request or an unknown route maps to an HTTP status.
import Foundation
public import Hummingbird
import Logging
import Vecgo

/// An error answered as JSON with an HTTP status. `code` is a ``VecgoError`` code name
/// (`invalidArgument`, `dimensionMismatch`, `readOnly`, `notFound`, `conflict`, `timedOut`, …)
/// or one of the server's own: `payloadTooLarge`, `unavailable`, `methodNotAllowed`, `internal`.
public struct ServerError: Error, Sendable {
    /// The HTTP status answered.
    public var status: HTTPResponse.Status
    /// A stable, machine-readable code.
    public var code: String
    /// A message for people (never a stack trace or a secret).
    public var message: String

    /// An error with this status, code and message.
    public init(_ status: HTTPResponse.Status, code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    /// A malformed request (400 `invalidArgument`).
    static func badRequest(_ message: String) -> ServerError {
        ServerError(.badRequest, code: "invalidArgument", message)
    }

    /// The status a ``VecgoError`` code is answered with.
    static func status(for code: VecgoError.Code) -> HTTPResponse.Status {
        switch code {
        case .invalidArgument, .dimensionMismatch: .badRequest
        case .readOnly: .forbidden
        case .notFound: .notFound
        case .conflict, .fenced: .conflict
        case .timedOut, .unavailable, .storage, .closed, .cancelled: .serviceUnavailable
        case .permissionDenied: .badGateway  // the store refused the server's credentials: not the caller's fault
        default: .internalServerError  // corrupted, unsupportedFormat
        }
    }

    /// Any error thrown while answering a request, as the JSON error to answer. Errors that
    /// are not the server's or the library's are logged and answered as a bare 500.
    static func from(_ error: any Error, logger: Logger) -> ServerError {
        switch error {
        case let e as ServerError:
            return e
        case let e as VecgoError:
            return ServerError(status(for: e.code), code: "\(e.code)", e.message)
        case let e as DecodingError:
            return .badRequest(describe(e))
        case let e as any HTTPResponseError:
            switch e.status {
            case .contentTooLarge: return ServerError(.contentTooLarge, code: "payloadTooLarge", "the request body is larger than the server's limit")
            case .notFound: return ServerError(.notFound, code: "notFound", "no such endpoint; see docs/openapi.json")
            case .methodNotAllowed: return ServerError(.methodNotAllowed, code: "methodNotAllowed", "this endpoint does not answer that method")
            default: return ServerError(e.status, code: e.status.code < 500 ? "invalidArgument" : "internal", e.status.reasonPhrase)
            }
        default:
            logger.error("request failed with an unexpected error", metadata: ["error": "\(String(reflecting: type(of: error)))"])
            return ServerError(.internalServerError, code: "internal", "internal error")
        }
    }

    /// A decoding error in words, naming the field (never Swift type internals).
    static func describe(_ e: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            let p = keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return p.isEmpty ? "the body" : String(p.drop { $0 == "." })
        }
        switch e {
        case .keyNotFound(let key, let ctx):
            return "missing field '\(path(ctx.codingPath + [key]))'"
        case .typeMismatch(_, let ctx), .valueNotFound(_, let ctx):
            return "field '\(path(ctx.codingPath))' has the wrong type"
        case .dataCorrupted(let ctx):
            return ctx.codingPath.isEmpty ? "the body is not valid JSON" : "field '\(path(ctx.codingPath))' is invalid: \(ctx.debugDescription)"
        @unknown default:
            return "the body is not a valid request"
        }
    }

    /// The JSON response.
    func response() -> Response {
        struct Body: Encodable {
            struct Detail: Encodable { var code: String; var message: String }
            var error: Detail
        }
        return JSONResponse.make(status: status, Body(error: .init(code: code, message: message)))
    }
}

/// Responses with a JSON body.
enum JSONResponse {
    static func make(status: HTTPResponse.Status = .ok, _ value: some Encodable) -> Response {
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        let data = (try? encoder.encode(value)) ?? Data(#"{"error":{"code":"internal","message":"the response could not be encoded"}}"#.utf8)
        return Response(status: status, headers: [.contentType: "application/json"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Answers every error thrown below it, unknown routes included, as a JSON error.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            return ServerError.from(error, logger: logger).response()
        }
    }
}
