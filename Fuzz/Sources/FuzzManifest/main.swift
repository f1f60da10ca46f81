@_spi(Fuzzing) import SegmentFormat

/// Any bytes: a manifest decodes or throws FormatError, never crashes; what decodes re-encodes stably.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var limits = DecodingLimits()
    limits.verifyChecksums = false
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let m = try? Manifest.decode(bytes, object: "fuzz", limits: limits) {
        let encoded = try! m.encode()
        precondition(try! Manifest.decode(encoded, object: "again").encode() == encoded, "manifest did not re-encode stably")
    }
    return 0
}
