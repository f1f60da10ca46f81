// VecgoError: the façade's one error type, its codes, and how lower layers' errors map to them.
import SegmentFormat
import Stores

/// The one error of the Vecgo façade. Match on ``code``; the message is for people and may
/// change. Errors from the format and store layers are mapped to a code here and kept as
/// ``underlying``.
public struct VecgoError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, grouped by what the caller should do.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Value: Hashable, Sendable {
            case invalidArgument, dimensionMismatch, readOnly, closed, notFound, corrupted,
                 unsupportedFormat, conflict, fenced, unavailable, permissionDenied, storage, cancelled, timedOut
        }
        let value: Value
        /// The call is wrong (NaN in a vector, k out of range, bad option). Fix the call.
        public static let invalidArgument = Code(value: .invalidArgument)
        /// A vector's length differs from the database's dimension. Fix the call.
        public static let dimensionMismatch = Code(value: .dimensionMismatch)
        /// A write was attempted on a read-only handle. Open a writer.
        public static let readOnly = Code(value: .readOnly)
        /// The handle was closed.
        public static let closed = Code(value: .closed)
        /// No database (or no such version) under the prefix.
        public static let notFound = Code(value: .notFound)
        /// An object is damaged: the error names the object and offset. Give up; restore from a replica.
        public static let corrupted = Code(value: .corrupted)
        /// An object was written by a newer format version or uses an unknown required feature. Upgrade.
        public static let unsupportedFormat = Code(value: .unsupportedFormat)
        /// Another writer committed changes this commit cannot be merged with. Nothing was lost:
        /// the pending writes are still in this handle. Re-read and retry.
        public static let conflict = Code(value: .conflict)
        /// A newer exclusive writer took over this database (its writer epoch is higher); this
        /// handle may no longer commit. Its pending writes are kept; open a new writer.
        public static let fenced = Code(value: .fenced)
        /// The store could not be reached or kept refusing (network failures, throttling, 5xx)
        /// until the retries ran out. Nothing was changed by the failed call: retry later.
        public static let unavailable = Code(value: .unavailable)
        /// The store refused the credentials (missing, wrong, expired or not allowed). Retrying
        /// will not help: fix the credentials or the policy.
        public static let permissionDenied = Code(value: .permissionDenied)
        /// The object store failed otherwise (an answer this client cannot read, a local file
        /// error, a commit whose outcome could not be learned); see ``underlying``.
        public static let storage = Code(value: .storage)
        /// The task was cancelled.
        public static let cancelled = Code(value: .cancelled)
        /// A commit did not finish within its time budget (``OpenOption/commitTimeout(_:)``) or
        /// its attempts (``OpenOption/commitAttempts(_:)``), because other writers kept committing
        /// first or the store kept failing. Nothing was published and the pending writes are
        /// still in this handle: retry later, or allow more time.
        public static let timedOut = Code(value: .timedOut)
        public var description: String { "\(value)" }
    }

    /// What went wrong.
    public var code: Code
    /// A message for people.
    public var message: String
    /// The error of a lower layer that caused this one, if any.
    public var underlying: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String {
        var s = "VecgoError.\(code): \(message)"
        if let underlying { s += " (\(underlying))" }
        return s
    }

    /// Maps any error of the layers below to a `VecgoError`.
    static func wrap(_ error: any Error, _ context: @autoclosure () -> String) -> VecgoError {
        switch error {
        case let e as VecgoError:
            return e
        case let e as FormatError:
            let code: Code = (e.code == .unsupportedVersion || e.code == .unsupportedFeature) ? .unsupportedFormat : .corrupted
            return VecgoError(code, "\(context()): \(e.object) is unreadable at offset \(e.offset): \(e.message)", underlying: e)
        case let e as StoreError:
            let code: Code = switch e.code {
            case .notFound: .notFound
            case .cancelled: .cancelled
            case .alreadyExists, .conflict: .conflict
            case .network, .throttled: .unavailable
            case .accessDenied: .permissionDenied
            case .invalidArgument: .invalidArgument
            default: .storage
            }
            return VecgoError(code, "\(context()): \(e.message)", underlying: e)
        case is CancellationError:
            return VecgoError(.cancelled, "\(context()): cancelled")
        default:
            return VecgoError(.storage, "\(context()): \(error)")
        }
    }
}
