// The one byte reader and writer of the format: little-endian, bounds-checked, with every
// short read reported as `truncated` at its absolute offset in the object.

/// Appends little-endian values to a growing byte array.
package struct ByteWriter: Sendable {
    /// The bytes written so far.
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// The number of bytes written.
    public var count: Int { bytes.count }

    public mutating func write<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func write(_ value: Float) { write(value.bitPattern) }
    public mutating func write(_ value: Double) { write(value.bitPattern) }

    public mutating func write(bytes other: some Sequence<UInt8>) { bytes.append(contentsOf: other) }

    /// Writes a `u32` length and then the UTF-8 bytes of `string`.
    public mutating func writeString32(_ string: String) {
        let utf8 = Array(string.utf8)
        write(UInt32(utf8.count))
        bytes.append(contentsOf: utf8)
    }

    /// Writes a `u16` length and then the UTF-8 bytes of `string` (at most 65535 bytes).
    public mutating func writeString16(_ string: String) throws(FormatError) {
        let utf8 = Array(string.utf8)
        guard utf8.count <= Int(UInt16.max) else {
            throw FormatError(.invalidInput, object: "", offset: UInt64(bytes.count),
                              "string of \(utf8.count) bytes is longer than 65535")
        }
        write(UInt16(utf8.count))
        bytes.append(contentsOf: utf8)
    }

    /// Appends zeros until the count is a multiple of `alignment`.
    public mutating func pad(to alignment: Int) {
        let rem = bytes.count % alignment
        if rem != 0 { bytes.append(contentsOf: repeatElement(0, count: alignment - rem)) }
    }

    /// Overwrites a little-endian value at `index` (used for back-patched lengths and CRCs).
    public mutating func set<T: FixedWidthInteger>(_ value: T, at index: Int) {
        withUnsafeBytes(of: value.littleEndian) { src in
            for i in 0..<src.count { bytes[index + i] = src[i] }
        }
    }

    /// Appends float32 values in little-endian order.
    public mutating func write(floats: [Float]) {
        #if _endian(little)
        floats.withUnsafeBytes { bytes.append(contentsOf: $0) }
        #else
        for f in floats { write(f) }
        #endif
    }
}

/// Reads little-endian values from bytes that sit at `baseOffset` within `object`.
package struct ByteReader: Sendable {
    @usableFromInline let bytes: [UInt8]
    /// The index of the next byte to read, relative to the start of `bytes`.
    public private(set) var index: Int = 0
    /// The object the bytes came from, named in errors.
    public let object: String
    /// Where `bytes[0]` lies within the object, so errors give absolute offsets.
    public let baseOffset: UInt64

    public init(_ bytes: [UInt8], object: String, baseOffset: UInt64 = 0) {
        self.bytes = bytes
        self.object = object
        self.baseOffset = baseOffset
    }

    /// Bytes not yet read.
    public var remaining: Int { bytes.count - index }

    /// The absolute offset of the next byte within the object.
    public var offset: UInt64 { baseOffset + UInt64(index) }

    /// An error at the current position.
    public func error(_ code: FormatError.Code, _ message: String) -> FormatError {
        FormatError(code, object: object, offset: offset, message)
    }

    private func need(_ n: Int, _ what: String) throws(FormatError) {
        guard n >= 0, n <= remaining else {
            throw error(.truncated, "\(what) needs \(n) bytes, \(remaining) remain")
        }
    }

    public mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: String = "value") throws(FormatError) -> T {
        try need(MemoryLayout<T>.size, what)
        var v: T = 0
        withUnsafeMutableBytes(of: &v) { dst in
            for i in 0..<dst.count { dst[i] = bytes[index + i] }
        }
        index += MemoryLayout<T>.size
        return T(littleEndian: v)
    }

    public mutating func readFloat(_ what: String = "float") throws(FormatError) -> Float {
        Float(bitPattern: try read(UInt32.self, what))
    }

    public mutating func readDouble(_ what: String = "double") throws(FormatError) -> Double {
        Double(bitPattern: try read(UInt64.self, what))
    }

    public mutating func readBytes(_ count: Int, _ what: String = "bytes") throws(FormatError) -> [UInt8] {
        try need(count, what)
        defer { index += count }
        return Array(bytes[index..<index + count])
    }

    /// Reads `count` little-endian float32 values.
    public mutating func readFloats(_ count: Int, _ what: String = "floats") throws(FormatError) -> [Float] {
        guard count <= remaining / 4 else {
            throw error(.truncated, "\(what) needs \(count) floats, \(remaining) bytes remain")
        }
        var out = [Float](repeating: 0, count: count)
        #if _endian(little)
        out.withUnsafeMutableBytes { dst in
            bytes.withUnsafeBytes { src in
                dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[index..<index + count * 4]))
            }
        }
        index += count * 4
        #else
        for i in 0..<count { out[i] = try readFloat(what) }
        #endif
        return out
    }

    /// Reads a string written by ``ByteWriter/writeString16(_:)``.
    public mutating func readString16(_ what: String = "string") throws(FormatError) -> String {
        let n = Int(try read(UInt16.self, "\(what) length"))
        return try decodeUTF8(try readBytes(n, what), what)
    }

    /// Reads a string written by ``ByteWriter/writeString32(_:)``.
    public mutating func readString32(_ what: String = "string") throws(FormatError) -> String {
        let n = Int(try read(UInt32.self, "\(what) length"))
        try need(n, what)
        return try decodeUTF8(try readBytes(n, what), what)
    }

    private func decodeUTF8(_ raw: [UInt8], _ what: String) throws(FormatError) -> String {
        guard let s = String(validating: raw, as: UTF8.self) else {
            throw error(.corrupted, "\(what) is not valid UTF-8")
        }
        return s
    }

    public mutating func skip(_ count: Int, _ what: String = "padding") throws(FormatError) {
        try need(count, what)
        index += count
    }

    /// Skips a reserved field of `count` bytes, which must be zero (`corrupted` otherwise, at the field).
    public mutating func expectZero(_ count: Int, _ what: String) throws(FormatError) {
        let at = self
        guard try readBytes(count, what).allSatisfy({ $0 == 0 }) else { throw at.error(.corrupted, "\(what) is not 0") }
    }

    /// Fails unless every byte has been read.
    public func expectEnd(_ what: String) throws(FormatError) {
        guard remaining == 0 else { throw error(.corrupted, "\(remaining) unexpected bytes after \(what)") }
    }
}
