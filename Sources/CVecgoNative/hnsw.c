// The hot path of HNSW search: the level-0 walk (best-first search with ef results) over
// node blocks that hold each node's vector and its level-0 links side by side, with a
// generation-tagged visited set, batched neighbour prefetch and inlined distance kernels.
#include "vecgo_native.h"
#include "simd_kernels.h"
#include <stdlib.h>
#include <string.h>

vecgo_hnsw_scratch *vecgo_hnsw_scratch_new(void) {
    return (vecgo_hnsw_scratch *)calloc(1, sizeof(vecgo_hnsw_scratch));
}

void vecgo_hnsw_scratch_free(vecgo_hnsw_scratch *s) {
    if (!s) return;
    free(s->marks);
    free(s->candidates);
    free(s->results);
    free(s->pending);
    free(s);
}

// Grows `*p` (elements of `size` bytes) to hold at least `need`; 0 on allocation failure.
static int reserve(void **p, size_t *cap, size_t need, size_t size) {
    if (*cap >= need) return 1;
    size_t n = *cap ? *cap : 64;
    while (n < need) n *= 2;
    void *q = realloc(*p, n * size);
    if (!q) return 0;
    *p = q;
    *cap = n;
    return 1;
}

// A fresh generation of visited marks (cleared only when the 16-bit generation wraps or the
// graph outgrew the marks) and room for the heaps.
int vecgo_hnsw_scratch_begin(vecgo_hnsw_scratch *s, size_t nodes, size_t ef, size_t degree) {
    if (s->marks_capacity < nodes) {
        size_t n = nodes < 1024 ? 1024 : nodes + nodes / 2;
        uint16_t *m = (uint16_t *)calloc(n, sizeof(uint16_t));
        if (!m) return 0;
        free(s->marks);
        s->marks = m;
        s->marks_capacity = n;
        s->generation = 0;
    }
    s->generation++;
    if (s->generation == 0) {
        memset(s->marks, 0, s->marks_capacity * sizeof(uint16_t));
        s->generation = 1;
    }
    return reserve((void **)&s->results, &s->results_capacity, ef + 1, sizeof(vecgo_scored))
        && reserve((void **)&s->candidates, &s->candidates_capacity, 4 * ef + 64, sizeof(vecgo_scored))
        && reserve((void **)&s->pending, &s->pending_capacity, degree + 1, sizeof(uint32_t));
}

// MARK: the two heaps (plain arrays, no allocation inside the walk except candidate growth)

static inline void min_push(vecgo_scored *h, size_t *n, vecgo_scored x) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) >> 1;
        if (h[p].distance <= x.distance) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static inline vecgo_scored min_pop(vecgo_scored *h, size_t *n) {
    vecgo_scored top = h[0];
    vecgo_scored last = h[--(*n)];
    size_t size = *n, i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= size) break;
        size_t c = (l + 1 < size && h[l + 1].distance < h[l].distance) ? l + 1 : l;
        if (last.distance <= h[c].distance) break;
        h[i] = h[c];
        i = c;
    }
    if (size) h[i] = last;
    return top;
}

static inline void max_push(vecgo_scored *h, size_t *n, vecgo_scored x) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) >> 1;
        if (h[p].distance >= x.distance) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static inline void max_pop(vecgo_scored *h, size_t *n) {
    vecgo_scored last = h[--(*n)];
    size_t size = *n, i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= size) break;
        size_t c = (l + 1 < size && h[l + 1].distance > h[l].distance) ? l + 1 : l;
        if (last.distance >= h[c].distance) break;
        h[i] = h[c];
        i = c;
    }
    if (size) h[i] = last;
}

static int ascending(const void *a, const void *b) {
    const vecgo_scored *x = (const vecgo_scored *)a, *y = (const vecgo_scored *)b;
    if (x->distance < y->distance) return -1;
    if (x->distance > y->distance) return 1;
    return (x->id > y->id) - (x->id < y->id);
}

// MARK: the walk, once per kernel

