#ifndef VECGO_COPENSSL_SHIM_H
#define VECGO_COPENSSL_SHIM_H
// The low-level SHA-256 functions keep no shared state (unlike the one-shot HMAC() and
// EVP fetches of OpenSSL 3, which were seen failing when many threads start signing at once).
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>
#include <string.h>

/// One-shot SHA-256. `out` must hold 32 bytes.
static inline void vecgo_sha256(const void *data, size_t len, unsigned char *out) {
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, data, len);
    SHA256_Final(out, &c);
}

/// HMAC-SHA256 (RFC 2104) over the thread-safe SHA-256 above. `out` must hold 32 bytes.
/// Returns 1.
static inline int vecgo_hmac_sha256(const void *key, int key_len, const void *data, size_t data_len,
                                    unsigned char *out) {
    unsigned char k[64], pad[64], inner[32];
    memset(k, 0, sizeof k);
    if (key_len > 64) {
        vecgo_sha256(key, (size_t)key_len, k);
    } else if (key_len > 0) {
        memcpy(k, key, (size_t)key_len);
    }
    SHA256_CTX c;
    for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x36;
    SHA256_Init(&c);
    SHA256_Update(&c, pad, 64);
    SHA256_Update(&c, data, data_len);
    SHA256_Final(inner, &c);
    for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x5c;
    SHA256_Init(&c);
    SHA256_Update(&c, pad, 64);
    SHA256_Update(&c, inner, 32);
    SHA256_Final(out, &c);
    return 1;
}
#endif
