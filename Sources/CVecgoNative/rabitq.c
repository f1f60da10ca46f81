// RaBitQ kernels: the randomised Hadamard rotation, the per-query lookup tables and the scan
// of 1-bit code records. Plain C: the rotation has to give the same floats on every machine
// (each statement does one rounding, so no contraction into fused multiply-adds can occur).
#include "vecgo_native.h"
#include <math.h>
#include <string.h>

// Walsh–Hadamard butterflies in Sylvester (natural) order, unscaled.
static void hadamard(float *v, size_t p) {
    for (size_t h = 1; h < p; h <<= 1) {
        for (size_t i = 0; i < p; i += h << 1) {
            for (size_t j = i; j < i + h; j++) {
                float a = v[j], b = v[j + h];
                v[j] = a + b;
                v[j + h] = a - b;
            }
        }
    }
}

void vecgo_rabitq_rotate(float *v, const float *signs, size_t p, size_t rounds, float scale) {
    for (size_t r = 0; r < rounds; r++) {
        const float *s = signs + r * p;
        for (size_t i = 0; i < p; i++) v[i] = v[i] * s[i];
        hadamard(v, p);
        for (size_t i = 0; i < p; i++) v[i] = v[i] * scale;
    }
}

void vecgo_rabitq_rotate_transposed_round(float *v, const float *signs, size_t p, float scale) {
    hadamard(v, p);
    for (size_t i = 0; i < p; i++) v[i] = v[i] * scale * signs[i];
}

void vecgo_rabitq_tables(const float *w, size_t p, float *tables) {
    for (size_t g = 0; g < p / 8; g++) {
        const float *x = w + 8 * g;
        float *t = tables + 256 * g;
        t[0] = 0;
        // Entry b adds the element of b's lowest set bit to the entry without that bit.
        for (unsigned b = 1; b < 256; b++) t[b] = t[b & (b - 1)] + x[__builtin_ctz(b)];
    }
}

static inline float rabitq_s1(const float *tables, const uint8_t *code, size_t groups) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t g = 0;
    for (; g + 4 <= groups; g += 4) {
        s0 += tables[(g + 0) * 256 + code[g + 0]];
        s1 += tables[(g + 1) * 256 + code[g + 1]];
        s2 += tables[(g + 2) * 256 + code[g + 2]];
        s3 += tables[(g + 3) * 256 + code[g + 3]];
    }
    for (; g < groups; g++) s0 += tables[g * 256 + code[g]];
    return (s0 + s1) + (s2 + s3);
}

void vecgo_rabitq_estimate(const float *tables, size_t groups, const vecgo_rabitq_params *k,
                           const uint8_t *records, size_t stride, size_t count,
                           float *estimates, float *lower, float *upper) {
    for (size_t i = 0; i < count; i++) {
        const uint8_t *rec = records + i * stride;
        float n, x0, ct;
        memcpy(&n, rec + groups, 4);
        memcpy(&x0, rec + groups + 4, 4);
        memcpy(&ct, rec + groups + 8, 4);
        float ip = (2 * (rabitq_s1(tables, rec, groups) - k->t_weight * ct) - k->sum) * k->inv_sqrt_p;
        float e = k->a + k->b * n * n + k->c * n * ip / x0;
        float t = 1 - x0 * x0;
        float bound = k->d * n * sqrtf(t > 0 ? t : 0) / x0;
        estimates[i] = e;
        lower[i] = e - bound;
        if (upper) upper[i] = e + bound;
    }
}
