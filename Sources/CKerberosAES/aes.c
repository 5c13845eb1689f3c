#include "CKerberosAES.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define TESSERA_AESNI 1
#include <cpuid.h>
#include <wmmintrin.h>
#include <emmintrin.h>
#endif

#if TESSERA_AESNI

// Only the functions that use AES instructions are compiled for them, so the rest of the binary runs anywhere.
#define AESNI __attribute__((target("aes,sse2")))

int tessera_krb_aes_available(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    return (c & bit_AES) != 0 && (d & bit_SSE2) != 0;
}

static inline AESNI __m128i load(const uint8_t *p) { return _mm_loadu_si128((const __m128i *)p); }
static inline AESNI void store(uint8_t *p, __m128i v) { _mm_storeu_si128((__m128i *)p, v); }

// FIPS 197's key expansion, one round key from the previous and the key-generation assist of the last word.
static inline AESNI __m128i expand_step(__m128i key, __m128i assist) {
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    return _mm_xor_si128(key, assist);
}

static AESNI void expand128(__m128i *rk, const uint8_t *bytes) {
    rk[0] = load(bytes);
#define STEP128(i, rcon) rk[i] = expand_step(rk[i - 1], _mm_shuffle_epi32(_mm_aeskeygenassist_si128(rk[i - 1], rcon), 0xFF))
    STEP128(1, 0x01); STEP128(2, 0x02); STEP128(3, 0x04); STEP128(4, 0x08); STEP128(5, 0x10);
    STEP128(6, 0x20); STEP128(7, 0x40); STEP128(8, 0x80); STEP128(9, 0x1B); STEP128(10, 0x36);
#undef STEP128
}

static AESNI void expand256(__m128i *rk, const uint8_t *bytes) {
    rk[0] = load(bytes);
    rk[1] = load(bytes + 16);
    // Even round keys take RotWord+SubWord+rcon of the previous key's last word; odd ones SubWord alone.
#define EVEN256(i, rcon) rk[i] = expand_step(rk[i - 2], _mm_shuffle_epi32(_mm_aeskeygenassist_si128(rk[i - 1], rcon), 0xFF))
#define ODD256(i) rk[i] = expand_step(rk[i - 2], _mm_shuffle_epi32(_mm_aeskeygenassist_si128(rk[i - 1], 0), 0xAA))
    EVEN256(2, 0x01); ODD256(3); EVEN256(4, 0x02); ODD256(5); EVEN256(6, 0x04); ODD256(7);
    EVEN256(8, 0x08); ODD256(9); EVEN256(10, 0x10); ODD256(11); EVEN256(12, 0x20); ODD256(13);
    EVEN256(14, 0x40);
#undef EVEN256
#undef ODD256
}

AESNI int tessera_krb_aes_init(tessera_krb_aes_key *key, const uint8_t *bytes, size_t length) {
    __m128i rk[15];
    switch (length) {
    case 16: key->rounds = 10; expand128(rk, bytes); break;
    case 32: key->rounds = 14; expand256(rk, bytes); break;
    default: return -1;
    }
    int n = key->rounds;
    for (int i = 0; i <= n; i++) store(key->encryption[i], rk[i]);
    store(key->decryption[0], rk[n]);
    for (int i = 1; i < n; i++) store(key->decryption[i], _mm_aesimc_si128(rk[n - i]));
    store(key->decryption[n], rk[0]);
    memset(rk, 0, sizeof rk);
    return 0;
}

static inline AESNI __m128i encrypt1(const tessera_krb_aes_key *key, __m128i block) {
    const int n = key->rounds;
    block = _mm_xor_si128(block, load(key->encryption[0]));
    for (int i = 1; i < n; i++) block = _mm_aesenc_si128(block, load(key->encryption[i]));
    return _mm_aesenclast_si128(block, load(key->encryption[n]));
}

static inline AESNI __m128i decrypt1(const tessera_krb_aes_key *key, __m128i block) {
    const int n = key->rounds;
    block = _mm_xor_si128(block, load(key->decryption[0]));
    for (int i = 1; i < n; i++) block = _mm_aesdec_si128(block, load(key->decryption[i]));
    return _mm_aesdeclast_si128(block, load(key->decryption[n]));
}

// Four independent blocks at once: CBC decryption has no chain between blocks' AES, so the instructions overlap.
static inline AESNI void decrypt4(const tessera_krb_aes_key *key, __m128i *b) {
    const int n = key->rounds;
    __m128i k = load(key->decryption[0]);
    b[0] = _mm_xor_si128(b[0], k); b[1] = _mm_xor_si128(b[1], k);
    b[2] = _mm_xor_si128(b[2], k); b[3] = _mm_xor_si128(b[3], k);
    for (int i = 1; i < n; i++) {
        k = load(key->decryption[i]);
        b[0] = _mm_aesdec_si128(b[0], k); b[1] = _mm_aesdec_si128(b[1], k);
        b[2] = _mm_aesdec_si128(b[2], k); b[3] = _mm_aesdec_si128(b[3], k);
    }
    k = load(key->decryption[n]);
    b[0] = _mm_aesdeclast_si128(b[0], k); b[1] = _mm_aesdeclast_si128(b[1], k);
    b[2] = _mm_aesdeclast_si128(b[2], k); b[3] = _mm_aesdeclast_si128(b[3], k);
}

