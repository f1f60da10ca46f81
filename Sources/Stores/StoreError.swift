// StoreError: the one error of the Stores module, with its codes.
/// The one error type of the `Stores` module. Match on ``code``; the message is for people and
/// may change. Messages never contain credentials.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, and so what the caller can do about it.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Value: Hashable, Sendable {
            case notFound, alreadyExists, conflict, throttled, accessDenied, network,
                 invalidArgument, invalidResponse, io, cancelled
        }
        let value: Value

        /// The object does not exist. Give up or re-read the latest version.
        public static let notFound = Code(value: .notFound)
        /// A create-if-absent found the name taken: another writer committed first. Re-read.
        public static let alreadyExists = Code(value: .alreadyExists)
        /// A concurrent conditional operation collided (S3 409) and retries ran out. Retry later.
        public static let conflict = Code(value: .conflict)
        /// The store kept answering "slow down" or 5xx until the retries ran out. Retry later.
        public static let throttled = Code(value: .throttled)
        /// Credentials are missing, wrong or not allowed. Fix the configuration.
        public static let accessDenied = Code(value: .accessDenied)
        /// The store could not be reached, or the connection failed, until retries ran out.
        public static let network = Code(value: .network)
        /// The call itself is wrong (a bad name, bucket or configuration). Fix the call.
        public static let invalidArgument = Code(value: .invalidArgument)
        /// The store answered with something this client cannot understand.
        public static let invalidResponse = Code(value: .invalidResponse)
        /// A local file-system operation failed.
        public static let io = Code(value: .io)
        /// The task was cancelled.
        public static let cancelled = Code(value: .cancelled)

        public var description: String { "\(value)" }
    }

    /// What went wrong.
    public var code: Code
    /// A message for people: what failed, on which object, and what to do.
    public var message: String
    /// The object or bucket the failed operation addressed, when there is one.
    public var object: String?
    /// The HTTP status, for remote stores.
    public var httpStatus: Int?
    /// The service's error code (for example `SlowDown`), for remote stores.
    public var serviceCode: String?
    /// The service's request id, for support cases.
    public var requestID: String?

    public init(_ code: Code, _ message: String, object: String? = nil, httpStatus: Int? = nil,
                serviceCode: String? = nil, requestID: String? = nil) {
        self.code = code
        self.message = message
        self.object = object
        self.httpStatus = httpStatus
        self.serviceCode = serviceCode
        self.requestID = requestID
    }

    public var description: String {
        var s = "StoreError.\(code): \(message)"
        if let object { s += " [object: \(object)]" }
        if let httpStatus { s += " [HTTP \(httpStatus)]" }
        if let serviceCode { s += " [\(serviceCode)]" }
        if let requestID { s += " [request id: \(requestID)]" }
        return s
    }
}
