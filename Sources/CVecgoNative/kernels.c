// Distance kernels chosen once at run time by a CPU check. No compiler flags are needed:
// each accelerated function carries its own target attribute, and is called only when
// the CPU reports the feature.
#include "vecgo_native.h"
#include <stdatomic.h>

#include "simd_kernels.h"

#ifdef VECGO_X86
// Batched AVX-512: four rows per pass share each query load; the next rows are prefetched.
__attribute__((target("avx512f"))) static void l2sq_batch_avx512(const float *q, const float *base, size_t count,
                                                                 size_t dim, float *out) {
    size_t i = 0;
    if ((dim & 15) == 0) {
        for (; i + 4 <= count; i += 4) {
            const float *r0 = base + i * dim, *r1 = r0 + dim, *r2 = r1 + dim, *r3 = r2 + dim;
            __builtin_prefetch(r3 + dim, 0, 0);
            __builtin_prefetch(r3 + 2 * dim, 0, 0);
            __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
            for (size_t j = 0; j < dim; j += 16) {
                __m512 qv = _mm512_loadu_ps(q + j);
                __m512 d0 = _mm512_sub_ps(qv, _mm512_loadu_ps(r0 + j));
                __m512 d1 = _mm512_sub_ps(qv, _mm512_loadu_ps(r1 + j));
                __m512 d2 = _mm512_sub_ps(qv, _mm512_loadu_ps(r2 + j));
                __m512 d3 = _mm512_sub_ps(qv, _mm512_loadu_ps(r3 + j));
                a0 = _mm512_fmadd_ps(d0, d0, a0);
                a1 = _mm512_fmadd_ps(d1, d1, a1);
                a2 = _mm512_fmadd_ps(d2, d2, a2);
                a3 = _mm512_fmadd_ps(d3, d3, a3);
            }
            out[i] = _mm512_reduce_add_ps(a0);
            out[i + 1] = _mm512_reduce_add_ps(a1);
            out[i + 2] = _mm512_reduce_add_ps(a2);
            out[i + 3] = _mm512_reduce_add_ps(a3);
        }
    }
    for (; i < count; i++) out[i] = vecgo_l2sq_avx512(q, base + i * dim, dim);
}

__attribute__((target("avx512f"))) static void dot_batch_avx512(const float *q, const float *base, size_t count,
                                                                size_t dim, float *out) {
    size_t i = 0;
    if ((dim & 15) == 0) {
        for (; i + 4 <= count; i += 4) {
            const float *r0 = base + i * dim, *r1 = r0 + dim, *r2 = r1 + dim, *r3 = r2 + dim;
            __builtin_prefetch(r3 + dim, 0, 0);
            __builtin_prefetch(r3 + 2 * dim, 0, 0);
            __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
            for (size_t j = 0; j < dim; j += 16) {
                __m512 qv = _mm512_loadu_ps(q + j);
                a0 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(r0 + j), a0);
                a1 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(r1 + j), a1);
                a2 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(r2 + j), a2);
                a3 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(r3 + j), a3);
            }
            out[i] = _mm512_reduce_add_ps(a0);
            out[i + 1] = _mm512_reduce_add_ps(a1);
            out[i + 2] = _mm512_reduce_add_ps(a2);
            out[i + 3] = _mm512_reduce_add_ps(a3);
        }
    }
    for (; i < count; i++) out[i] = vecgo_dot_avx512(q, base + i * dim, dim);
}
#endif

// MARK: dispatch

typedef vecgo_pair_fn pair_fn;
static _Atomic(pair_fn) g_l2 = NULL;
static _Atomic(pair_fn) g_dot = NULL;
static _Atomic int g_level = -1;

static int detect_level(void) {
#ifdef VECGO_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
    return 0;
#elif defined(VECGO_NEON)
    return 3;
#else
    return 0;
#endif
}

static int install(int level) {
    pair_fn l2 = vecgo_l2sq_portable, dot = vecgo_dot_portable;
    int chosen = 0;
#ifdef VECGO_X86
    if (level >= 2) { l2 = vecgo_l2sq_avx512; dot = vecgo_dot_avx512; chosen = 2; }
    else if (level == 1) { l2 = vecgo_l2sq_avx2; dot = vecgo_dot_avx2; chosen = 1; }
#elif defined(VECGO_NEON)
    if (level >= 3) { l2 = vecgo_l2sq_neon; dot = vecgo_dot_neon; chosen = 3; }
#endif
    atomic_store(&g_l2, l2);
    atomic_store(&g_dot, dot);
    atomic_store(&g_level, chosen);
    return chosen;
}

static inline void ensure_init(void) {
    if (atomic_load_explicit(&g_level, memory_order_acquire) < 0) install(detect_level());
}

int vecgo_kernel_level(void) { ensure_init(); return atomic_load(&g_level); }

int vecgo_batch_at_level(int level, int dot, const float *q, const float *base, size_t count, size_t dim, float *out) {
    int best = detect_level();
    if (level > best) level = best;
    pair_fn f = dot ? vecgo_dot_portable : vecgo_l2sq_portable;
    int used = 0;
#ifdef VECGO_X86
    if (level >= 2) {
        if (dot) dot_batch_avx512(q, base, count, dim, out); else l2sq_batch_avx512(q, base, count, dim, out);
        return 2;
    }
    if (level == 1) { f = dot ? vecgo_dot_avx2 : vecgo_l2sq_avx2; used = 1; }
#elif defined(VECGO_NEON)
    if (level >= 3) { f = dot ? vecgo_dot_neon : vecgo_l2sq_neon; used = 3; }
#endif
    for (size_t i = 0; i < count; i++) out[i] = f(q, base + i * dim, dim);
    return used;
}

float vecgo_l2sq_f32(const float *a, const float *b, size_t n) {
    ensure_init();
    return atomic_load_explicit(&g_l2, memory_order_relaxed)(a, b, n);
}

float vecgo_dot_f32(const float *a, const float *b, size_t n) {
    ensure_init();
    return atomic_load_explicit(&g_dot, memory_order_relaxed)(a, b, n);
}

void vecgo_l2sq_batch_f32(const float *q, const float *base, size_t count, size_t dim, float *out) {
    ensure_init();
#ifdef VECGO_X86
    if (atomic_load_explicit(&g_level, memory_order_relaxed) == 2) { l2sq_batch_avx512(q, base, count, dim, out); return; }
#endif
    pair_fn f = atomic_load_explicit(&g_l2, memory_order_relaxed);
    for (size_t i = 0; i < count; i++) out[i] = f(q, base + i * dim, dim);
}

void vecgo_dot_batch_f32(const float *q, const float *base, size_t count, size_t dim, float *out) {
    ensure_init();
#ifdef VECGO_X86
    if (atomic_load_explicit(&g_level, memory_order_relaxed) == 2) { dot_batch_avx512(q, base, count, dim, out); return; }
#endif
    pair_fn f = atomic_load_explicit(&g_dot, memory_order_relaxed);
    for (size_t i = 0; i < count; i++) out[i] = f(q, base + i * dim, dim);
}

vecgo_pair_fn vecgo_l2sq_fn(void) { ensure_init(); return atomic_load(&g_l2); }
vecgo_pair_fn vecgo_dot_fn(void) { ensure_init(); return atomic_load(&g_dot); }
