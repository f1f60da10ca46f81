// A log handler that keeps every message, so a test can check what was logged and how often.
public import Logging
import Synchronization

/// Collects the messages of ``logger`` in memory.
public final class LogCapture: Sendable {
    /// One logged message.
    public struct Entry: Sendable {
        public var level: Logger.Level
        public var message: String
    }

    private let entries = Mutex<[Entry]>([])

    public init() {}

    /// A logger (level `.trace`) whose messages this capture keeps.
    public var logger: Logger {
        var l = Logger(label: "vecgo.test") { _ in Handler(capture: self) }
        l.logLevel = .trace
        return l
    }

    /// Every message so far, oldest first.
    public var all: [Entry] { entries.withLock { $0 } }

    /// The warnings so far whose message contains `text`.
    public func warnings(containing text: String) -> [String] {
        all.filter { $0.level == .warning && $0.message.contains(text) }.map(\.message)
    }

    fileprivate func append(_ e: Entry) { entries.withLock { $0.append(e) } }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String,
                 file: String, function: String, line: UInt) {
            let extra = (metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            capture.append(Entry(level: level, message: extra.isEmpty ? "\(message)" : "\(message) \(extra)"))
        }
    }
}