// The level-0 walk, instantiated per distance kernel so the kernel inlines. `DIST(q, v)` is
// the distance (smaller is closer). Visiting a node: its unvisited neighbours are marked and
// collected first and their vectors prefetched, then their distances are computed (memory
// requests overlap instead of waiting one by one).
#define VECGO_WALK(NAME, ATTR, DIST)                                                                            \
    ATTR static size_t NAME(const vecgo_hnsw_layer0 *g, vecgo_hnsw_scratch *s, const float *q, uint32_t entry, \
                            float entry_distance, size_t ef, const uint64_t *allowed) {                          \
        const uint8_t *blocks = g->blocks;                                                                       \
        const size_t stride = g->stride, links = g->links_offset, dim = g->dimension;                            \
        const size_t lines = (dim * sizeof(float) + 63) / 64, fetch = lines < 8 ? lines : 8;                     \
        uint16_t *marks = s->marks;                                                                              \
        const uint16_t gen = s->generation;                                                                      \
        vecgo_scored *res = s->results;                                                                          \
        uint32_t *pending = s->pending;                                                                          \
        size_t nres = 0, ncand = 0;                                                                              \
        marks[entry] = gen;                                                                                      \
        vecgo_scored e = {entry_distance, entry};                                                                \
        min_push(s->candidates, &ncand, e);                                                                      \
        if (!allowed || (allowed[entry >> 6] >> (entry & 63) & 1)) max_push(res, &nres, e);                      \
        while (ncand > 0) {                                                                                      \
            vecgo_scored c = min_pop(s->candidates, &ncand);                                                     \
            if (nres >= ef && c.distance > res[0].distance) break;                                               \
            const uint32_t *l = (const uint32_t *)(blocks + (size_t)c.id * stride + links);                      \
            uint32_t n = l[0], np = 0;                                                                           \
            for (uint32_t i = 0; i < n; i++) {                                                                   \
                uint32_t nb = l[1 + i];                                                                          \
                if (marks[nb] == gen) continue;                                                                  \
                marks[nb] = gen;                                                                                 \
                pending[np++] = nb;                                                                              \
                const uint8_t *v = blocks + (size_t)nb * stride;                                                 \
                for (size_t k = 0; k < fetch; k++) __builtin_prefetch(v + 64 * k, 0, 3);                         \
            }                                                                                                    \
            if (ncand > 0) __builtin_prefetch(blocks + (size_t)s->candidates[0].id * stride + links, 0, 3);      \
            for (uint32_t i = 0; i < np; i++) {                                                                  \
                uint32_t nb = pending[i];                                                                        \
                float d = DIST(q, (const float *)(blocks + (size_t)nb * stride), dim);                           \
                if (nres < ef || d < res[0].distance) {                                                          \
                    if (ncand == s->candidates_capacity                                                          \
                        && !reserve((void **)&s->candidates, &s->candidates_capacity, ncand + 1,                \
                                    sizeof(vecgo_scored)))                                                       \
                        return (size_t)-1;                                                                       \
                    vecgo_scored x = {d, nb};                                                                    \
                    min_push(s->candidates, &ncand, x);                                                          \
                    if (!allowed || (allowed[nb >> 6] >> (nb & 63) & 1)) {                                       \
                        max_push(res, &nres, x);                                                                 \
                        if (nres > ef) max_pop(res, &nres);                                                      \
                    }                                                                                            \
                }                                                                                                \
            }                                                                                                    \
        }                                                                                                        \
        return nres;                                                                                             \
    }

#define L2_PORTABLE(q, v, n) vecgo_l2sq_portable(q, v, n)
#define DOT_PORTABLE(q, v, n) (-vecgo_dot_portable(q, v, n))
VECGO_WALK(walk_l2_portable, , L2_PORTABLE)
VECGO_WALK(walk_dot_portable, , DOT_PORTABLE)
#ifdef VECGO_X86
#define L2_AVX2(q, v, n) vecgo_l2sq_avx2(q, v, n)
#define DOT_AVX2(q, v, n) (-vecgo_dot_avx2(q, v, n))
#define L2_AVX512(q, v, n) vecgo_l2sq_avx512(q, v, n)
#define DOT_AVX512(q, v, n) (-vecgo_dot_avx512(q, v, n))
VECGO_WALK(walk_l2_avx2, __attribute__((target("avx2,fma"))), L2_AVX2)
VECGO_WALK(walk_dot_avx2, __attribute__((target("avx2,fma"))), DOT_AVX2)
VECGO_WALK(walk_l2_avx512, __attribute__((target("avx512f"))), L2_AVX512)
VECGO_WALK(walk_dot_avx512, __attribute__((target("avx512f"))), DOT_AVX512)
#endif
#ifdef VECGO_NEON
#define L2_NEON(q, v, n) vecgo_l2sq_neon(q, v, n)
#define DOT_NEON(q, v, n) (-vecgo_dot_neon(q, v, n))
VECGO_WALK(walk_l2_neon, , L2_NEON)
VECGO_WALK(walk_dot_neon, , DOT_NEON)
#endif

typedef size_t (*walk_fn)(const vecgo_hnsw_layer0 *, vecgo_hnsw_scratch *, const float *, uint32_t, float, size_t,
                          const uint64_t *);

static walk_fn choose(int dot) {
    switch (vecgo_kernel_level()) {
#ifdef VECGO_X86
    case 2: return dot ? walk_dot_avx512 : walk_l2_avx512;
    case 1: return dot ? walk_dot_avx2 : walk_l2_avx2;
#endif
#ifdef VECGO_NEON
    case 3: return dot ? walk_dot_neon : walk_l2_neon;
#endif
    default: return dot ? walk_dot_portable : walk_l2_portable;
    }
}

size_t vecgo_hnsw_search0(const vecgo_hnsw_layer0 *g, vecgo_hnsw_scratch *s, const float *q, uint32_t entry,
                          float entry_distance, size_t ef, const uint64_t *allowed) {
    if (ef == 0 || !vecgo_hnsw_scratch_begin(s, g->count, ef, g->degree)) return (size_t)-1;
    // Dot-product walks rank by -dot; cosine's 1 - dot differs by a constant, added back below.
    int dot = g->metric != 0;
    float shift = g->metric == 1 ? 1.0f : 0.0f;
    size_t n = choose(dot)(g, s, q, entry, entry_distance - shift, ef, allowed);
    if (n == (size_t)-1) return n;
    qsort(s->results, n, sizeof(vecgo_scored), ascending);
    if (shift != 0) for (size_t i = 0; i < n; i++) s->results[i].distance += shift;
    return n;
}
