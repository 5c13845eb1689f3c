#include "CKerberosAES.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define TESSERA_SHANI 1
#include <cpuid.h>
#include <immintrin.h>
#endif

#if TESSERA_SHANI

#define SHANI __attribute__((target("sha,sse4.1,ssse3")))

int tessera_krb_sha1_available(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if ((c & bit_SSSE3) == 0 || (c & bit_SSE4_1) == 0) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b & bit_SHA) != 0;
}

// Four SHA-1 rounds of kind `f` (0: Ch, 1: Parity, 2: Maj, 3: Parity); an immediate, hence the switch.
static inline SHANI __m128i rounds4(__m128i abcd, __m128i e, int f) {
    switch (f) {
    case 0: return _mm_sha1rnds4_epu32(abcd, e, 0);
    case 1: return _mm_sha1rnds4_epu32(abcd, e, 1);
    case 2: return _mm_sha1rnds4_epu32(abcd, e, 2);
    default: return _mm_sha1rnds4_epu32(abcd, e, 3);
    }
}

// FIPS 180-4's SHA-1 compression of `blocks` 64-byte blocks on the SHA extensions: twenty groups of four rounds, the
// message schedule four words at a time (W[g] from W[g-4], W[g-3], W[g-2] and W[g-1]).
static SHANI void compress(uint32_t state[5], const uint8_t *data, size_t blocks) {
    const __m128i byteSwap = _mm_set_epi64x(0x0001020304050607LL, 0x08090a0b0c0d0e0fLL);
    __m128i abcd = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)state), 0x1B);
    __m128i e0 = _mm_set_epi32((int)state[4], 0, 0, 0);
    for (; blocks > 0; blocks--, data += 64) {
        const __m128i abcdSaved = abcd, eSaved = e0;
        __m128i w[4];
        __m128i previous = e0;  // what the next group's E is computed from
        for (int g = 0; g < 20; g++) {
            if (g < 4) {
                w[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16 * g)), byteSwap);
            } else {
                w[g & 3] = _mm_sha1msg2_epu32(
                    _mm_xor_si128(_mm_sha1msg1_epu32(w[g & 3], w[(g + 1) & 3]), w[(g + 2) & 3]), w[(g + 3) & 3]);
            }
            const __m128i e = g == 0 ? _mm_add_epi32(previous, w[0]) : _mm_sha1nexte_epu32(previous, w[g & 3]);
            previous = abcd;
            abcd = rounds4(abcd, e, g / 5);
        }
        e0 = _mm_sha1nexte_epu32(previous, eSaved);
        abcd = _mm_add_epi32(abcd, abcdSaved);
    }
    _mm_storeu_si128((__m128i *)state, _mm_shuffle_epi32(abcd, 0x1B));
    state[4] = (uint32_t)_mm_extract_epi32(e0, 3);
}

static void sha1_init(tessera_krb_sha1 *h) {
    static const uint32_t initial[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    memcpy(h->state, initial, sizeof initial);
    h->length = 0;
    h->used = 0;
}

void tessera_krb_sha1_update(tessera_krb_sha1 *h, const uint8_t *data, size_t count) {
    h->length += count;
    if (h->used > 0) {
        size_t take = 64 - h->used < count ? 64 - h->used : count;
        memcpy(h->buffer + h->used, data, take);
        h->used += take;
        data += take;
        count -= take;
        if (h->used < 64) return;
        compress(h->state, h->buffer, 1);
        h->used = 0;
    }
    if (count >= 64) {
        compress(h->state, data, count / 64);
        data += count / 64 * 64;
        count %= 64;
    }
    memcpy(h->buffer, data, count);
    h->used = count;
}

static void sha1_final(tessera_krb_sha1 *h, uint8_t digest[20]) {
    const uint64_t bits = h->length * 8;
    uint8_t pad[72] = {0x80};
    const size_t padding = (h->used < 56 ? 56 : 120) - h->used;
    for (int i = 0; i < 8; i++) pad[padding + i] = (uint8_t)(bits >> (56 - 8 * i));
    tessera_krb_sha1_update(h, pad, padding + 8);
    for (int i = 0; i < 5; i++) {
        digest[4 * i] = (uint8_t)(h->state[i] >> 24);
        digest[4 * i + 1] = (uint8_t)(h->state[i] >> 16);
        digest[4 * i + 2] = (uint8_t)(h->state[i] >> 8);
        digest[4 * i + 3] = (uint8_t)h->state[i];
    }
}

void tessera_krb_hmac_sha1_init(tessera_krb_hmac_sha1 *mac, const uint8_t *key, size_t length) {
    uint8_t block[64] = {0};
    if (length > 64) {
        tessera_krb_sha1 hashed;
        sha1_init(&hashed);
        tessera_krb_sha1_update(&hashed, key, length);
        sha1_final(&hashed, block);
    } else {
        memcpy(block, key, length);
    }
    uint8_t pad[64];
    for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x36;
    sha1_init(&mac->inner);
    tessera_krb_sha1_update(&mac->inner, pad, 64);
    for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x5C;
    sha1_init(&mac->outer);
    tessera_krb_sha1_update(&mac->outer, pad, 64);
    memset(block, 0, sizeof block);
    memset(pad, 0, sizeof pad);
}

void tessera_krb_hmac_sha1_final(const tessera_krb_hmac_sha1 *mac, uint8_t out[20]) {
    tessera_krb_sha1 inner = mac->inner, outer = mac->outer;
    uint8_t digest[20];
    sha1_final(&inner, digest);
    tessera_krb_sha1_update(&outer, digest, 20);
    sha1_final(&outer, out);
}

#else

int tessera_krb_sha1_available(void) { return 0; }
void tessera_krb_sha1_update(tessera_krb_sha1 *h, const uint8_t *data, size_t count) {
    (void)h; (void)data; (void)count;
}
void tessera_krb_hmac_sha1_init(tessera_krb_hmac_sha1 *mac, const uint8_t *key, size_t length) {
    (void)mac; (void)key; (void)length;
}
void tessera_krb_hmac_sha1_final(const tessera_krb_hmac_sha1 *mac, uint8_t out[20]) {
    (void)mac; (void)out;
}

#endif