AESNI void tessera_krb_aes_encrypt_block(const tessera_krb_aes_key *key, const uint8_t in[16], uint8_t out[16]) {
    store(out, encrypt1(key, load(in)));
}

AESNI int tessera_krb_aes_cts_encrypt(const tessera_krb_aes_key *key, const uint8_t *in, uint8_t *out, size_t length) {
    if (length < 16) return -1;
    const size_t blocks = (length + 15) / 16;
    if (blocks == 1) {
        store(out, encrypt1(key, load(in)));
        return 0;
    }
    const size_t last = length - (blocks - 1) * 16;  // bytes in the final, possibly partial, block
    __m128i chain = _mm_setzero_si128();
    for (size_t i = 0; i + 2 < blocks; i++) {
        chain = encrypt1(key, _mm_xor_si128(chain, load(in + 16 * i)));
        store(out + 16 * i, chain);
    }
    // C[n-1]: the last whole block; C[n]: the final block zero padded, chained to it. Sent: C[n], then the first
    // `last` bytes of C[n-1].
    const __m128i penultimate = encrypt1(key, _mm_xor_si128(chain, load(in + 16 * (blocks - 2))));
    uint8_t padded[16] = {0};
    memcpy(padded, in + 16 * (blocks - 1), last);
    const __m128i final = encrypt1(key, _mm_xor_si128(penultimate, load(padded)));
    store(out + 16 * (blocks - 2), final);
    uint8_t stolen[16];
    store(stolen, penultimate);
    memcpy(out + 16 * (blocks - 1), stolen, last);
    return 0;
}

AESNI int tessera_krb_aes_cts_decrypt(const tessera_krb_aes_key *key, const uint8_t *in, uint8_t *out, size_t length) {
    if (length < 16) return -1;
    const size_t blocks = (length + 15) / 16;
    if (blocks == 1) {
        store(out, decrypt1(key, load(in)));
        return 0;
    }
    const size_t last = length - (blocks - 1) * 16;
    const size_t whole = blocks - 2;  // ordinary CBC blocks before the swapped pair
    __m128i previous = _mm_setzero_si128();
    size_t i = 0;
    for (; i + 4 <= whole; i += 4) {
        __m128i c[4] = {load(in + 16 * i), load(in + 16 * i + 16), load(in + 16 * i + 32), load(in + 16 * i + 48)};
        __m128i p[4] = {c[0], c[1], c[2], c[3]};
        decrypt4(key, p);
        store(out + 16 * i, _mm_xor_si128(p[0], previous));
        store(out + 16 * i + 16, _mm_xor_si128(p[1], c[0]));
        store(out + 16 * i + 32, _mm_xor_si128(p[2], c[1]));
        store(out + 16 * i + 48, _mm_xor_si128(p[3], c[2]));
        previous = c[3];
    }
    for (; i < whole; i++) {
        const __m128i c = load(in + 16 * i);
        store(out + 16 * i, _mm_xor_si128(decrypt1(key, c), previous));
        previous = c;
    }
    // The block at `whole` is the encryption of the final block; decrypted, it is the final plaintext (zero
    // padded) XOR C[n-1], whose first `last` bytes were sent after it and whose rest this output holds.
    uint8_t x[16], penultimate[16];
    store(x, decrypt1(key, load(in + 16 * whole)));
    memcpy(penultimate, in + 16 * (whole + 1), last);
    memcpy(penultimate + last, x + last, 16 - last);
    uint8_t tail[16];
    for (size_t j = 0; j < last; j++) tail[j] = x[j] ^ penultimate[j];
    store(out + 16 * whole, _mm_xor_si128(decrypt1(key, load(penultimate)), previous));
    memcpy(out + 16 * (whole + 1), tail, last);
    return 0;
}

#else

int tessera_krb_aes_available(void) { return 0; }
int tessera_krb_aes_init(tessera_krb_aes_key *key, const uint8_t *bytes, size_t length) {
    (void)key; (void)bytes; (void)length;
    return -1;
}
void tessera_krb_aes_encrypt_block(const tessera_krb_aes_key *key, const uint8_t in[16], uint8_t out[16]) {
    (void)key; (void)in; (void)out;
}
int tessera_krb_aes_cts_encrypt(const tessera_krb_aes_key *key, const uint8_t *in, uint8_t *out, size_t length) {
    (void)key; (void)in; (void)out; (void)length;
    return -1;
}
int tessera_krb_aes_cts_decrypt(const tessera_krb_aes_key *key, const uint8_t *in, uint8_t *out, size_t length) {
    (void)key; (void)in; (void)out; (void)length;
    return -1;
}

#endif

void tessera_krb_aes_clear(tessera_krb_aes_key *key) {
    memset(key, 0, sizeof *key);
    // The compiler may not drop the memset as a dead store: the memory is treated as read after it.
    __asm__ __volatile__("" : : "r"(key) : "memory");
}
