/// The `--flag [value]` arguments of a subcommand, read one at a time.
struct Flags {
    private var rest: IndexingIterator<ArraySlice<String>>
    private var flag = ""

    init(_ args: ArraySlice<String>) { rest = args.makeIterator() }

    /// The next flag, nil when none is left.
    mutating func next() -> String? {
        guard let f = rest.next() else { return nil }
        flag = f
        return f
    }

    /// The value following the current flag.
    mutating func value() throws -> String {
        guard let v = rest.next() else { throw BenchError(description: "\(flag) needs a value") }
        return v
    }

    /// The current flag's value as a positive integer.
    mutating func positiveInt() throws -> Int {
        let v = try value()
        guard let n = Int(v), n > 0 else { throw BenchError(description: "\(flag) needs a positive integer, got \(v)") }
        return n
    }

    /// The error for a flag the subcommand does not take.
    var unknown: BenchError { BenchError(description: "unknown argument \(flag)") }
}
