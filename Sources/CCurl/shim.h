#ifndef VECGO_CCURL_SHIM_H
#define VECGO_CCURL_SHIM_H
#include <curl/curl.h>

// curl_easy_setopt, curl_multi_setopt and curl_easy_getinfo are variadic, which Swift cannot call.
// These typed wrappers are the only way Swift code reaches them.

typedef size_t (*vecgo_curl_data_cb)(char *ptr, size_t size, size_t nmemb, void *userdata);
typedef int (*vecgo_curl_xferinfo_cb)(void *userdata, curl_off_t dltotal, curl_off_t dlnow,
                                      curl_off_t ultotal, curl_off_t ulnow);

static inline CURLcode vecgo_curl_setopt_long(CURL *h, CURLoption opt, long v) {
    return curl_easy_setopt(h, opt, v);
}
static inline CURLcode vecgo_curl_setopt_off(CURL *h, CURLoption opt, curl_off_t v) {
    return curl_easy_setopt(h, opt, v);
}
static inline CURLcode vecgo_curl_setopt_string(CURL *h, CURLoption opt, const char *v) {
    return curl_easy_setopt(h, opt, v);
}
static inline CURLcode vecgo_curl_setopt_pointer(CURL *h, CURLoption opt, void *v) {
    return curl_easy_setopt(h, opt, v);
}
static inline CURLcode vecgo_curl_setopt_slist(CURL *h, CURLoption opt, struct curl_slist *v) {
    return curl_easy_setopt(h, opt, v);
}
static inline CURLcode vecgo_curl_setopt_data_cb(CURL *h, CURLoption opt, vecgo_curl_data_cb cb) {
    return curl_easy_setopt(h, opt, cb);
}
static inline CURLcode vecgo_curl_setopt_xferinfo_cb(CURL *h, vecgo_curl_xferinfo_cb cb) {
    return curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, cb);
}
static inline CURLMcode vecgo_curl_multi_setopt_long(CURLM *m, CURLMoption opt, long v) {
    return curl_multi_setopt(m, opt, v);
}
static inline CURLcode vecgo_curl_getinfo_long(CURL *h, CURLINFO info, long *out) {
    return curl_easy_getinfo(h, info, out);
}
#endif
