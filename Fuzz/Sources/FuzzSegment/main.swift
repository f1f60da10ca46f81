@_spi(Fuzzing) import SegmentFormat

/// Any bytes: decoding either succeeds or throws FormatError; it must never crash, hang or
/// allocate without bound. Checksums are not verified here, so the fuzzer reaches the
/// structure behind them. Whatever decodes must re-encode stably.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var limits = DecodingLimits()
    limits.verifyChecksums = false
    limits.maxRows = 1 << 16
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let c = try? SegmentCodec.decode(bytes, object: "fuzz", limits: limits) {
        let encoded = try! SegmentCodec.encode(c).bytes
        let again = try! SegmentCodec.encode(try! SegmentCodec.decode(encoded, object: "again")).bytes
        precondition(again == encoded, "a decoded segment did not re-encode stably")
    }
    return 0
}
