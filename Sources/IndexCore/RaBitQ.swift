// RaBitQ-style 1-bit quantization: the seeded rotation, row records and the estimator a scan uses.
internal import CVecgoNative

/// RaBitQ (Gao & Long, SIGMOD 2024) with one bit per dimension: each row is stored as the signs
/// of its randomly rotated residual from its partition centroid, plus two floats, and distances
/// are estimated from the codes with a per-row error bound, so a scan can keep only the rows a
/// re-rank with float32 vectors may still need.
///
/// The definitions below are normative (codes are stored on disk):
///
/// - `P` (``paddedDimension``) is the smallest power of two ≥ max(`dimension`, 64).
/// - Signs: a SplitMix64 generator seeded with ``seed``; for round `r` in 0..<3 and block `b`
///   in 0..<P/64 (in that order), draw one `UInt64` `w`; `s_r[64b + j]` is −1 when bit `j` of
///   `w` is 1, else +1.
/// - Rotation `R(x)`: pad `x` with zeros to `P` floats; three times: multiply element `i` by
///   `s_r[i]`, apply the Walsh–Hadamard butterflies (for h = 1, 2, 4, …, P/2; for each block
///   start i = 0, 2h, 4h, …; for j in i..<i+h: `(v[j], v[j+h]) = (v[j] + v[j+h], v[j] − v[j+h])`),
///   then multiply every element by `Float(1 / Double(P).squareRoot())`. `R` is orthonormal.
/// - Encoding row `o` against centroid `c` (all float32): `u_j = o_j − c_j`;
///   `n = sqrt(u_0·u_0 + u_1·u_1 + …)` summed in order; `v = R(u)`; code bit `j` is 1 iff
///   `v_j > 0`, stored as bit `j % 8` of byte `j / 8` (``codeBytes`` = P/8 bytes);
///   `x0 = (|v_0| + |v_1| + … + |v_{P−1}|) / (n · Float(Double(P).squareRoot()))`, summed in
///   order, when `n > 0`; when `n == 0`, `x0 = 1`.
/// - The centroid term `t = Σ R(c)_j` over the set bits `j` of the code, summed in order.
/// - A record is the code bytes, then `n`, `x0` and `t` as little-endian float32:
///   ``recordBytes`` = P/8 + 12 bytes. With `t` stored, `R(q − c) = R(q) − R(c)` lets one set
///   of lookup tables, of `R(q)`, serve every partition of a query.
/// - Estimates, with `x̄ = (2b − 1)/√P` and `ip = ⟨x̄, w⟩ = (2·S1 − S)/√P` (`S1` the sum of
///   `w_j` over set bits, `S` the sum of all `w_j`) and `k = ε0/√(P − 1)`:
///   - `.l2`: `w = R(q − c)`, `m = ‖q − c‖`: distance ≈ `n² + m² − 2·n·ip/x0`, bound
///     `2·n·m·sqrt(max(0, 1 − x0²))/x0·k`.
///   - `.cosine` (`o` and `q` of unit length, so `1 − ⟨o, q⟩ = ‖o − q‖²/2`): half the `.l2`
///     estimate and bound. Estimating `⟨o, q⟩ = ⟨u, q⟩ + ⟨c, q⟩` from `w = R(q)` instead would
///     make the error scale with `‖q‖ = 1` rather than `‖q − c‖`, far larger inside a partition.
///   - `.dot`: `w = R(q)`: `⟨o, q⟩ ≈ n·ip/x0 + ⟨c, q⟩`, bound `n·‖q‖·sqrt(max(0, 1 − x0²))/x0·k`;
///     distance = `−⟨o, q⟩`.
///
///   The estimate's error is close to normal with the bound's `1/ε0` as its standard deviation
///   (at most), so the true distance lies within [estimate − bound, estimate + bound] for about
///   94 % of rows at ε0 = 1.9 and 99.7 % at ε0 = 3.
public struct RaBitQ: Sendable, Hashable {
    /// Floats per vector.
    public let dimension: Int
    /// `P`: the smallest power of two ≥ max(`dimension`, 64), the length of rotated vectors.
    public let paddedDimension: Int
    /// The seed of the rotation's random signs.
    public let seed: UInt64
    /// `3 × P` signs (±1), round by round.
    private let signs: [Float]
    /// `R^T` applied to the all-ones vector, its first `dimension` values: `Σ_j R(c)_j = ⟨c, onesBack⟩`.
    private let onesBack: [Float]

