@_spi(Fuzzing) import SegmentFormat

/// Any bytes: a pk-index decodes or throws FormatError, never crashes; what decodes re-encodes stably.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var limits = DecodingLimits()
    limits.verifyChecksums = false
    limits.maxBlockBytes = 1 << 24
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let p = try? PKIndex.decode(bytes, object: "fuzz", limits: limits) {
        let encoded = try! p.encode()
        precondition(try! PKIndex.decode(encoded, object: "again").encode() == encoded, "pk-index did not re-encode stably")
    }
    return 0
}
