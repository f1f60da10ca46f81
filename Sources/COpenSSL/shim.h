#ifndef VECGO_COPENSSL_SHIM_H
#define VECGO_COPENSSL_SHIM_H
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

/// One-shot HMAC-SHA256. `out` must hold 32 bytes. Returns 1 on success.
static inline int vecgo_hmac_sha256(const void *key, int key_len, const void *data, size_t data_len,
                                    unsigned char *out) {
    unsigned int len = 32;
    return HMAC(EVP_sha256(), key, key_len, (const unsigned char *)data, data_len, out, &len) != NULL;
}

/// One-shot SHA-256. `out` must hold 32 bytes.
static inline void vecgo_sha256(const void *data, size_t len, unsigned char *out) {
    SHA256((const unsigned char *)data, len, out);
}
#endif