    /// The number of rotation rounds.
    static let rounds = 3

    /// A quantizer for vectors of `dimension` floats whose rotation is drawn from `seed`.
    public init(dimension: Int, seed: UInt64) {
        precondition(dimension > 0, "RaBitQ needs a positive dimension")
        self.dimension = dimension
        self.seed = seed
        var p = 64
        while p < dimension { p <<= 1 }
        paddedDimension = p
        var rng = SplitMix64(seed: seed)
        var signs = [Float](repeating: 1, count: Self.rounds * p)
        for block in 0..<(Self.rounds * p / 64) {
            let w = rng.next()
            for j in 0..<64 where (w >> UInt64(j)) & 1 == 1 { signs[block * 64 + j] = -1 }
        }
        self.signs = signs
        var ones = [Float](repeating: 1, count: p)
        let scale = Float(1 / Double(p).squareRoot())
        ones.withUnsafeMutableBufferPointer { vb in
            signs.withUnsafeBufferPointer { sb in
                for r in stride(from: Self.rounds - 1, through: 0, by: -1) {
                    vecgo_rabitq_rotate_transposed_round(vb.baseAddress!, sb.baseAddress! + r * p, p, scale)
                }
            }
        }
        onesBack = Array(ones.prefix(dimension))
    }

    public static func == (a: RaBitQ, b: RaBitQ) -> Bool { a.dimension == b.dimension && a.seed == b.seed }
    public func hash(into h: inout Hasher) {
        h.combine(dimension)
        h.combine(seed)
    }

    /// Bytes of one row's code: `paddedDimension / 8`.
    public var codeBytes: Int { paddedDimension / 8 }
    /// Bytes of one stored record: the code, then `n`, `x0` and `t` as float32 (`codeBytes + 12`).
    public var recordBytes: Int { codeBytes + 12 }

    /// The signs `s_r` of rotation round `round` (`paddedDimension` values, each ±1).
    @_spi(Testing)
    public func signs(round: Int) -> [Float] { Array(signs[round * paddedDimension..<(round + 1) * paddedDimension]) }

    /// Writes `R(x)`.
    ///
    /// - Parameters:
    ///   - x: `dimension` floats.
    ///   - out: room for `paddedDimension` floats.
    public func rotate(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        out.update(from: x, count: dimension)
        (out + dimension).initialize(repeating: 0, count: paddedDimension - dimension)
        rotateInPlace(out)
    }

    private func rotateInPlace(_ v: UnsafeMutablePointer<Float>) {
        signs.withUnsafeBufferPointer { s in
            vecgo_rabitq_rotate(v, s.baseAddress!, paddedDimension, Self.rounds, inverseSqrtP)
        }
    }

    private var inverseSqrtP: Float { Float(1 / Double(paddedDimension).squareRoot()) }
    private var sqrtP: Float { Float(Double(paddedDimension).squareRoot()) }

