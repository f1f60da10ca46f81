// Batched distances, many queries × many rows: rows are packed 16 to a group component by
// component, so a register-blocked micro-kernel broadcasts one query component and multiplies
// it with 16 (AVX2: 8 × 2) rows at once, keeping a tile of queries × rows in registers while
// it walks the dimension. Kernels chosen once at run time by a CPU check, as in kernels.c.
#include "vecgo_batch.h"
#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define VECGO_X86 1
#include <immintrin.h>
#endif

#define G VECGO_TILE_GROUP

size_t vecgo_tile_packed_floats(size_t rows, size_t dim) { return (rows + G - 1) / G * G * dim; }

void vecgo_tile_pack(const float *base, size_t rows, size_t dim, float *packed) {
    size_t groups = (rows + G - 1) / G;
    for (size_t g = 0; g < groups; g++) {
        float *dst = packed + g * dim * G;
        size_t n = rows - g * G < G ? rows - g * G : G;
        if (n < G) memset(dst, 0, dim * G * sizeof(float));
        for (size_t r = 0; r < n; r++) {
            const float *src = base + (g * G + r) * dim;
            for (size_t j = 0; j < dim; j++) dst[j * G + r] = src[j];
        }
    }
}

void vecgo_tile_norms(const float *v, size_t rows, size_t dim, float *out) {
    for (size_t r = 0; r < rows; r++) {
        const float *x = v + r * dim;
        float s = 0;
        for (size_t j = 0; j < dim; j++) s += x[j] * x[j];
        out[r] = s;
    }
}

static inline float finish1(int mode, float dot, float qn, float xn) {
    if (mode == 0) { float d = qn + xn - 2 * dot; return d > 0 ? d : 0; }
    return mode == 1 ? -dot : 1 - dot;
}

// MARK: portable

static void tile_portable(int mode, const float *Q, const float *qn, size_t nq, size_t dim,
                          const float *P, const float *xn, size_t rows, float *out, size_t ld) {
    size_t groups = (rows + G - 1) / G;
    for (size_t g = 0; g < groups; g++) {
        const float *p = P + g * dim * G;
        size_t n = rows - g * G < G ? rows - g * G : G;
        for (size_t i = 0; i < nq; i++) {
            float acc[G] = {0};
            const float *q = Q + i * dim;
            for (size_t j = 0; j < dim; j++)
                for (size_t r = 0; r < G; r++) acc[r] += q[j] * p[j * G + r];
            for (size_t r = 0; r < n; r++)
                out[i * ld + g * G + r] = finish1(mode, acc[r], qn ? qn[i] : 0, xn ? xn[g * G + r] : 0);
        }
    }
}

#ifdef VECGO_X86
// MARK: AVX2 + FMA: 6 queries × 16 rows (12 accumulators)

#define MR2 6
__attribute__((target("avx2,fma"))) static inline __m256 finish256(int mode, __m256 dot, float qn, __m256 xn) {
    if (mode == 0) {
        __m256 d = _mm256_fnmadd_ps(_mm256_set1_ps(2), dot, _mm256_add_ps(_mm256_set1_ps(qn), xn));
        return _mm256_max_ps(d, _mm256_setzero_ps());
    }
    return mode == 1 ? _mm256_sub_ps(_mm256_setzero_ps(), dot) : _mm256_sub_ps(_mm256_set1_ps(1), dot);
}

__attribute__((target("avx2,fma"))) static inline void store256(float *dst, __m256 v, size_t valid) {
    if (valid >= 8) { _mm256_storeu_ps(dst, v); return; }
    float tmp[8];
    _mm256_storeu_ps(tmp, v);
    for (size_t r = 0; r < valid; r++) dst[r] = tmp[r];
}

