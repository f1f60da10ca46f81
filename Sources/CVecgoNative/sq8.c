// SQ8 (8-bit scalar quantisation) scan kernels: a float query against rows of u8 codes.
#include "vecgo_native.h"

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx2,fma"))) static float sq8_l2_avx2(const float *qm, const float *scale, const uint8_t *c, size_t dim) {
    __m256 acc = _mm256_setzero_ps();
    size_t j = 0;
    for (; j + 8 <= dim; j += 8) {
        __m256 code = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(c + j))));
        __m256 d = _mm256_fnmadd_ps(code, _mm256_loadu_ps(scale + j), _mm256_loadu_ps(qm + j));
        acc = _mm256_fmadd_ps(d, d, acc);
    }
    __m128 lo = _mm256_castps256_ps128(acc), hi = _mm256_extractf128_ps(acc, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_hadd_ps(lo, lo);
    lo = _mm_hadd_ps(lo, lo);
    float s = _mm_cvtss_f32(lo);
    for (; j < dim; j++) { float d = qm[j] - (float)c[j] * scale[j]; s += d * d; }
    return s;
}

__attribute__((target("avx2,fma"))) static float sq8_dot_avx2(const float *qs, const uint8_t *c, size_t dim) {
    __m256 acc = _mm256_setzero_ps();
    size_t j = 0;
    for (; j + 8 <= dim; j += 8) {
        __m256 code = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(c + j))));
        acc = _mm256_fmadd_ps(code, _mm256_loadu_ps(qs + j), acc);
    }
    __m128 lo = _mm256_castps256_ps128(acc), hi = _mm256_extractf128_ps(acc, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_hadd_ps(lo, lo);
    lo = _mm_hadd_ps(lo, lo);
    float s = _mm_cvtss_f32(lo);
    for (; j < dim; j++) s += qs[j] * (float)c[j];
    return s;
}
#endif

static float sq8_l2_portable(const float *qm, const float *scale, const uint8_t *c, size_t dim) {
    float s = 0;
    for (size_t j = 0; j < dim; j++) { float d = qm[j] - (float)c[j] * scale[j]; s += d * d; }
    return s;
}

static float sq8_dot_portable(const float *qs, const uint8_t *c, size_t dim) {
    float s = 0;
    for (size_t j = 0; j < dim; j++) s += qs[j] * (float)c[j];
    return s;
}

void vecgo_sq8_l2_batch(const float *qm, const float *scale, const uint8_t *codes, size_t count, size_t dim, float *out) {
#if defined(__x86_64__)
    if (vecgo_kernel_level() >= 1) {
        for (size_t i = 0; i < count; i++) out[i] = sq8_l2_avx2(qm, scale, codes + i * dim, dim);
        return;
    }
#endif
    for (size_t i = 0; i < count; i++) out[i] = sq8_l2_portable(qm, scale, codes + i * dim, dim);
}

void vecgo_sq8_dot_batch(const float *qs, const uint8_t *codes, size_t count, size_t dim, float *out) {
#if defined(__x86_64__)
    if (vecgo_kernel_level() >= 1) {
        for (size_t i = 0; i < count; i++) out[i] = sq8_dot_avx2(qs, codes + i * dim, dim);
        return;
    }
#endif
    for (size_t i = 0; i < count; i++) out[i] = sq8_dot_portable(qs, codes + i * dim, dim);
}
