// The C interface of the native kernels: distances (pairs and batches), CRC32C, SQ8 and RaBitQ
// scans, HNSW walks and per-thread priority, chosen at run time by a CPU check.
#ifndef VECGO_NATIVE_H
#define VECGO_NATIVE_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Which implementation the run-time CPU check chose: 0 portable, 1 AVX2+FMA, 2 AVX-512F, 3 NEON.
int vecgo_kernel_level(void);
/// A batch of distances computed at kernel `level` (0 portable, 1 AVX2+FMA, 2 AVX-512; capped
/// at what this CPU has), `dot` nonzero for inner products, else squared L2. Returns the level
/// used. The kernels everything else uses are not changed: for tests comparing every level.
int vecgo_batch_at_level(int level, int dot, const float *q, const float *base, size_t count, size_t dim, float *out);

/// Squared Euclidean distance of two float32 vectors of `n` elements.
float vecgo_l2sq_f32(const float *a, const float *b, size_t n);
/// Inner product of two float32 vectors of `n` elements.
float vecgo_dot_f32(const float *a, const float *b, size_t n);
/// One query against `count` contiguous vectors of `dim` floats: out[i] = l2sq(q, base + i*dim).
void vecgo_l2sq_batch_f32(const float *q, const float *base, size_t count, size_t dim, float *out);
/// One query against `count` contiguous vectors of `dim` floats: out[i] = dot(q, base + i*dim).
void vecgo_dot_batch_f32(const float *q, const float *base, size_t count, size_t dim, float *out);

/// CRC32C (Castagnoli), continuing from `crc` (pass 0 to start). SSE4.2 when available.
uint32_t vecgo_crc32c(uint32_t crc, const void *data, size_t len);

/// Lowers the scheduling priority of the calling thread (only it: on Linux a thread has its
/// own nice value) to `nice` (0 normal, 19 lowest). Returns 0, or -1 when the system refused.
int vecgo_set_thread_nice(int nice);

#ifdef __cplusplus
}
#endif
#ifdef __cplusplus
extern "C" {
#endif
/// SQ8 scan: out[i] = sum_j (qm[j] - codes[i*dim+j] * scale[j])^2, where qm = query - min.
void vecgo_sq8_l2_batch(const float *qm, const float *scale, const uint8_t *codes, size_t count, size_t dim, float *out);
/// SQ8 scan: out[i] = sum_j qs[j] * codes[i*dim+j], where qs = query * scale (add sum(query*min) for the dot product).
void vecgo_sq8_dot_batch(const float *qs, const uint8_t *codes, size_t count, size_t dim, float *out);

/// RaBitQ rotation in place: `rounds` times, multiply element i of the `p` floats at `v` by
/// signs[r*p + i] (±1), apply the Walsh–Hadamard butterflies (for h = 1, 2, …, p/2; for each
/// block start i, step 2h; for j in i..<i+h: (v[j], v[j+h]) = (v[j] + v[j+h], v[j] - v[j+h])),
/// then multiply every element by `scale` (1/sqrt(p)). `p` is a power of two.
void vecgo_rabitq_rotate(float *v, const float *signs, size_t p, size_t rounds, float scale);
/// RaBitQ lookup tables of the rotated query `w` (`p` floats): for group g (p/8 of them),
/// tables[256*g + b] = sum of w[8g + j] over the set bits j of b.
void vecgo_rabitq_tables(const float *w, size_t p, float *tables);
/// One round of the RaBitQ rotation's transpose: Walsh–Hadamard butterflies, then scale, then
/// the round's signs (rounds applied last to first give R^T).
void vecgo_rabitq_rotate_transposed_round(float *v, const float *signs, size_t p, float scale);
/// The per-query coefficients of a RaBitQ scan. For a row with norm n, factor x0, centroid
/// term t and ip = (2 * (S1 - t_weight * t) - sum) * inv_sqrt_p: estimate = a + b*n*n + c*n*ip/x0,
/// bound = d * n * sqrt(max(0, 1 - x0*x0)) / x0.
typedef struct {
    float sum, inv_sqrt_p, a, b, c, d, t_weight;
} vecgo_rabitq_params;
/// RaBitQ scan of `count` records, `stride` bytes apart, each `groups` code bytes followed by
/// the row's n, x0 and t (float32, native = little-endian order, any alignment): estimates,
/// lower bounds (estimate - bound) and, when `upper` is not NULL, upper bounds.
void vecgo_rabitq_estimate(const float *tables, size_t groups, const vecgo_rabitq_params *k,
                           const uint8_t *records, size_t stride, size_t count,
                           float *estimates, float *lower, float *upper);

/// A search candidate: a node and its distance to the query.
typedef struct {
    float distance;
    uint32_t id;
} vecgo_scored;

/// A graph's level 0 as HNSW searches it: node `i` is the block at `blocks + i * stride`,
/// holding the node's `dimension` floats at offset 0 and, at `links_offset`, a uint32 count
/// followed by up to `degree` uint32 neighbour ids.
typedef struct {
    const uint8_t *blocks;
    size_t stride, links_offset, dimension, degree, count;
    /// 0 squared L2, 1 cosine (1 - dot), 2 negative dot product.
    int metric;
} vecgo_hnsw_layer0;

/// One search's working memory: visited marks tagged with a generation (no clearing per
/// query), the candidate and result heaps, the neighbours awaiting distances. Used by one
/// search at a time; grown on demand.
typedef struct {
    uint16_t *marks;
    size_t marks_capacity;
    uint16_t generation;
    vecgo_scored *candidates;
    size_t candidates_capacity;
    /// After `vecgo_hnsw_search0`: its results, nearest first (ties by id).
    vecgo_scored *results;
    size_t results_capacity;
    uint32_t *pending;
    size_t pending_capacity;
} vecgo_hnsw_scratch;

/// A zeroed scratch (NULL when out of memory); free with `vecgo_hnsw_scratch_free`.
vecgo_hnsw_scratch *vecgo_hnsw_scratch_new(void);
void vecgo_hnsw_scratch_free(vecgo_hnsw_scratch *s);
/// Starts a walk over `nodes` nodes with up to `ef` results and `degree` links per node: a new
/// visited generation (marks cleared only on wrap or growth). 0 when out of memory.
int vecgo_hnsw_scratch_begin(vecgo_hnsw_scratch *s, size_t nodes, size_t ef, size_t degree);

/// The `ef` nearest nodes to `q` on level 0, by best-first search from `entry` (at
/// `entry_distance`), into `s->results` nearest first; returns how many, or SIZE_MAX when out of
/// memory. With `allowed` (a bitmap of `count` bits, 64 per word), every node is traversed but
/// only allowed ones enter the results.
size_t vecgo_hnsw_search0(const vecgo_hnsw_layer0 *g, vecgo_hnsw_scratch *s, const float *q, uint32_t entry,
                          float entry_distance, size_t ef, const uint64_t *allowed);

/// Hints the CPU to fetch the cache line at `p` (graph traversal fetches the next vectors early).
static inline void vecgo_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

/// The pair kernels in force, for callers that call them in a tight loop (no dispatch per call).
typedef float (*vecgo_pair_fn)(const float *, const float *, size_t);
vecgo_pair_fn vecgo_l2sq_fn(void);
vecgo_pair_fn vecgo_dot_fn(void);
#ifdef __cplusplus
}
#endif

#endif