__attribute__((target("avx2,fma"))) static void tile_avx2(int mode, const float *Q, const float *qn, size_t nq, size_t dim,
                                                          const float *P, const float *xn, size_t rows, float *out, size_t ld) {
    size_t groups = (rows + G - 1) / G;
    for (size_t g = 0; g < groups; g++) {
        const float *p = P + g * dim * G;
        size_t r0 = g * G, n = rows - r0 < G ? rows - r0 : G;
        size_t n0 = n < 8 ? n : 8, n1 = n > 8 ? n - 8 : 0;
        __m256 xn0 = _mm256_setzero_ps(), xn1 = _mm256_setzero_ps();
        if (mode == 0) {
            float t[G] = {0};
            for (size_t r = 0; r < n; r++) t[r] = xn[r0 + r];
            xn0 = _mm256_loadu_ps(t);
            xn1 = _mm256_loadu_ps(t + 8);
        }
        size_t i = 0;
        for (; i + MR2 <= nq; i += MR2) {
            __m256 acc[MR2][2];
            for (int a = 0; a < MR2; a++) { acc[a][0] = _mm256_setzero_ps(); acc[a][1] = _mm256_setzero_ps(); }
            const float *q = Q + i * dim;
            for (size_t j = 0; j < dim; j++) {
                __m256 b0 = _mm256_loadu_ps(p + j * G), b1 = _mm256_loadu_ps(p + j * G + 8);
                for (int a = 0; a < MR2; a++) {
                    __m256 qa = _mm256_broadcast_ss(q + a * dim + j);
                    acc[a][0] = _mm256_fmadd_ps(qa, b0, acc[a][0]);
                    acc[a][1] = _mm256_fmadd_ps(qa, b1, acc[a][1]);
                }
            }
            for (int a = 0; a < MR2; a++) {
                float qa = qn ? qn[i + a] : 0;
                float *dst = out + (i + a) * ld + r0;
                store256(dst, finish256(mode, acc[a][0], qa, xn0), n0);
                if (n1) store256(dst + 8, finish256(mode, acc[a][1], qa, xn1), n1);
            }
        }
        for (; i < nq; i++) {
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
            const float *q = Q + i * dim;
            for (size_t j = 0; j < dim; j++) {
                __m256 qa = _mm256_broadcast_ss(q + j);
                a0 = _mm256_fmadd_ps(qa, _mm256_loadu_ps(p + j * G), a0);
                a1 = _mm256_fmadd_ps(qa, _mm256_loadu_ps(p + j * G + 8), a1);
            }
            float qa = qn ? qn[i] : 0;
            float *dst = out + i * ld + r0;
            store256(dst, finish256(mode, a0, qa, xn0), n0);
            if (n1) store256(dst + 8, finish256(mode, a1, qa, xn1), n1);
        }
    }
}

// MARK: AVX-512: 8 queries × 32 rows (16 accumulators)

#define MR5 8
__attribute__((target("avx512f"))) static inline __m512 finish512(int mode, __m512 dot, float qn, __m512 xn) {
    if (mode == 0) {
        __m512 d = _mm512_fnmadd_ps(_mm512_set1_ps(2), dot, _mm512_add_ps(_mm512_set1_ps(qn), xn));
        return _mm512_max_ps(d, _mm512_setzero_ps());
    }
    return mode == 1 ? _mm512_sub_ps(_mm512_setzero_ps(), dot) : _mm512_sub_ps(_mm512_set1_ps(1), dot);
}

__attribute__((target("avx512f"))) static inline __mmask16 rows_mask(size_t valid) {
    return valid >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << valid) - 1u);
}

