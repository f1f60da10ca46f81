// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), SSE4.2 instruction when available,
// slicing-by-8 tables otherwise. Standard init/final XOR of 0xFFFFFFFF, so
// vecgo_crc32c(0, "123456789", 9) == 0xE3069283.
#include "vecgo_native.h"
#include <stdatomic.h>


#if defined(__x86_64__)
#include <nmmintrin.h>
#define VECGO_CRC_X86 1
#endif

static uint32_t table[8][256];
static _Atomic int table_ready = 0;

static void build_table(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = table[0][n];
        for (int s = 1; s < 8; s++) { c = table[0][c & 0xff] ^ (c >> 8); table[s][n] = c; }
    }
    atomic_store_explicit(&table_ready, 1, memory_order_release);
}

static uint32_t crc_soft(uint32_t crc, const unsigned char *p, size_t len) {
    if (!atomic_load_explicit(&table_ready, memory_order_acquire)) build_table();
    while (len >= 8) {
        uint64_t w;
        __builtin_memcpy(&w, p, 8);
        w ^= crc;  // little-endian hosts only use this path on x86/arm64
        crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^ table[5][(w >> 16) & 0xff] ^
              table[4][(w >> 24) & 0xff] ^ table[3][(w >> 32) & 0xff] ^ table[2][(w >> 40) & 0xff] ^
              table[1][(w >> 48) & 0xff] ^ table[0][(w >> 56) & 0xff];
        p += 8; len -= 8;
    }
    while (len--) crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

#ifdef VECGO_CRC_X86
static _Atomic int hw_state = -1;  // -1 unknown, 0 no, 1 yes

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const unsigned char *p, size_t len) {
    uint64_t c = crc;
    while (len >= 8) { uint64_t w; __builtin_memcpy(&w, p, 8); c = _mm_crc32_u64(c, w); p += 8; len -= 8; }
    uint32_t c32 = (uint32_t)c;
    while (len--) c32 = _mm_crc32_u8(c32, *p++);
    return c32;
}
#endif

uint32_t vecgo_crc32c(uint32_t crc, const void *data, size_t len) {
    const unsigned char *p = (const unsigned char *)data;
    crc = ~crc;
#ifdef VECGO_CRC_X86
    int hw = atomic_load_explicit(&hw_state, memory_order_relaxed);
    if (hw < 0) { __builtin_cpu_init(); hw = __builtin_cpu_supports("sse4.2") ? 1 : 0; atomic_store(&hw_state, hw); }
    if (hw) return ~crc_hw(crc, p, len);
#endif
    return ~crc_soft(crc, p, len);
}
