// Distance kernels chosen once at run time by a CPU check. No compiler flags are needed:
// each accelerated function carries its own target attribute, and is called only when
// the CPU reports the feature.
#include "vecgo_native.h"
#include <stdatomic.h>

#if defined(__x86_64__) || defined(__i386__)
#define VECGO_X86 1
#include <immintrin.h>
#elif defined(__aarch64__)
#define VECGO_NEON 1
#include <arm_neon.h>
#endif

// MARK: portable

static float l2sq_portable(const float *a, const float *b, size_t n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float d0 = a[i] - b[i], d1 = a[i + 1] - b[i + 1], d2 = a[i + 2] - b[i + 2], d3 = a[i + 3] - b[i + 3];
        s0 += d0 * d0; s1 += d1 * d1; s2 += d2 * d2; s3 += d3 * d3;
    }
    for (; i < n; i++) { float d = a[i] - b[i]; s0 += d * d; }
    return (s0 + s1) + (s2 + s3);
}

static float dot_portable(const float *a, const float *b, size_t n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i]; s1 += a[i + 1] * b[i + 1]; s2 += a[i + 2] * b[i + 2]; s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

#ifdef VECGO_X86
// MARK: AVX2 + FMA

__attribute__((target("avx2,fma"))) static inline float hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    __m128 sh = _mm_movehdup_ps(lo);
    __m128 s = _mm_add_ps(lo, sh);
    sh = _mm_movehl_ps(sh, s);
    s = _mm_add_ss(s, sh);
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma"))) static float l2sq_avx2(const float *a, const float *b, size_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        acc0 = _mm256_fmadd_ps(d0, d0, acc0);
        acc1 = _mm256_fmadd_ps(d1, d1, acc1);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        acc0 = _mm256_fmadd_ps(d, d, acc0);
    }
    float s = hsum256(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++) { float d = a[i] - b[i]; s += d * d; }
    return s;
}

__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b, size_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    float s = hsum256(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

// MARK: AVX-512F

__attribute__((target("avx512f"))) static float l2sq_avx512(const float *a, const float *b, size_t n) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        acc0 = _mm512_fmadd_ps(d0, d0, acc0);
        acc1 = _mm512_fmadd_ps(d1, d1, acc1);
    }
    for (; i + 16 <= n; i += 16) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        acc0 = _mm512_fmadd_ps(d, d, acc0);
    }
    if (i < n) {  // masked tail: no scalar loop
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
        acc1 = _mm512_fmadd_ps(d, d, acc1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

__attribute__((target("avx512f"))) static float dot_avx512(const float *a, const float *b, size_t n) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
    }
    for (; i + 16 <= n; i += 16) acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}
#endif

#ifdef VECGO_NEON
static float l2sq_neon(const float *a, const float *b, size_t n) {
    float32x4_t acc = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t d = vsubq_f32(vld1q_f32(a + i), vld1q_f32(b + i));
        acc = vfmaq_f32(acc, d, d);
    }
    float s = vaddvq_f32(acc);
    for (; i < n; i++) { float d = a[i] - b[i]; s += d * d; }
    return s;
}
static float dot_neon(const float *a, const float *b, size_t n) {
    float32x4_t acc = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) acc = vfmaq_f32(acc, vld1q_f32(a + i), vld1q_f32(b + i));
    float s = vaddvq_f32(acc);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}
#endif


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
    for (; i < count; i++) out[i] = l2sq_avx512(q, base + i * dim, dim);
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
    for (; i < count; i++) out[i] = dot_avx512(q, base + i * dim, dim);
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
    pair_fn l2 = l2sq_portable, dot = dot_portable;
    int chosen = 0;
#ifdef VECGO_X86
    if (level >= 2) { l2 = l2sq_avx512; dot = dot_avx512; chosen = 2; }
    else if (level == 1) { l2 = l2sq_avx2; dot = dot_avx2; chosen = 1; }
#elif defined(VECGO_NEON)
    if (level >= 3) { l2 = l2sq_neon; dot = dot_neon; chosen = 3; }
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
    pair_fn f = dot ? dot_portable : l2sq_portable;
    int used = 0;
#ifdef VECGO_X86
    if (level >= 2) {
        if (dot) dot_batch_avx512(q, base, count, dim, out); else l2sq_batch_avx512(q, base, count, dim, out);
        return 2;
    }
    if (level == 1) { f = dot ? dot_avx2 : l2sq_avx2; used = 1; }
#elif defined(VECGO_NEON)
    if (level >= 3) { f = dot ? dot_neon : l2sq_neon; used = 3; }
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