__attribute__((target("avx512f"))) static void tile_avx512(int mode, const float *Q, const float *qn, size_t nq, size_t dim,
                                                           const float *P, const float *xn, size_t rows, float *out, size_t ld) {
    size_t groups = (rows + G - 1) / G;
    for (size_t g = 0; g < groups; g += 2) {
        int two = g + 1 < groups;
        const float *p0 = P + g * dim * G, *p1 = two ? p0 + dim * G : p0;
        size_t r0 = g * G;
        __mmask16 m0 = rows_mask(rows - r0), m1 = two ? rows_mask(rows - r0 - G) : 0;
        __m512 xn0 = _mm512_setzero_ps(), xn1 = _mm512_setzero_ps();
        if (mode == 0) {
            xn0 = _mm512_maskz_loadu_ps(m0, xn + r0);
            if (two) xn1 = _mm512_maskz_loadu_ps(m1, xn + r0 + G);
        }
        size_t i = 0;
        for (; i + MR5 <= nq; i += MR5) {
            __m512 acc[MR5][2];
            for (int a = 0; a < MR5; a++) { acc[a][0] = _mm512_setzero_ps(); acc[a][1] = _mm512_setzero_ps(); }
            const float *q = Q + i * dim;
            for (size_t j = 0; j < dim; j++) {
                __m512 b0 = _mm512_loadu_ps(p0 + j * G), b1 = _mm512_loadu_ps(p1 + j * G);
                for (int a = 0; a < MR5; a++) {
                    __m512 qa = _mm512_set1_ps(q[a * dim + j]);
                    acc[a][0] = _mm512_fmadd_ps(qa, b0, acc[a][0]);
                    acc[a][1] = _mm512_fmadd_ps(qa, b1, acc[a][1]);
                }
            }
            for (int a = 0; a < MR5; a++) {
                float qa = qn ? qn[i + a] : 0;
                float *dst = out + (i + a) * ld + r0;
                _mm512_mask_storeu_ps(dst, m0, finish512(mode, acc[a][0], qa, xn0));
                if (two) _mm512_mask_storeu_ps(dst + G, m1, finish512(mode, acc[a][1], qa, xn1));
            }
        }
        for (; i < nq; i++) {
            __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
            const float *q = Q + i * dim;
            for (size_t j = 0; j < dim; j++) {
                __m512 qa = _mm512_set1_ps(q[j]);
                a0 = _mm512_fmadd_ps(qa, _mm512_loadu_ps(p0 + j * G), a0);
                a1 = _mm512_fmadd_ps(qa, _mm512_loadu_ps(p1 + j * G), a1);
            }
            float qa = qn ? qn[i] : 0;
            float *dst = out + i * ld + r0;
            _mm512_mask_storeu_ps(dst, m0, finish512(mode, a0, qa, xn0));
            if (two) _mm512_mask_storeu_ps(dst + G, m1, finish512(mode, a1, qa, xn1));
        }
    }
}

__attribute__((target("avx512f"))) static size_t select_avx512(const float *d, size_t n, float threshold, uint32_t *idx) {
    size_t found = 0, i = 0;
    __m512 t = _mm512_set1_ps(threshold);
    for (; i + 16 <= n; i += 16) {
        __mmask16 m = _mm512_cmp_ps_mask(_mm512_loadu_ps(d + i), t, _CMP_LE_OQ);
        while (m) {  // few rows pass once the heaps are full: walk the set bits
            unsigned b = (unsigned)__builtin_ctz(m);
            idx[found++] = (uint32_t)(i + b);
            m &= (__mmask16)(m - 1);
        }
    }
    for (; i < n; i++) if (d[i] <= threshold) idx[found++] = (uint32_t)i;
    return found;
}
#endif

// MARK: dispatch

static _Atomic int g_tile_level = -1;

static int tile_detect(void) {
#ifdef VECGO_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
    return 0;
}

static int tile_run(int level, int mode, const float *queries, const float *qnorms, size_t nq, size_t dim,
                    const float *packed, const float *xnorms, size_t rows, float *out, size_t ld) {
#ifdef VECGO_X86
    if (level >= 2) { tile_avx512(mode, queries, qnorms, nq, dim, packed, xnorms, rows, out, ld); return 2; }
    if (level == 1) { tile_avx2(mode, queries, qnorms, nq, dim, packed, xnorms, rows, out, ld); return 1; }
#endif
    tile_portable(mode, queries, qnorms, nq, dim, packed, xnorms, rows, out, ld);
    return 0;
}

int vecgo_tile_distances_at_level(int level, int mode, const float *queries, const float *qnorms, size_t nq, size_t dim,
                                  const float *packed, const float *xnorms, size_t rows, float *out, size_t ld) {
    int best = tile_detect();
    return tile_run(level > best ? best : level, mode, queries, qnorms, nq, dim, packed, xnorms, rows, out, ld);
}

static inline int tile_level(void) {
    int l = atomic_load_explicit(&g_tile_level, memory_order_relaxed);
    if (l < 0) { l = tile_detect(); atomic_store(&g_tile_level, l); }
    return l;
}

void vecgo_tile_distances(int mode, const float *queries, const float *qnorms, size_t nq, size_t dim,
                          const float *packed, const float *xnorms, size_t rows, float *out, size_t ld) {
    tile_run(tile_level(), mode, queries, qnorms, nq, dim, packed, xnorms, rows, out, ld);
}

size_t vecgo_select_below(const float *d, size_t n, float threshold, uint32_t *idx) {
#ifdef VECGO_X86
    if (tile_level() >= 2) return select_avx512(d, n, threshold, idx);
#endif
    size_t found = 0;
    for (size_t i = 0; i < n; i++) if (d[i] <= threshold) idx[found++] = (uint32_t)i;
    return found;
}
