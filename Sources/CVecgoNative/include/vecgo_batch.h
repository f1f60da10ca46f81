// Batched distances: many queries against many rows at once, tile by tile (a register-blocked
// matrix-product micro-kernel), for the batch search API of IndexCore.
#ifndef VECGO_BATCH_H
#define VECGO_BATCH_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Rows per packed group: the kernel reads base rows in groups of this many, stored component
/// by component (group g, component j at packed[(g * dim + j) * 16 .. + 16]).
#define VECGO_TILE_GROUP 16

/// Floats needed to pack `rows` rows of `dim` floats (rows rounded up to a whole group).
size_t vecgo_tile_packed_floats(size_t rows, size_t dim);
/// Packs `rows` row-major vectors of `dim` floats into groups of 16 rows, component by
/// component; the last group's missing rows are zero.
void vecgo_tile_pack(const float *base, size_t rows, size_t dim, float *packed);
/// Squared norms of `rows` row-major vectors of `dim` floats.
void vecgo_tile_norms(const float *v, size_t rows, size_t dim, float *out);

/// Distances of `nq` row-major queries with `rows` packed rows, into out[i * ld + r] (ld ≥ rows).
/// `mode` 0: squared L2 from the expansion qnorms[i] + xnorms[r] - 2 q·x (both norms needed);
/// 1: negative inner product; 2: 1 - inner product (cosine of normalised vectors; norms unused,
/// may be NULL). Chooses the AVX-512, AVX2+FMA or portable kernel by the CPU, once.
void vecgo_tile_distances(int mode, const float *queries, const float *qnorms, size_t nq, size_t dim,
                          const float *packed, const float *xnorms, size_t rows, float *out, size_t ld);
/// The same at kernel `level` (0 portable, 1 AVX2+FMA, 2 AVX-512; capped at what this CPU has);
/// returns the level used. For tests comparing every implementation.
int vecgo_tile_distances_at_level(int level, int mode, const float *queries, const float *qnorms, size_t nq, size_t dim,
                                  const float *packed, const float *xnorms, size_t rows, float *out, size_t ld);

/// Writes the indexes i < n with d[i] <= threshold into idx, in order; returns how many.
size_t vecgo_select_below(const float *d, size_t n, float threshold, uint32_t *idx);

#ifdef __cplusplus
}
#endif
#endif
