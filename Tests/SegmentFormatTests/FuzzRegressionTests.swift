import Foundation
@_spi(Fuzzing) import SegmentFormat
import Testing

/// Inputs that once crashed a decoder under the fuzzer (fixtures/fuzz-regressions/). Each must
/// now decode or fail with a typed error, checksums off as in the fuzz harnesses.
@Suite struct FuzzRegressionTests {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fixtures/fuzz-regressions")

    @Test func regressionInputsNeverCrashAnyDecoder() throws {
        var limits = DecodingLimits()
        limits.verifyChecksums = false
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path).sorted()
        #expect(!files.isEmpty)
        for name in files {
            let bytes = try Array(Data(contentsOf: Self.directory.appendingPathComponent(name)))
            _ = try? SegmentCodec.decode(bytes, object: name, limits: limits)
            _ = try? Manifest.decode(bytes, object: name, limits: limits)
            _ = try? PKIndex.decode(bytes, object: name, limits: limits)
            // With checksums on, damage is always reported.
            #expect(throws: FormatError.self) { try SegmentCodec.decode(bytes, object: name) }
        }
    }
}