    /// Encodes one row against its partition's centroid.
    ///
    /// - Parameters:
    ///   - row: `dimension` floats.
    ///   - centroid: `dimension` floats.
    ///   - code: room for ``codeBytes`` bytes; every byte is written.
    /// - Returns: the residual's norm `n` and the factor `x0` (see the type's definitions).
    @discardableResult
    public func encode(_ row: UnsafePointer<Float>, centroid: UnsafePointer<Float>,
                       code: UnsafeMutablePointer<UInt8>) -> (norm: Float, x0: Float) {
        let p = paddedDimension
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: p) { buffer in
            let v = buffer.baseAddress!
            var squares: Float = 0
            for j in 0..<dimension {
                let u = row[j] - centroid[j]
                v[j] = u
                squares += u * u
            }
            (v + dimension).initialize(repeating: 0, count: p - dimension)
            let n = squares.squareRoot()
            code.initialize(repeating: 0, count: codeBytes)
            guard n > 0 else { return (n, 1) }
            rotateInPlace(v)
            var absSum: Float = 0
            for j in 0..<p {
                if v[j] > 0 { code[j >> 3] |= UInt8(1) << UInt8(j & 7) }
                absSum += abs(v[j])
            }
            return (n, absSum / (n * sqrtP))
        }
    }

    /// Encodes one row into a whole record: the code, then `n`, `x0` and `t` as little-endian
    /// float32.
    ///
    /// - Parameters:
    ///   - row: `dimension` floats.
    ///   - centroid: `dimension` floats.
    ///   - rotatedCentroid: `R(centroid)`, ``paddedDimension`` floats (see ``rotate(_:into:)``).
    ///   - record: room for ``recordBytes`` bytes (any alignment).
    public func encodeRecord(_ row: UnsafePointer<Float>, centroid: UnsafePointer<Float>, rotatedCentroid: UnsafePointer<Float>,
                             into record: UnsafeMutableRawPointer) {
        let code = record.assumingMemoryBound(to: UInt8.self)
        let (n, x0) = encode(row, centroid: centroid, code: code)
        var t: Float = 0
        for j in 0..<paddedDimension where code[j >> 3] & (UInt8(1) << UInt8(j & 7)) != 0 { t += rotatedCentroid[j] }
        record.storeBytes(of: n.bitPattern.littleEndian, toByteOffset: codeBytes, as: UInt32.self)
        record.storeBytes(of: x0.bitPattern.littleEndian, toByteOffset: codeBytes + 4, as: UInt32.self)
        record.storeBytes(of: t.bitPattern.littleEndian, toByteOffset: codeBytes + 8, as: UInt32.self)
    }

    /// A query rotated once, with the lookup tables of `R(q)` that every partition's scan uses.
    public struct Query: Sendable {
        /// The query's floats (`dimension`).
        let query: [Float]
        /// `P/8 × 256` floats: `tables[256g + b]` is the sum of `R(q)[8g + j]` over the set bits `j` of `b`.
        let tables: [Float]
        /// `Σ R(q)_j`.
        let sum: Float
        /// `‖q‖`.
        let norm: Float
    }

    /// Rotates `query` and builds its lookup tables, once per query.
    public func prepareQuery(_ query: UnsafePointer<Float>) -> Query {
        let p = paddedDimension
        var w = [Float](repeating: 0, count: p)
        w.withUnsafeMutableBufferPointer { rotate(query, into: $0.baseAddress!) }
        var sum: Float = 0
        for j in 0..<p { sum += w[j] }
        var tables = [Float](repeating: 0, count: p / 8 * 256)
        w.withUnsafeBufferPointer { wb in
            tables.withUnsafeMutableBufferPointer { vecgo_rabitq_tables(wb.baseAddress!, p, $0.baseAddress!) }
        }
        return Query(query: Array(UnsafeBufferPointer(start: query, count: dimension)), tables: tables, sum: sum,
                     norm: Distance.dot(query, query, dimension).squareRoot())
    }


    /// The coefficients of one partition's scan for a prepared query (the tables are shared).
    ///
    /// - Parameters:
    ///   - q: the query, from ``prepareQuery(_:)``.
    ///   - centroid: the partition's centroid, `dimension` floats.
    ///   - metric: the distance to estimate.
    ///   - epsilon0: the width of the error bound in standard deviations.
    public func prepare(_ q: Query, centroid: UnsafePointer<Float>, metric: Metric, epsilon0: Float = 1.9) -> Prepared {
        let p = paddedDimension
        var params = vecgo_rabitq_params()
        let k = epsilon0 / Float(p - 1).squareRoot()
        params.inv_sqrt_p = inverseSqrtP
        q.query.withUnsafeBufferPointer { qp in
            switch metric {
            case .l2, .cosine:
                // w = R(q) − R(c): S1 loses each row's t, the sum loses Σ R(c) = ⟨c, R^T 1⟩.
                let sumC = onesBack.withUnsafeBufferPointer { Distance.dot(centroid, $0.baseAddress!, dimension) }
                let m = Distance.l2Squared(qp.baseAddress!, centroid, dimension).squareRoot()
                let half: Float = metric == .cosine ? 0.5 : 1
                params.sum = q.sum - sumC
                params.t_weight = 1
                params.a = half * m * m
                params.b = half
                params.c = -2 * half
                params.d = half * 2 * m * k
            case .dot:
                let qc = Distance.dot(qp.baseAddress!, centroid, dimension)
                params.sum = q.sum
                params.t_weight = 0
                params.a = -qc
                params.b = 0
                params.c = -1
                params.d = q.norm * k
            }
        }
        return Prepared(metric: metric, paddedDimension: p, tables: q.tables, params: params)
    }

    /// One query made ready to scan one partition's records: its rotation's lookup tables and
    /// the coefficients of the metric's estimate. Build it with ``RaBitQ/prepare(query:centroid:metric:epsilon0:)``.
    public struct Prepared: Sendable {
        /// The metric the estimates are distances of.
        public let metric: Metric
        let paddedDimension: Int
        /// `P/8 × 256` floats: `tables[256g + b]` is the sum of `w[8g + j]` over the set bits `j` of `b`.
        let tables: [Float]
        let params: vecgo_rabitq_params
    }

    /// Rotates `query` (minus `centroid` for `.l2` and `.cosine`) and builds its lookup tables,
    /// once per query and partition.
    ///
    /// - Parameters:
    ///   - query: `dimension` floats (of unit length for `.cosine`, as the rows are).
    ///   - centroid: the partition's centroid, `dimension` floats.
    ///   - metric: the distance to estimate.
    ///   - epsilon0: the width of the error bound in standard deviations of the estimate. At the
    ///     paper's 1.9 about 6 % of true distances fall outside the bounds (on Gaussian data);
    ///     pass 3 for about 0.3 %.
    /// - Returns: what ``estimate(_:records:count:estimates:lowerBounds:upperBounds:)`` reads.
    public func prepare(query: UnsafePointer<Float>, centroid: UnsafePointer<Float>, metric: Metric,
                        epsilon0: Float = 1.9) -> Prepared {
        let p = paddedDimension
        var w = [Float](repeating: 0, count: p)
        var params = vecgo_rabitq_params()
        let k = epsilon0 / Float(p - 1).squareRoot()
        w.withUnsafeMutableBufferPointer { wb in
            let v = wb.baseAddress!
            switch metric {
            case .l2, .cosine:
                for j in 0..<dimension { v[j] = query[j] - centroid[j] }
                let m = Distance.dot(v, v, dimension).squareRoot()
                // Cosine distance is half the squared distance of unit vectors.
                let half: Float = metric == .l2 ? 1 : 0.5
                params.a = half * m * m
                params.b = half
                params.c = -2 * half
                params.d = 2 * half * m * k
            case .dot:
                v.update(from: query, count: dimension)
                params.a = -Distance.dot(query, centroid, dimension)
                params.b = 0
                params.c = -1
                params.d = Distance.dot(query, query, dimension).squareRoot() * k
            }
            rotateInPlace(v)
            var sum: Float = 0
            for j in 0..<p { sum += v[j] }
            params.sum = sum
        }
        params.inv_sqrt_p = inverseSqrtP
        var tables = [Float](repeating: 0, count: p / 8 * 256)
        w.withUnsafeBufferPointer { wb in
            tables.withUnsafeMutableBufferPointer { vecgo_rabitq_tables(wb.baseAddress!, p, $0.baseAddress!) }
        }
        return Prepared(metric: metric, paddedDimension: p, tables: tables, params: params)
    }

    /// Estimated distances and their bounds for `count` consecutive records.
    ///
    /// - Parameters:
    ///   - prepared: the query, prepared against the centroid these records were encoded with.
    ///   - records: `count` records of ``recordBytes`` bytes each (any alignment).
    ///   - count: the number of records.
    ///   - estimates: room for `count` estimated distances.
    ///   - lowerBounds: room for `count` lower bounds (estimate − bound).
    ///   - upperBounds: when given, room for `count` upper bounds (estimate + bound).
    public func estimate(_ prepared: Prepared, records: UnsafeRawPointer, count: Int,
                         estimates: UnsafeMutablePointer<Float>, lowerBounds: UnsafeMutablePointer<Float>,
                         upperBounds: UnsafeMutablePointer<Float>? = nil) {
        precondition(prepared.paddedDimension == paddedDimension, "prepared by a quantizer of another dimension")
        guard count > 0 else { return }
        prepared.tables.withUnsafeBufferPointer { t in
            withUnsafePointer(to: prepared.params) { k in
                vecgo_rabitq_estimate(t.baseAddress!, codeBytes, k, records.assumingMemoryBound(to: UInt8.self),
                                      recordBytes, count, estimates, lowerBounds, upperBounds)
            }
        }
    }
}
