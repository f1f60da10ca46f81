// `vecgo export`: writes every live row of a version as JSON Lines or .fvecs, streaming.
import ArgumentParser
import Foundation
import Vecgo

/// The output formats of `vecgo export`.
enum ExportFormat: String, CaseIterable, ExpressibleByArgument {
    case jsonl, fvecs
}

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write every live row of a version as JSON Lines or .fvecs.",
        discussion: """
            JSON Lines rows are {"id" | "key", "vector", "metadata", "payload" (base64)}, the rows \
            `vecgo import` reads, so an export imports back as the same rows. .fvecs keeps the vectors \
            only (no ids), in the order of the segments. For the cosine metric the vectors come out \
            normalised, as stored. Rows are read one segment at a time.
            """)

    @OptionGroup var store: StoreOptions

    @Option(help: "jsonl or fvecs.")
    var format: ExportFormat = .jsonl

    @Option(help: "The version to export (default: the latest).")
    var version: UInt64?

    @Option(help: ArgumentHelp("Write here instead of standard output.", valueName: "file"))
    var output: String?

    func validate() throws {
        if let version, version < 1 { throw ValidationError("--version must be at least 1") }
    }

    func run() async throws {
        try await reportingFailure {
            var options: [OpenOption] = [.readOnly]
            if let version { options.append(.atVersion(version)) }
            let db = try await Vecgo.open(.remote(try store.open()), options: options)
            let out: FileHandle
            if let output {
                guard FileManager.default.createFile(atPath: output, contents: nil), let h = FileHandle(forWritingAtPath: output) else {
                    throw CLIError("cannot create \(output)")
                }
                out = h
            } else {
                out = FileHandle.standardOutput
            }
            defer { if output != nil { try? out.close() } }
            var buffer = Data()
            buffer.reserveCapacity(2 << 20)
            let format = self.format
            let count = try await db.forEachLiveRow { rows in
                for row in rows {
                    switch format {
                    case .jsonl:
                        buffer.append(contentsOf: Array(try JSONRow.encode(row).utf8))
                        buffer.append(0x0A)
                    case .fvecs:
                        withUnsafeBytes(of: Int32(row.vector.count).littleEndian) { buffer.append(contentsOf: $0) }
                        for v in row.vector { withUnsafeBytes(of: v.bitPattern.littleEndian) { buffer.append(contentsOf: $0) } }
                    }
                    if buffer.count >= 1 << 20 {
                        try out.write(contentsOf: buffer)
                        buffer.removeAll(keepingCapacity: true)
                    }
                }
            }
            try out.write(contentsOf: buffer)
            FileHandle.standardError.write(Data("exported \(count) rows of version \(await db.version)\(output.map { " to \($0)" } ?? "")\n".utf8))
        }
    }
}
