// XMLScanner: just enough XML to read S3's answers.
/// Just enough XML for S3's answers: the text of elements by name, with entities decoded.
/// S3 responses are flat and well-formed; anything else is reported by the caller as an
/// invalid response.
struct XMLScanner {
    let text: String

    init(_ bytes: [UInt8]) { text = String(decoding: bytes, as: UTF8.self) }

    /// The decoded text of every `<name>…</name>` element, in order.
    func all(_ name: String, in source: Substring? = nil) -> [String] {
        blocks(name, in: source).map { Self.unescape(String($0)) }
    }

    /// The decoded text of the first `<name>` element.
    func first(_ name: String, in source: Substring? = nil) -> String? {
        blocks(name, in: source).first.map { Self.unescape(String($0)) }
    }

    /// The raw inner text of every `<name>…</name>` element.
    func blocks(_ name: String, in source: Substring? = nil) -> [Substring] {
        let s = source ?? Substring(text)
        let open = "<\(name)>", close = "</\(name)>"
        var out: [Substring] = []
        var rest = s[...]
        while let o = rest.firstRange(of: open) {
            guard let c = rest[o.upperBound...].firstRange(of: close) else { break }
            out.append(rest[o.upperBound..<c.lowerBound])
            rest = rest[c.upperBound...]
        }
        return out
    }

    static func unescape(_ s: String) -> String {
        guard s.contains("&") else { return s }
        var out = ""
        var i = s.startIndex
        while i < s.endIndex {
            if s[i] == "&", let semi = s[i...].firstIndex(of: ";") {
                let entity = s[s.index(after: i)..<semi]
                var replacement: String?
                switch entity {
                case "amp": replacement = "&"
                case "lt": replacement = "<"
                case "gt": replacement = ">"
                case "quot": replacement = "\""
                case "apos": replacement = "'"
                default:
                    if entity.hasPrefix("#x"), let v = UInt32(entity.dropFirst(2), radix: 16), let u = Unicode.Scalar(v) {
                        replacement = String(Character(u))
                    } else if entity.hasPrefix("#"), let v = UInt32(entity.dropFirst()), let u = Unicode.Scalar(v) {
                        replacement = String(Character(u))
                    }
                }
                if let replacement {
                    out += replacement
                    i = s.index(after: semi)
                    continue
                }
            }
            out.append(s[i])
            i = s.index(after: i)
        }
        return out
    }
}
