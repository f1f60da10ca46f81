// `vecgo import`: loads .fvecs, .bvecs, .npy and JSON Lines files into a database, committing
// every --batch rows, streaming each file.
import ArgumentParser
import Foundation
import Stores
import Vecgo

/// Parses `--metric`: the library's metric names.
func parseMetric(_ text: String) throws -> Metric {
    guard let m = Metric(name: text) else {
        throw ValidationError("'\(text)' is not a metric; use \(Metric.allCases.map(\.description).joined(separator: ", "))")
    }
    return m
}

extension InputFormat: ExpressibleByArgument {}

struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create or append to a database from .fvecs, .bvecs, .npy or JSON Lines files.",
        discussion: """
            Formats are chosen by extension (.fvecs, .bvecs, .npy, .jsonl/.ndjson/.json) unless --format says. \
            .npy files hold a 2-D, C-order array of float32 ('<f4') or float16 ('<f2'). A JSON Lines row is \
            {"id": 7 | "key": "...", "vector": [...], "metadata": {...}, "payload": "<base64>"}; metadata \
            values are strings, integers, floats, booleans, lists of strings and {"$timestamp_us": N}.

            Rows of .fvecs, .bvecs and .npy files (and JSON rows without "id" or "key") get the id \
            --id-offset plus their row number, counted from 0 across all the files in order, so running the \
            same import again upserts the same rows: an interrupted import can simply be run again.

            Every --batch rows are committed as one version. A malformed row stops the import with the \
            file, the line or row number and what is wrong: every batch before it stays committed, and \
            the batch holding the bad row is never committed (none of its rows become visible).
            """)

    @OptionGroup var store: StoreOptions

    @Argument(help: ArgumentHelp("The files to import, in order.", valueName: "file"))
    var files: [String]

    @Option(help: "Read every file as this format instead of choosing by extension.")
    var format: InputFormat?

    @Option(help: ArgumentHelp("The distance metric, l2, cosine or dot: required to create a database, checked against it when appending.",
                               valueName: "l2|cosine|dot"),
            transform: parseMetric)
    var metric: Metric?

    @Option(help: "Rows per commit.")
    var batch = 100_000

    @Option(name: .customLong("id-offset"), help: "The id of row 0 of vector files (later rows count up from it).")
    var idOffset: UInt64 = 0

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("name at least one file to import") }
        guard batch >= 1 else { throw ValidationError("--batch needs a whole number of at least 1, got \(batch)") }
        if format == nil {
            for f in files where InputFormat(path: f) == nil {
                throw ValidationError("cannot tell the format of '\(f)' from its extension; use --format \(InputFormat.allCases.map(\.rawValue).joined(separator: "|"))")
            }
        }
    }

    func run() async throws {
        try await reportingFailure { try await importFiles() }
    }

    /// Opens the database for rows of `dimension`: creates it with --metric, or appends after
    /// checking --metric against the stored one.
    private func open(_ store: any BlobStore, dimension: Int) async throws -> Vecgo {
        if let metric { return try await Vecgo.open(.remote(store), .create(dimension: dimension, metric: metric)) }
        do {
            return try await Vecgo.open(.remote(store))
        } catch let e as VecgoError where e.code == .notFound {
            throw CLIError("there is no database at \(self.store.url) yet; give --metric (l2, cosine or dot) to create one")
        }
    }

    private func importFiles() async throws {
        let counting = UploadCountingStore.wrapping(try store.open())
        let sizes = files.map { (try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int) ?? 0 }
        let progress = ImportProgress(totalInputBytes: sizes.reduce(0, +))
        var db: Vecgo?
        var rowNumber: UInt64 = 0, rows = 0, inBatch = 0, committed = 0, doneBytes = 0
        var lastVersion: UInt64 = 0

        for (index, path) in files.enumerated() {
            let reader: any RowReader
            do { reader = try openReader(path, format: format ?? InputFormat(path: path)!) } catch {
                throw CLIError("\(path): \(error)")
            }
            while true {
                let row: InputRow?
                var failure: (any Error)?
                do { row = try reader.next() } catch {
                    row = nil
                    failure = error
                }
                if let row, failure == nil {
                    do {
                        if db == nil { db = try await open(counting, dimension: row.vector.count) }
                        if let key = row.key {
                            try await db!.upsert(key: key, row.vector, metadata: row.metadata, payload: row.payload)
                        } else {
                            try await db!.upsert(id: row.id ?? idOffset &+ rowNumber, row.vector, metadata: row.metadata, payload: row.payload)
                        }
                    } catch let e as VecgoError where e.code != .invalidArgument && e.code != .dimensionMismatch {
                        // The store failed, not the row: nothing of this batch is committed.
                        progress.interrupt()
                        throw CLIError("\(e)\n  \(committed) rows are committed\(lastVersion > 0 ? " (up to version \(lastVersion))" : ""); "
                                       + "run the same import again to finish it (it upserts the same ids)")
                    } catch let e as CLIError where db == nil {
                        throw e
                    } catch {
                        failure = error
                    }
                }
                if let failure {
                    progress.interrupt()
                    var notCommitted = inBatch
                    if let db {
                        notCommitted = (try? await db.discardPending()) ?? inBatch
                        try? await db.close()
                    }
                    let what = (failure as? VecgoError).map { "\($0)" } ?? "\(failure)"
                    throw CLIError("\(path): \(reader.position): \(what)\n"
                                   + "  \(committed) rows are committed (in batches of \(batch)\(lastVersion > 0 ? ", up to version \(lastVersion)" : "")); "
                                   + "the batch holding this row (\(notCommitted) rows before it) was not committed")
                }
                guard row != nil else { break }
                rowNumber += 1
                rows += 1
                inBatch += 1
                if inBatch == batch {
                    lastVersion = try await db!.commit()
                    committed += inBatch
                    inBatch = 0
                }
                if rows & 1023 == 0 {
                    progress.update(rows: rows, inputBytes: doneBytes + reader.bytesRead, uploaded: counting.bytesWritten, committed: committed)
                }
            }
            doneBytes += sizes[index]
        }
        if let db {
            if inBatch > 0 { lastVersion = try await db.commit() }
            committed += inBatch
            try await db.close()
        }
        progress.finish(rows: rows, inputBytes: doneBytes, uploaded: counting.bytesWritten, committed: committed)
        print("imported \(rows) rows from \(files.count) file\(files.count == 1 ? "" : "s")"
              + (lastVersion > 0 ? "; version \(lastVersion)" : "; nothing to commit"))
    }
}
