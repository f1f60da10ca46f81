// The database a server answers from: opened (and retried) by a service when the server
// starts, ready once open, committed and closed when the server shuts down.
import Foundation
import HTTPTypes
import Logging
import ServiceLifecycle
import Stores
import Synchronization
import Vecgo

/// The open database, once it is (requests before that answer 503).
final class DatabaseHolder: Sendable {
    private let state = Mutex<(db: Vecgo?, lastError: String?)>((nil, nil))
    var db: Vecgo? { state.withLock { $0.db } }
    var lastError: String? { state.withLock { $0.lastError } }
    func set(_ db: Vecgo?) { state.withLock { $0.db = db } }
    func failed(_ message: String) { state.withLock { $0.lastError = message } }

    /// The database, or a 503 error while it is not open.
    func require() throws(ServerError) -> Vecgo {
        guard let db else {
            throw ServerError(.serviceUnavailable, code: "unavailable",
                              "the database is not open yet" + (lastError.map { " (last attempt: \($0))" } ?? ""))
        }
        return db
    }
}

/// Opens the database when the server starts (retrying while the prefix holds no database
/// or the store fails), and commits and closes it when the server shuts down. The service
/// group stops the HTTP server first, so in-flight requests finish before this commits.
struct DatabaseService: Service {
    let configuration: VecgoServer.Configuration
    let holder: DatabaseHolder
    let logger: Logger

    func run() async throws {
        var delay = 0.1
        var db: Vecgo?
        while db == nil {
            do {
                db = try await Vecgo.open(.remote(configuration.store), options: configuration.openOptions(logger: logger))
            } catch let e as VecgoError where e.code == .notFound || e.code == .storage {
                holder.failed("\(e.code): \(e.message)")
                logger.warning("cannot open the database yet; retrying", metadata: ["code": "\(e.code)", "error": "\(e.message)"])
                let wait = delay
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(wait)) }
                if Task.isShuttingDownGracefully || Task.isCancelled { return }
                delay = min(delay * 2, max(configuration.refreshInterval, 1))
            }
        }
        guard let db else { return }
        holder.set(db)
        let version = await db.version
        logger.info("database open", metadata: ["version": "\(version)", "readOnly": "\(db.isReadOnly)"])
        // Serve until the service group shuts down (the HTTP server has drained by then).
        try? await gracefulShutdown()
        try await Self.close(db, logger: logger)
    }

    /// Commits pending writes and closes, retrying a failed commit a few times: pending writes
    /// are lost only if every attempt fails, and then the error says how many.
    static func close(_ db: Vecgo, logger: Logger) async throws {
        var attempt = 0
        while true {
            let pending = await db.pendingCount
            do {
                try await db.close()
                let version = await db.version
                if pending > 0 { logger.info("committed pending writes at shutdown", metadata: ["rows": "\(pending)", "version": "\(version)"]) }
                return
            } catch let e as VecgoError where e.code == .conflict || e.code == .fenced || e.code == .readOnly {
                // Retrying cannot help: another writer changed the same keys, or took over.
                logger.error("pending writes could not be committed at shutdown",
                             metadata: ["pending": "\(pending)", "code": "\(e.code)", "error": "\(e.message)"])
                throw e
            } catch {
                attempt += 1
                logger.error("closing the database failed", metadata: ["attempt": "\(attempt)", "pending": "\(pending)", "error": "\(error)"])
                if attempt >= 5 { throw error }
                try? await Task.sleep(for: .milliseconds(200 << attempt))
            }
        }
    }
}
