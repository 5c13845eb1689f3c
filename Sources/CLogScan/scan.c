#include "CLogScan.h"

#include <string.h>

#if defined(__x86_64__)
#define TESSERA_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

// Input is classified a chunk at a time (128 blocks of 64 bytes, 8 KB): its masks and the positions listed from them
// stay in the first-level cache (and on the stack, 25 KB) while its lines are read from them.
enum { BLOCKS = 128, CHUNK = BLOCKS * 64 };

// Stage two is compiled three times, for x86-64 as it is, for processors with AVX2 (with POPCNT and BMI) and for those
// with AVX-512 (F and BW) besides, and chosen once at run time: its helpers are always inlined so each copy gets its
// own instructions.
#define INLINE static inline __attribute__((always_inline))

// One bit per input byte of a chunk (and two words of zeros after it, so a 64-bit window may start at any byte of
// it). Squid: `a` the first byte of each field (a byte that is neither a blank nor a newline after one that is, or at
// the chunk's start), `b` the blanks and newlines, `c` `/` and `:` (where a URL's scheme ends), `d` the bytes that
// end a URL's host (`/`, `:`, `?`, blanks and newlines), `f` the bytes that are not digits. CEF: `a` spaces, `b` `|`,
// `c` the `=` that can end a key (those not right after a space), `d` backslashes, `e` capital Cs (where `CEF:` may
// start), `f` the `=` right after `st` or `rl` (where the keys that name a host end: dhost, host, dstHost, dst,
// request, url), `g` the `=` right after another `=` (`d` and `g` only when `any_backslash` or `any_double` says the
// chunk has some).
typedef struct {
    uint64_t nl[BLOCKS + 2], a[BLOCKS + 2], b[BLOCKS + 2], c[BLOCKS + 2], d[BLOCKS + 2], e[BLOCKS + 2], f[BLOCKS + 2],
        g[BLOCKS + 2];
    // CEF: whether the chunk holds a backslash, or an `=` right after another, at all.
    uint64_t any_backslash, any_double;
    // CEF: the positions of the `f` bits in order, then 0xffff (past any position in a chunk): a line's keys that
    // may name a host are walked from a cursor, with no search whose length the data decides. An `f` bit follows two
    // bytes that are not `=`, so a chunk has at most one for three bytes (and flatten writes up to three more).
    uint16_t keys[CHUNK / 2 + 8];
    // Where the positions of the `nl` bits go in order (room for CHUNK + 4), and how many; `listed_in_stage1` when
    // stage one wrote them and the keys' (AVX-512 for CEF, from the words in registers), else stage two lists them.
    uint16_t *newlines;
    size_t newline_count;
    int listed_in_stage1;
} masks;

// MARK: - Stage one: a chunk's bytes to bitmasks

// The bits of one 64-byte block for the format; `carry` is whether the byte before the block ends a field, and for
// CEF `pt`, `ps`, `pr`, `pl`, `psp` and `peq` are the previous block's bits of `t`, `s`, `r`, `l`, spaces and `=`
// (a chunk starts at a line's start, so its first block has none before it).
#define CLASSIFY(EQ, DIGITS, LIST)                                                       \
    do {                                                                                 \
        uint64_t nl = EQ('\n');                                                          \
        m->nl[k] = nl;                                                                   \
        LIST(nl);                                                                        \
        if (format == tessera_log_squid) {                                               \
            uint64_t sep = EQ(' ') | EQ('\t') | nl;                                      \
            uint64_t slash = EQ('/'), colon = EQ(':');                                   \
            m->a[k] = ~sep & ((sep << 1) | carry);                                       \
            m->b[k] = sep;                                                               \
            m->c[k] = slash | colon;                                                     \
            m->d[k] = slash | colon | EQ('?') | sep;                                     \
            m->f[k] = ~DIGITS();                                                         \
            carry = sep >> 63;                                                           \
        } else if (format == tessera_log_cef) {                                          \
            uint64_t sp = EQ(' '), eq = EQ('='), t = EQ('t'), s = EQ('s');               \
            uint64_t r = EQ('r'), l = EQ('l');                                           \
            m->a[k] = sp;                                                                \
            m->b[k] = EQ('|');                                                           \
            m->c[k] = eq & ~((sp << 1) | (psp >> 63));                                   \
            m->d[k] = EQ('\\');                                                          \
            m->e[k] = EQ('C');                                                           \
            uint64_t st = ((t << 1) | (pt >> 63)) & ((s << 2) | (ps >> 62));             \
            uint64_t rl = ((l << 1) | (pl >> 63)) & ((r << 2) | (pr >> 62));             \
            m->f[k] = eq & (st | rl);                                                    \
            m->g[k] = eq & ((eq << 1) | (peq >> 63));                                    \
            pt = t; ps = s; pr = r; pl = l; psp = sp; peq = eq;                          \
        }                                                                                \
    } while (0)

#define NO_LIST(nl) ((void)0)

// The blocks of `p[0..<n)`; the last, when partial, is read from a copy padded with spaces (so no read goes past the
// data, which may end at the end of a mapped page).
#define STAGE1(LOAD, EQ, DIGITS, LIST)                                                   \
    size_t whole = n / 64, blocks = (n + 63) / 64;                                       \
    uint8_t pad[64];                                                                     \
    uint64_t carry = 1, pt = 0, ps = 0, pr = 0, pl = 0, psp = 0, peq = 0;                \
    size_t lines = 0;                                                                    \
    for (size_t k = 0; k < blocks; k++) {                                                \
        const uint8_t *q = p + 64 * k;                                                   \
        if (k == whole) {                                                                \
            memset(pad, ' ', 64);                                                        \
            memcpy(pad, q, n - 64 * whole);                                              \
            q = pad;                                                                     \
        }                                                                                \
        LOAD(q);                                                                         \
        CLASSIFY(EQ, DIGITS, LIST);                                                      \
    }                                                                                    \
    for (size_t k = blocks; k < blocks + 2; k++)                                         \
        m->nl[k] = m->a[k] = m->b[k] = m->c[k] = m->d[k] = m->e[k] = m->f[k] = m->g[k] = 0; \
    m->newline_count = lines;                                                            \
    m->listed_in_stage1 = 0;

static inline uint64_t eq_portable(const uint8_t *bytes, uint8_t ch) {
    uint64_t bits = 0;
    for (int i = 0; i < 64; i++) bits |= (uint64_t)(bytes[i] == ch) << i;
    return bits;
}

static inline uint64_t digits_portable(const uint8_t *bytes) {
    uint64_t bits = 0;
    for (int i = 0; i < 64; i++) bits |= (uint64_t)((uint8_t)(bytes[i] - '0') < 10) << i;
    return bits;
}

static void stage1_portable(tessera_log_format format, const uint8_t *p, size_t n, masks *m) {
    uint8_t bytes[64];
#define LOAD_PORTABLE(q) memcpy(bytes, q, 64)
#define EQ_PORTABLE(ch) eq_portable(bytes, ch)
#define DIGITS_PORTABLE() digits_portable(bytes)
    STAGE1(LOAD_PORTABLE, EQ_PORTABLE, DIGITS_PORTABLE, NO_LIST)
}

#if TESSERA_X86
// SSE2 is part of x86-64.
static inline uint64_t eq_sse2(const __m128i v[4], char ch) {
    __m128i c = _mm_set1_epi8(ch);
    uint64_t m0 = (uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v[0], c));
    uint64_t m1 = (uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v[1], c));
    uint64_t m2 = (uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v[2], c));
    uint64_t m3 = (uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v[3], c));
    return m0 | m1 << 16 | m2 << 32 | m3 << 48;
}

// Bytes from '0' to '9': b - '0' is at most 9, unsigned.
static inline uint64_t digits_sse2(const __m128i v[4]) {
    uint64_t bits = 0;
    for (int i = 0; i < 4; i++) {
        __m128i t = _mm_sub_epi8(v[i], _mm_set1_epi8('0'));
        bits |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(t, _mm_set1_epi8(9)), t)) << (16 * i);
    }
    return bits;
}

static void stage1_sse2(tessera_log_format format, const uint8_t *p, size_t n, masks *m) {
    __m128i v[4];
#define LOAD_SSE2(q)                                                                     \
    for (int i = 0; i < 4; i++) v[i] = _mm_loadu_si128((const __m128i *)(q + 16 * i))
#define EQ_SSE2(ch) eq_sse2(v, ch)
#define DIGITS_SSE2() digits_sse2(v)
    STAGE1(LOAD_SSE2, EQ_SSE2, DIGITS_SSE2, NO_LIST)
}

#define AVX2 __attribute__((target("avx2")))

static inline AVX2 uint64_t eq_avx2(__m256i lo, __m256i hi, char ch) {
    __m256i c = _mm256_set1_epi8(ch);
    uint64_t l = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, c));
    uint64_t h = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, c));
    return l | h << 32;
}

static inline AVX2 uint64_t digits_avx2(__m256i lo, __m256i hi) {
    __m256i zero = _mm256_set1_epi8('0'), nine = _mm256_set1_epi8(9);
    __m256i l = _mm256_sub_epi8(lo, zero), h = _mm256_sub_epi8(hi, zero);
    uint64_t bl = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_min_epu8(l, nine), l));
    uint64_t bh = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_min_epu8(h, nine), h));
    return bl | bh << 32;
}

static AVX2 void stage1_avx2(tessera_log_format format, const uint8_t *p, size_t n, masks *m) {
    __m256i lo, hi;
#define LOAD_AVX2(q)                                                                     \
    lo = _mm256_loadu_si256((const __m256i *)(q));                                       \
    hi = _mm256_loadu_si256((const __m256i *)(q + 32))
#define EQ_AVX2(ch) eq_avx2(lo, hi, ch)
#define DIGITS_AVX2() digits_avx2(lo, hi)
    STAGE1(LOAD_AVX2, EQ_AVX2, DIGITS_AVX2, NO_LIST)
}

// AVX-512 (F and BW): a comparison of 64 bytes gives their bits at once, with no movemask and no halves to join.
#define AVX512 __attribute__((target("avx512f,avx512bw")))

// The positions of the set bits of word `w` (block `k`) appended to `out` at `count`, two written whether there or
// not (as flatten does, which this is one step of).
#define LIST_WORD(out, count, w, k)                                                                                    \
    do {                                                                                                               \
        uint64_t bits_ = (w);                                                                                          \
        size_t found_ = (size_t)__builtin_popcountll(bits_);                                                           \
        (out)[count] = (uint16_t)(64 * (k) + (bits_ ? (size_t)__builtin_ctzll(bits_) : 0));                            \
        bits_ &= bits_ - 1;                                                                                            \
        (out)[(count) + 1] = (uint16_t)(64 * (k) + (bits_ ? (size_t)__builtin_ctzll(bits_) : 0));                      \
        for (size_t j_ = 2; j_ < found_; j_++) {                                                                       \
            bits_ &= bits_ - 1;                                                                                        \
            (out)[(count) + j_] = (uint16_t)(64 * (k) + (size_t)__builtin_ctzll(bits_));                               \
        }                                                                                                              \
        count += found_;                                                                                               \
    } while (0)

// CEF with AVX-512: the bits that depend on the bytes before an `=` (`c`, `f`, `g`) are compared in the vector
// registers, under the mask of the `=` (no shifts and carries from block to block), against the block's bytes one and
// two places back, which come from this block and the one before in registers (loads one and two bytes back crossed
// a cache line for every block). The first block has newlines before it (a chunk starts at a line's start: nothing
// before it counts), and a partial last block is read from a copy padded with spaces. The newlines' and keys' positions
// are listed here from the words in registers (listing them after from the stored words cost about a tenth of the CEF
// scan), and backslashes and `==` are only noted, their bits kept in a second pass for the rare chunk that has any.
static AVX512 void stage1_avx512_cef(const uint8_t *p, size_t n, masks *m) {
    size_t whole = n / 64, blocks = (n + 63) / 64;
    uint8_t copy[64];
    // The block before the first: newlines (a chunk starts at a line's start: nothing before it counts).
    __m512i prev = _mm512_set1_epi8('\n');
    // Whether the chunk has a backslash, or an `=` right after another, at all; how many newlines and keys it lists.
    __mmask64 backslash = 0, twice = 0;
    size_t lines = 0, keys = 0;
    for (size_t k = 0; k < blocks; k++) {
        const uint8_t *q = p + 64 * k;
        if (k == whole) {
            memset(copy, ' ', sizeof copy);
            memcpy(copy, q, n - 64 * whole);
            q = copy;
        }
        __m512i v = _mm512_loadu_si512((const void *)q);
        // The block's bytes one and two places back, from this block and the one before: each 128-bit lane of
        // `lanes` is the lane before it of v (the first, the previous block's last lane), and alignr takes the bytes
        // of a lane of v after the last one or two of that lane.
        __m512i lanes = _mm512_alignr_epi32(v, prev, 12);
        __m512i v1 = _mm512_alignr_epi8(v, lanes, 15), v2 = _mm512_alignr_epi8(v, lanes, 14);
        prev = v;
        __mmask64 eq = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('='));
        __mmask64 nl = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\n'));
        m->nl[k] = nl;
        LIST_WORD(m->newlines, lines, nl, k);
        m->a[k] = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(' '));
        m->b[k] = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('|'));
        m->c[k] = _mm512_mask_cmpneq_epi8_mask(eq, v1, _mm512_set1_epi8(' '));
        backslash |= _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\\'));
        m->e[k] = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('C'));
        __mmask64 st = _mm512_mask_cmpeq_epi8_mask(_mm512_mask_cmpeq_epi8_mask(eq, v1, _mm512_set1_epi8('t')), v2,
                                                   _mm512_set1_epi8('s'));
        __mmask64 rl = _mm512_mask_cmpeq_epi8_mask(_mm512_mask_cmpeq_epi8_mask(eq, v1, _mm512_set1_epi8('l')), v2,
                                                   _mm512_set1_epi8('r'));
        m->f[k] = st | rl;
        LIST_WORD(m->keys, keys, st | rl, k);
        twice |= _mm512_mask_cmpeq_epi8_mask(eq, v1, _mm512_set1_epi8('='));
    }
    for (size_t k = blocks; k < blocks + 2; k++)
        m->nl[k] = m->a[k] = m->b[k] = m->c[k] = m->e[k] = m->f[k] = 0;
    m->any_backslash = backslash;
    m->any_double = twice;
    // Their bits only for the rare chunk that has any (stores for every block cost more than this second pass).
    if (backslash | twice) {
        prev = _mm512_set1_epi8('\n');
        for (size_t k = 0; k < blocks; k++) {
            const uint8_t *q = p + 64 * k;
            if (k == whole) {
                memset(copy, ' ', sizeof copy);
                memcpy(copy, q, n - 64 * whole);
                q = copy;
            }
            __m512i v = _mm512_loadu_si512((const void *)q);
            __m512i v1 = _mm512_alignr_epi8(v, _mm512_alignr_epi32(v, prev, 12), 15);
            __mmask64 eq = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('='));
            prev = v;
            m->d[k] = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\\'));
            m->g[k] = _mm512_mask_cmpeq_epi8_mask(eq, v1, _mm512_set1_epi8('='));
        }
        for (size_t k = blocks; k < blocks + 2; k++) m->d[k] = m->g[k] = 0;
    }
    m->keys[keys] = 0xffff;
    m->newline_count = lines;
    m->listed_in_stage1 = 1;
}

static AVX512 void stage1_avx512(tessera_log_format format, const uint8_t *p, size_t n, masks *m) {
    if (format == tessera_log_cef) {
        stage1_avx512_cef(p, n, m);
        return;
    }
    __m512i v;
#define LOAD_AVX512(q) v = _mm512_loadu_si512((const void *)(q))
#define EQ_AVX512(ch) ((uint64_t)_mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(ch)))
#define DIGITS_AVX512() ((uint64_t)_mm512_cmplt_epu8_mask(_mm512_sub_epi8(v, _mm512_set1_epi8('0')), _mm512_set1_epi8(10)))
    // Squid's newlines listed from the words in registers too (as CEF's are).
#define LIST_NEWLINES(nl) LIST_WORD(m->newlines, lines, nl, k)
    STAGE1(LOAD_AVX512, EQ_AVX512, DIGITS_AVX512, LIST_NEWLINES)
    m->listed_in_stage1 = format != tessera_log_cef;
}

static int has_avx2(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    // The operating system must save the YMM registers (OSXSAVE, and XCR0's SSE and AVX state bits).
    if (!(c & bit_OSXSAVE) || !(c & bit_AVX)) return 0;
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6) != 6) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b & bit_AVX2) != 0;
}

// AVX-512 F and BW with the rest of what its copy of stage two is compiled for (AVX2, BMI, POPCNT, LZCNT), and an
// operating system that saves the mask and ZMM registers (XCR0's bits 5 to 7 besides SSE and AVX).
static int has_avx512(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & bit_OSXSAVE) || !(c & bit_AVX) || !(c & bit_POPCNT)) return 0;
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0xe6) != 0xe6) return 0;
    if (!__get_cpuid(0x80000001, &a, &b, &c, &d) || !(c & bit_LZCNT)) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b & bit_AVX2) && (b & bit_BMI) && (b & bit_AVX512F) && (b & bit_AVX512BW);
}
#endif

typedef void (*stage1_fn)(tessera_log_format, const uint8_t *, size_t, masks *);

// MARK: - Bit search

// The first set bit of `m` in [from, limit), or `limit`.
INLINE size_t next_set(const uint64_t *m, size_t from, size_t limit) {
    if (from >= limit) return limit;
    size_t w = from >> 6, last = (limit - 1) >> 6;
    uint64_t bits = m[w] & (~0ULL << (from & 63));
    while (!bits) {
        if (w == last) return limit;
        bits = m[++w];
    }
    size_t at = (w << 6) + (size_t)__builtin_ctzll(bits);
    return at < limit ? at : limit;
}

// The last set bit of `m` in [floor, before), or SIZE_MAX.
INLINE size_t last_set(const uint64_t *m, size_t floor, size_t before) {
    if (before <= floor) return SIZE_MAX;
    size_t top = before - 1, w = top >> 6, first = floor >> 6;
    uint64_t bits = m[w] & (~0ULL >> (63 - (top & 63)));
    while (!bits) {
        if (w == first) return SIZE_MAX;
        bits = m[--w];
    }
    size_t at = (w << 6) + 63 - (size_t)__builtin_clzll(bits);
    return at >= floor ? at : SIZE_MAX;
}

// The 64 bits of `m` from bit `from` on (bit 0 is `from`'s).
INLINE uint64_t window(const uint64_t *m, size_t from) {
    size_t w = from >> 6, o = from & 63;
    return (m[w] >> o) | ((m[w + 1] << 1) << (63 - o));
}

// The first set bit of `m` in [from, limit), or `limit`: one window when it lies within 64 bits, so the search costs
// no branch that the data decides.
INLINE size_t next_near(const uint64_t *m, size_t from, size_t limit) {
    if (from >= limit) return limit;
    uint64_t w = window(m, from);
    if (__builtin_expect(w == 0, 0)) return next_set(m, from + 64, limit);
    size_t at = from + (size_t)__builtin_ctzll(w);
    return at < limit ? at : limit;
}

// The last set bit of `m` in [floor, before), or SIZE_MAX: one window when it lies within 64 bits.
INLINE size_t last_near(const uint64_t *m, size_t floor, size_t before) {
    if (before <= floor) return SIZE_MAX;
    if (__builtin_expect(before < 64, 0)) return last_set(m, floor, before);
    uint64_t w = window(m, before - 64);
    if (__builtin_expect(w == 0, 0)) return last_set(m, floor, before - 64);
    size_t at = before - 64 + 63 - (size_t)__builtin_clzll(w);
    return at >= floor ? at : SIZE_MAX;
}

// The `k`-th (from 0) set bit of `m` in [from, limit), or `limit`: 64 bits at a time, clearing the lowest.
INLINE size_t nth_set(const uint64_t *m, size_t from, size_t limit, unsigned k) {
    for (;;) {
        if (from >= limit) return limit;
        uint64_t bits = window(m, from);
        if (limit - from < 64) bits &= (1ULL << (limit - from)) - 1;
        unsigned count = (unsigned)__builtin_popcountll(bits);
        if (count > k) {
            while (k--) bits &= bits - 1;
            return from + (size_t)__builtin_ctzll(bits);
        }
        k -= count;
        from += 64;
    }
}

// MARK: - Fields

// Eight bytes as a little-endian word (byte 0 lowest), from any address.
INLINE uint64_t load8(const uint8_t *q) {
    uint64_t w;
    memcpy(&w, q, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}


INLINE int is_digit(uint8_t b) { return (uint8_t)(b - '0') < 10; }

// What SquidParser's `seconds` reads: 1 to 18 digits, then optionally a dot and 1 to 18 digits.
INLINE int is_seconds(const uint8_t *q, size_t n) {
    size_t dot = n;
    for (size_t i = 0; i < n; i++) {
        if (q[i] == '.') { dot = i; break; }
        if (!is_digit(q[i])) return 0;
    }
    if (dot < 1 || dot > 18) return 0;
    if (dot == n) return 1;
    if (n - dot - 1 < 1 || n - dot - 1 > 18) return 0;
    for (size_t i = dot + 1; i < n; i++)
        if (!is_digit(q[i])) return 0;
    return 1;
}

// A byte count: 1 to 18 digits.
INLINE int is_count(const uint8_t *q, size_t n) {
    if (n < 1 || n > 18) return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_digit(q[i])) return 0;
    return 1;
}

// The host of a URL or CONNECT target in p[a..<b) (ByteParsing.urlHost): after a `scheme://`, up to `/`, `:` or `?`.
INLINE void url_host(const uint8_t *p, size_t a, size_t b, size_t *hs, size_t *he) {
    size_t start = a, i = a;
    while (i + 2 < b && p[i] != '/' && p[i] != ':') i++;
    if (i + 2 < b && p[i] == ':' && p[i + 1] == '/' && p[i + 2] == '/') start = i + 3;
    size_t h = start;
    while (h < b && p[h] != '/' && p[h] != ':' && p[h] != '?') h++;
    *hs = start;
    *he = h;
}

// Bits `from..<from+n` of `w` (n below 64) moved to the bottom.
INLINE uint64_t bits(uint64_t w, unsigned from, unsigned n) { return (w >> from) & ((1ULL << n) - 1); }

// What SquidParser's `seconds` reads, from the token's non-digit bits: 1 to 18 digits, then optionally a dot and 1 to
// 18 digits.
INLINE int seconds_bits(const uint8_t *token, uint64_t nondigits, size_t n) {
    if (!nondigits) return n >= 1 && n <= 18;
    size_t dot = (size_t)__builtin_ctzll(nondigits);
    return token[dot] == '.' && !(nondigits & (nondigits - 1)) && dot >= 1 && dot <= 18 && n - dot - 1 >= 1 &&
           n - dot - 1 <= 18;
}

// ByteParsing.urlHost over p[t..<end): a scheme ends at the first `/` or `:` if `://` follows it; the host ends at
// `/`, `:` or `?`.
INLINE int squid_url_host(const uint8_t *p, const masks *m, size_t t, size_t end, size_t *hs, size_t *he) {
    size_t start = t;
    if (end - t > 2) {
        // Without a branch on the outcome: a proxy log mixes `host:port` (CONNECT) and `scheme://` at random.
        size_t i = next_near(m->c, t, end - 2), j = i < end - 2 ? i : t;
        uint32_t three = (uint32_t)p[j] | (uint32_t)p[j + 1] << 8 | (uint32_t)p[j + 2] << 16;
        start = i < end - 2 && three == (':' | '/' << 8 | '/' << 16) ? i + 3 : t;
    }
    *hs = start;
    *he = next_near(m->d, start, end);
    return *he > *hs;
}

// Squid (SquidParser.parse's requirements): a time, three fields, a byte count, a method and a URL with a host. The
// first six fields of a line almost always start within its first 64 bytes: then they come from one window of each
// mask at the line's start, and the URL's start from one window after the method's, without a chain of searches.
INLINE int squid_host(const uint8_t *p, const masks *m, size_t ls, size_t e, size_t *hs, size_t *he) {
    uint64_t starts = window(m->a, ls);
    if (e - ls < 64) starts &= (1ULL << (e - ls)) - 1;
    uint64_t s4 = starts & (starts - 1);
    s4 &= s4 - 1; s4 &= s4 - 1; s4 &= s4 - 1;
    uint64_t s5 = s4 & (s4 - 1);
    // The first six fields start within the window (the URL, the seventh, may start past it: a CONNECT with a long
    // client address or byte count).
    if (s5) {
        uint64_t seps = window(m->b, ls), nondigits = window(m->f, ls);
        unsigned o0 = (unsigned)__builtin_ctzll(starts), o4 = (unsigned)__builtin_ctzll(s4);
        // A field ends at the first blank after its start, before the next field's start (within the window).
        unsigned n0 = (unsigned)__builtin_ctzll(seps >> o0), n4 = (unsigned)__builtin_ctzll(seps >> o4);
        if (!seconds_bits(p + ls + o0, bits(nondigits, o0, n0), n0)) return 0;
        if (n4 < 1 || n4 > 18 || bits(nondigits, o4, n4)) return 0;
        uint64_t s6 = s5 & (s5 - 1);
        size_t t6;
        if (__builtin_expect(s6 != 0, 1)) {
            t6 = ls + (size_t)__builtin_ctzll(s6);
        } else {
            // The URL starts past the window: at the first field start after the method's.
            t6 = next_near(m->a, ls + (size_t)__builtin_ctzll(s5) + 1, e);
            if (t6 >= e) return 0;
        }
        return squid_url_host(p, m, t6, next_near(m->b, t6, e), hs, he);
    }
    size_t t0 = nth_set(m->a, ls, e, 0), t4 = nth_set(m->a, t0 + 1, e, 3), t6 = nth_set(m->a, t4 + 1, e, 1);
    if (t6 >= e) return 0;
    if (!is_seconds(p + t0, next_set(m->b, t0, e) - t0)) return 0;
    if (!is_count(p + t4, next_set(m->b, t4, e) - t4)) return 0;
    return squid_url_host(p, m, t6, next_set(m->b, t6, e), hs, he);
}

// Bytes as a little-endian word.
#define WORD3(a, b, c) ((uint64_t)(a) | (uint64_t)(b) << 8 | (uint64_t)(c) << 16)
#define WORD4(a, b, c, d) (WORD3(a, b, c) | (uint64_t)(d) << 24)
#define WORD5(a, b, c, d, e) (WORD4(a, b, c, d) | (uint64_t)(e) << 32)
#define WORD7(a, b, c, d, e, f, g) (WORD5(a, b, c, d, e) | (uint64_t)(f) << 40 | (uint64_t)(g) << 48)

// The keys CEF's fast path reads (KeyValueFields): what each does to the host.
enum { KEY_OTHER, KEY_DST, KEY_URL, KEY_HOST };

// Which key ends at the `=` at q (one of the chunk's `f` bits after the header: right after `st` or `rl`) in a line
// whose extension starts at `ext` and holds no `==`. KeyValueScanner's key runs back to the space before it or to the
// value's start (after the last `=` that ended a key, or `ext`), so a key of n bytes is the n bytes before q when the
// byte before them is a space, or they start at `ext`, or the byte before them is an `=` that ended a key itself (one
// after `ext` without a space before it; with no `==` in the extension, every other `=` there does).
INLINE int cef_key(const uint8_t *p, size_t q, size_t ext) {
    uint64_t before = load8(p + q - 8);
#define STARTS(n) (p[q - (n) - 1] == ' ' || q - (n) == ext || \
                   (p[q - (n) - 1] == '=' && q - (n) - 1 > ext && p[q - (n) - 2] != ' '))
#define KEY(n, word) ((before >> (8 * (8 - (n)))) == (word) && STARTS(n))
    if (KEY(5, WORD5('d', 'h', 'o', 's', 't')) || KEY(4, WORD4('h', 'o', 's', 't')) ||
        KEY(7, WORD7('d', 's', 't', 'H', 'o', 's', 't')))
        return KEY_HOST;
    if (KEY(7, WORD7('r', 'e', 'q', 'u', 'e', 's', 't')) || KEY(3, WORD3('u', 'r', 'l'))) return KEY_URL;
    if (KEY(3, WORD3('d', 's', 't'))) return KEY_DST;
    return KEY_OTHER;
#undef KEY
#undef STARTS
}

// CEF without backslashes (escapes change what the fields are: those lines take the parser), by the rules of
// KeyValueScanner and KeyValueFields: after the header's seven `|`, an `=` ends a key unless a space or the value's
// start is right before it; a key runs back to the space before it (or the value's start), a value to the space
// before the next key (trailing spaces trimmed). `dhost`, `host` and `dstHost` set the host, `request` and `url` set
// it from their URL when none is set yet, and `dst` stands in for a record that has none. Only the `=` after `st`
// or `rl` are visited (two in a usual line, where every `=` used to be): a key that names a host ends in one of
// them, and its value ends at the last space before the next `=` without a space before it. A line with `==` in its
// extension (where whether an `=` ends a key depends on the one before it) takes the parser.
INLINE int cef_host(const uint8_t *p, const masks *m, const uint16_t **key, size_t ls, size_t e, size_t *hs,
                    size_t *he) {
    if (e == ls || (m->any_backslash && next_set(m->d, ls, e) < e)) return 0;
    // `CEF:` is almost always within the first 64 bytes (after a syslog header): one window.
    size_t c = next_near(m->e, ls, e);
    for (;;) {
        if (c + 4 > e) return 0;
        if (p[c + 1] == 'E' && p[c + 2] == 'F' && p[c + 3] == ':') break;
        c = next_near(m->e, c + 1, e);
    }
    size_t bar = nth_set(m->b, c, e, 6);
    if (bar >= e) return 0;
    size_t ext = bar + 1;
    if (m->any_double && next_set(m->g, ext, e) < e) return 0;
    int host = 0, dst = 0;
    size_t h0 = 0, h1 = 0, d0 = 0, d1 = 0;
    // The cursor passes the keys of lines before this one (and of this one's header); it stays at the next line's.
    const uint16_t *k = *key;
    while (*k < ext) k++;
    for (; *k < e; k++) {
        size_t q = *k;
        // p[q - 9 ..< q] lies within the line: its `CEF:` header and seven `|` come first.
        int key = cef_key(p, q, ext);
        // A URL's value sets nothing once a host is set (`request=` after `dhost=`, as proxies write them).
        if (key == KEY_OTHER || (key == KEY_URL && host)) continue;
        // The value runs to the space before the next key (or to the line's end), trailing spaces trimmed.
        size_t vs = q + 1, v1 = e, next = next_near(m->c, vs, e);
        if (next < e) {
            size_t space = last_near(m->a, vs, next);
            v1 = space == SIZE_MAX ? vs : space;
        }
        while (v1 > vs && p[v1 - 1] == ' ') v1--;
        int empty = v1 == vs;
        if (key == KEY_HOST) { host = !empty; h0 = vs; h1 = v1; }
        else if (key == KEY_DST) { dst = !empty; d0 = vs; d1 = v1; }
        else if (!empty && !host) { host = 1; url_host(p, vs, v1, &h0, &h1); }
    }
    *key = k;
    if (host) { *hs = h0; *he = h1; return 1; }
    if (dst) { *hs = d0; *he = d1; return 1; }
    return 0;
}

// MARK: - Host table

INLINE int same_lowercased(const uint8_t *name, const uint8_t *lower, size_t n) {
    for (size_t k = 0; k < n; k++) {
        uint8_t b = name[k];
        if ((uint8_t)(b - 'A') < 26) b |= 0x20;
        if (b != lower[k]) return 0;
    }
    return 1;
}

// 0x80 in each byte of `v` that is zero, nothing elsewhere.
INLINE uint64_t zero_bytes(uint64_t v) {
    const uint64_t low7 = 0x7f7f7f7f7f7f7f7fULL;
    return ~(((v & low7) + low7) | v | low7);
}

// tessera_host_hash of name[0..<length), reading a short name as one word that ends with it when the bytes before it
// (from `floor` on) are there to read.
INLINE uint64_t hash_within(const uint8_t *name, size_t length, const uint8_t *floor) {
    if (length >= 1 && length < 8 && (size_t)(name - floor) + length >= 8)
        return tessera_host_mix(load8(name + length - 8) >> (8 * (8 - length)), 0, length);
    return tessera_host_hash(name, length);
}

INLINE int64_t find(const tessera_host_table *t, const uint8_t *name, size_t length, const uint8_t *floor) {
    uint64_t h = hash_within(name, length, floor);
    for (uint64_t slot = tessera_host_slot(h, t->mask);; slot = (slot + 1) & t->mask) {
        uint64_t stored = t->hashes[slot];
        if (stored == 0) return -1;
        const tessera_host_entry *entry = &t->entries[slot];
        if (stored == h && (size_t)entry->length == length && same_lowercased(name, t->text + entry->start, length))
            return (int64_t)slot;
    }
}

int64_t tessera_host_find(const tessera_host_table *table, const uint8_t *name, size_t length) {
    return find(table, name, length, name);
}

// The last dot in host[0..<cut), or SIZE_MAX: eight bytes at a time from the right.
INLINE size_t last_dot(const uint8_t *host, size_t cut, const uint8_t *floor) {
    const uint64_t dots = 0x2e2e2e2e2e2e2e2eULL;
    while (cut >= 8) {
        uint64_t d = zero_bytes(load8(host + cut - 8) ^ dots);
        if (d) return cut - 8 + ((63 - (size_t)__builtin_clzll(d)) >> 3);
        cut -= 8;
    }
    if (cut > 0 && (size_t)(host - floor) + cut >= 8) {
        // The word ending at `cut`, without the bytes before the host.
        uint64_t d = zero_bytes(load8(host + cut - 8) ^ dots) & (~0ULL << (8 * (8 - cut)));
        return d ? cut - 8 + ((63 - (size_t)__builtin_clzll(d)) >> 3) : SIZE_MAX;
    }
    while (cut-- > 0)
        if (host[cut] == '.') return cut;
    return SIZE_MAX;
}

// The app of `host` or of its most specific parent domain: walking from the last label, every suffix after a dot is
// probed, and the walk stops at the first that the table does not hold (no catalog host ends in it).
INLINE int32_t lookup(const tessera_host_table *t, const uint8_t *host, size_t length, const uint8_t *floor) {
    // The first probe from the one word that ends the name (when it can be read): its last label of one to seven
    // bytes is the word's top bytes, which is how find hashes it; an empty slot there answers for almost every host
    // of a proxy log. Anything else takes the walk below.
    if (length >= 1 && (size_t)(host - floor) + length >= 8) {
        uint64_t w = load8(host + length - 8);
        uint64_t d = zero_bytes(w ^ 0x2e2e2e2e2e2e2e2eULL);
        if (length < 8) d &= ~0ULL << (8 * (8 - length));
        // A dot in the name, not as its last byte (a name ending in a dot takes the walk, which drops those).
        if (d && !(d >> 63)) {
            size_t label = 7 - ((63 - (size_t)__builtin_clzll(d)) >> 3);
            uint64_t h = tessera_host_mix(w >> (8 * (8 - label)), 0, label);
            if (t->hashes[tessera_host_slot(h, t->mask)] == 0) return -1;
        }
    }
    while (length > 0 && host[length - 1] == '.') length--;
    if (length == 0) return -1;
    int32_t found = -1;
    for (size_t cut = length;;) {
        size_t dot = last_dot(host, cut, floor);
        if (dot == SIZE_MAX) break;
        int64_t slot = find(t, host + dot + 1, length - dot - 1, floor);
        if (slot < 0) return found;
        if (t->entries[slot].app >= 0) found = t->entries[slot].app;
        cut = dot;
    }
    int64_t slot = find(t, host, length, floor);
    return slot >= 0 && t->entries[slot].app >= 0 ? t->entries[slot].app : found;
}

int32_t tessera_host_lookup(const tessera_host_table *table, const uint8_t *host, size_t length) {
    return lookup(table, host, length, host);
}

// MARK: - Stage two: lines

typedef struct {
    tessera_log_format format;
    const uint8_t *data;
    size_t max_line;
    const tessera_host_table *table;
    tessera_log_state *state;
    tessera_log_line *out;
    size_t produced;
    // CEF: the next of the chunk's `f` positions (masks.keys) a line may hold.
    const uint16_t *key;
} scan;

INLINE void hand_back(scan *s, tessera_log_kind kind, size_t start, size_t end, size_t hs, size_t he, int32_t app) {
    tessera_log_line *line = &s->out[s->produced++];
    line->start = start;
    line->end = end;
    line->host_start = hs;
    line->host_end = he;
    line->number = s->state->lines;
    line->kind = kind;
    line->app = app;
}

// A whole line, p[ls..<nl) of the chunk at `base` (`nl` its newline, or the end of the data), whose host the fast path
// looked for: `found`, and then at p[hs..<he) (offsets into the chunk, like ls and nl).
INLINE void found_line(scan *s, size_t base, size_t ls, size_t nl, int found, size_t hs, size_t he) {
    const uint8_t *p = s->data + base;
    s->state->lines++;
    if (nl - ls >= s->max_line) {
        hand_back(s, tessera_log_truncated, base + ls, base + ls, 0, 0, -1);
        return;
    }
    size_t e = nl > ls && p[nl - 1] == '\r' ? nl - 1 : nl;
    if (!found) {
        hand_back(s, tessera_log_parse, base + ls, base + e, 0, 0, -1);
    } else if (!s->table) {
        hand_back(s, tessera_log_host, base + ls, base + e, base + hs, base + he, -1);
    } else {
        int32_t app = lookup(s->table, p + hs, he - hs, p + ls);
        if (app < 0) s->state->requests++;
        else hand_back(s, tessera_log_host, base + ls, base + e, base + hs, base + he, app);
    }
}

// One whole line, p[ls..<nl) of the chunk at `base` (`nl` its newline, or the end of the data); `m` the chunk's masks,
// or NULL for a line longer than a chunk (handed back to the parser).
INLINE void line(scan *s, size_t base, const masks *m, size_t ls, size_t nl) {
    const uint8_t *p = s->data + base;
    size_t e = nl > ls && p[nl - 1] == '\r' ? nl - 1 : nl, hs = 0, he = 0;
    int found = 0;
    if (m && nl - ls < s->max_line) {
        if (s->format == tessera_log_squid) found = squid_host(p, m, ls, e, &hs, &he);
        else if (s->format == tessera_log_cef) found = cef_host(p, m, &s->key, ls, e, &hs, &he);
    }
    found_line(s, base, ls, nl, found, hs, he);
}

// The positions of the set bits of `words[0..<blocks)` in order, into `out` (which has room for three more than there
// are bits); returns how many. Two are written per word whether there or not, so a word with none, one or two (a
// newline every 100 bytes or so) costs no branch that the data decides.
INLINE size_t flatten(const uint64_t *words, size_t blocks, uint16_t *out) {
    size_t count = 0;
    for (size_t k = 0; k < blocks; k++) {
        uint64_t w = words[k];
        size_t found = (size_t)__builtin_popcountll(w);
        out[count] = (uint16_t)(64 * k + (w ? (size_t)__builtin_ctzll(w) : 0));
        w &= w - 1;
        out[count + 1] = (uint16_t)(64 * k + (w ? (size_t)__builtin_ctzll(w) : 0));
        for (size_t j = 2; j < found; j++) {
            w &= w - 1;
            out[count + j] = (uint16_t)(64 * k + (size_t)__builtin_ctzll(w));
        }
        count += found;
    }
    return count;
}

#define SCAN_PARAMETERS                                                                                                \
    tessera_log_format format, const uint8_t *data, size_t length, size_t *from, int final, size_t max_line,           \
        const tessera_host_table *table, tessera_log_state *state, tessera_log_line *out, size_t capacity
#define SCAN_ARGUMENTS format, data, length, from, final, max_line, table, state, out, capacity

INLINE size_t scan_with(stage1_fn stage1, SCAN_PARAMETERS) {
    if (max_line == 0) max_line = 1;
    scan s = {format, data, max_line, table, state, out, 0, NULL};
    masks m;
    uint16_t newlines[CHUNK + 4];
    m.newlines = newlines;
    // Squid: each line's host (offsets into the chunk), found before the lookups.
    struct { uint16_t found, start, end; } hosts[CHUNK];
    size_t at = *from;
    int waiting = 0;
    while (s.produced < capacity && !waiting) {
        if (state->skipping) {
            const uint8_t *newline = at < length ? memchr(data + at, '\n', length - at) : NULL;
            if (!newline) { at = length; break; }
            at = (size_t)(newline - data) + 1;
            state->skipping = 0;
        }
        if (at >= length) break;
        size_t n = length - at < CHUNK ? length - at : CHUNK;
        int rest_of_data = at + n == length;
        stage1(format, data + at, n, &m);
        // The chunk's newlines in order, and for CEF whether it has backslashes or `==` at all.
        size_t blocks = (n + 63) / 64, count = m.newline_count;
        if (!m.listed_in_stage1) {
            count = flatten(m.nl, blocks, newlines);
            if (format == tessera_log_cef) {
                uint64_t backslash = 0, twice = 0;
                for (size_t k = 0; k < blocks; k++) {
                    backslash |= m.d[k];
                    twice |= m.g[k];
                }
                m.any_backslash = backslash;
                m.any_double = twice;
                m.keys[flatten(m.f, blocks, m.keys)] = 0xffff;
            }
        }
        if (format == tessera_log_cef) s.key = m.keys;
        // While its lines are read, the next chunk is fetched into the cache: the bytes as far past this chunk's
        // end as the line is past its start (a log is read once, from memory, and stage one would wait for it).
        size_t ahead = at + n;
        size_t ls = 0;
        if (format == tessera_log_squid) {
            // Squid: first every line's host, then the lookups. A lookup's loads wait on the host's last bytes, which
            // wait on the masks; between the searches of the next lines the processor overlapped few of them, and
            // apart they overlap (lookups took a third of the Squid scan; CEF's host search is longer and gains
            // nothing from this).
            const uint8_t *p = data + at;
            for (size_t j = 0, start = 0; j < count; j++) {
                size_t nl = newlines[j], e = nl > start && p[nl - 1] == '\r' ? nl - 1 : nl, hs = 0, he = 0;
                hosts[j].found = (uint16_t)(nl - start < max_line && squid_host(p, &m, start, e, &hs, &he));
                hosts[j].start = (uint16_t)hs;
                hosts[j].end = (uint16_t)he;
                start = nl + 1;
            }
        }
        for (size_t j = 0; j < count && s.produced < capacity; j++) {
            if (ahead + ls + 128 <= length) {
                __builtin_prefetch(data + ahead + ls);
                __builtin_prefetch(data + ahead + ls + 64);
            }
            if (format == tessera_log_squid) found_line(&s, at, ls, newlines[j], hosts[j].found, hosts[j].start, hosts[j].end);
            else line(&s, at, &m, ls, newlines[j]);
            ls = newlines[j] + 1;
        }
        // No newline in the rest of the chunk: classify again from this line, unless it starts the chunk.
        if (ls < n && s.produced < capacity && (rest_of_data || ls == 0)) {
            size_t rest = length - at - ls, reach = rest < max_line ? rest : max_line;
            const uint8_t *newline = NULL;
            // A line longer than a chunk: its newline, within max_line.
            if (!rest_of_data && reach > n) newline = memchr(data + at + n, '\n', reach - n);
            if (newline) {
                size_t end = (size_t)(newline - data) - at;
                line(&s, at, NULL, 0, end);
                ls = end + 1;
            } else if (rest >= max_line) {
                line(&s, at, NULL, ls, ls + max_line);
                state->skipping = 1;
                ls += max_line;
            } else if (final) {
                line(&s, at, rest_of_data ? &m : NULL, ls, ls + rest);
                ls += rest;
            } else {
                waiting = 1;  // the rest of an unfinished last line comes with more data
            }
        }
        at += ls;
    }
    *from = at;
    return s.produced;
}

static size_t scan_portable(SCAN_PARAMETERS) { return scan_with(stage1_portable, SCAN_ARGUMENTS); }
#if TESSERA_X86
static size_t scan_sse2(SCAN_PARAMETERS) { return scan_with(stage1_sse2, SCAN_ARGUMENTS); }
static __attribute__((target("avx2,popcnt,bmi,lzcnt"))) size_t scan_avx2(SCAN_PARAMETERS) {
    return scan_with(stage1_avx2, SCAN_ARGUMENTS);
}
static __attribute__((target("avx512f,avx512bw,avx2,popcnt,bmi,lzcnt"))) size_t scan_avx512(SCAN_PARAMETERS) {
    return scan_with(stage1_avx512, SCAN_ARGUMENTS);
}
#endif

typedef size_t (*scan_fn)(SCAN_PARAMETERS);
static scan_fn chosen;

int tessera_log_scan_use(tessera_log_instructions instructions) {
    scan_fn f = NULL;
    switch (instructions) {
    case tessera_log_best:
#if TESSERA_X86
        f = has_avx512() ? scan_avx512 : has_avx2() ? scan_avx2 : scan_sse2;
#else
        f = scan_portable;
#endif
        break;
    case tessera_log_portable: f = scan_portable; break;
#if TESSERA_X86
    case tessera_log_sse2: f = scan_sse2; break;
    case tessera_log_avx2: f = has_avx2() ? scan_avx2 : NULL; break;
    case tessera_log_avx512: f = has_avx512() ? scan_avx512 : NULL; break;
#else
    default: break;
#endif
    }
    if (!f) return 0;
    __atomic_store_n(&chosen, f, __ATOMIC_RELAXED);
    return 1;
}

/// The scanner in use, the best the processor has when none was chosen yet: chosen once (CPUID traps to the hypervisor
/// in a virtual machine); a race only chooses the same twice. Its instruction set is also the pair and token finders'.
static scan_fn chosen_scan(void) {
    scan_fn f = __atomic_load_n(&chosen, __ATOMIC_RELAXED);
    if (!f) {
        tessera_log_scan_use(tessera_log_best);
        f = __atomic_load_n(&chosen, __ATOMIC_RELAXED);
    }
    return f;
}

size_t tessera_log_scan(SCAN_PARAMETERS) {
    return chosen_scan()(SCAN_ARGUMENTS);
}

// MARK: - CEF extension pairs

// One pass over a CEF line, 64 bytes at a time: a backslash anywhere hands the line back (-3); the first `C` of `CEF:`,
// the seventh `|` after it (where the extension starts), then each `=` with the last space before it (where its key
// starts) and the value before that key (to the space before it, trailing spaces dropped), in the Swift parser's order.
#define CEF_PAIRS_BODY(CLASSIFY_BLOCK)                                                                                 \
    /* phase 0: looking for `CEF:`; 1: counting the header's `|`; 2: the extension's pairs. */                        \
    int phase = 0, bars = 0, has_key = 0;                                                                              \
    size_t value_start = 0, count = 0, key_start = 0, key_end = 0;                                                     \
    /* One past the last space before the block (a key starts at the value's start at the earliest). */               \
    size_t after_space = 0;                                                                                            \
    uint8_t pad[64];                                                                                                   \
    for (size_t base = 0; base < n; base += 64) {                                                                      \
        const uint8_t *q = p + base;                                                                                   \
        if (n - base < 64) {                                                                                           \
            memset(pad, 0, sizeof pad);                                                                                \
            memcpy(pad, q, n - base);                                                                                  \
            q = pad;                                                                                                   \
        }                                                                                                              \
        uint64_t eq, sp, bar, cap, bs;                                                                                 \
        CLASSIFY_BLOCK(q, eq, sp, bar, cap, bs);                                                                       \
        if (bs) return -3;                                                                                             \
        if (phase == 0) {                                                                                              \
            for (; cap; cap &= cap - 1) {                                                                              \
                size_t j = base + (size_t)__builtin_ctzll(cap);                                                        \
                if (j + 4 <= n && p[j + 1] == 'E' && p[j + 2] == 'F' && p[j + 3] == ':') {                             \
                    phase = 1;                                                                                         \
                    bar &= ~0ULL << (j - base);                                                                        \
                    break;                                                                                             \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
        if (phase == 1) {                                                                                              \
            unsigned last = 0;                                                                                         \
            for (; bar && bars < 7; bar &= bar - 1, bars++) last = (unsigned)__builtin_ctzll(bar);                    \
            if (bars == 7) {                                                                                           \
                phase = 2;                                                                                             \
                value_start = base + last + 1;                                                                         \
                eq = last == 63 ? 0 : eq & (~0ULL << (last + 1));                                                      \
            }                                                                                                          \
        }                                                                                                              \
        if (phase == 2) {                                                                                              \
            for (; eq; eq &= eq - 1) {                                                                                 \
                unsigned b = (unsigned)__builtin_ctzll(eq);                                                            \
                size_t at = base + b;                                                                                  \
                uint64_t before = sp & ((1ULL << b) - 1);                                                              \
                size_t k = before ? base + 64 - (size_t)__builtin_clzll(before) : after_space;                         \
                if (k < value_start) k = value_start;                                                                  \
                if (k >= at) continue; /* an `=` right after a space or a key's `=`: part of the value */              \
                if (has_key) {                                                                                         \
                    if (count == capacity) return -3;                                                                  \
                    size_t end = k - 1 > value_start ? k - 1 : value_start;                                            \
                    while (end > value_start && p[end - 1] == ' ') end--;                                              \
                    out[count++] = (tessera_cef_pair){(uint32_t)key_start, (uint32_t)key_end, (uint32_t)value_start,   \
                                                      (uint32_t)end};                                                  \
                }                                                                                                      \
                has_key = 1;                                                                                           \
                key_start = k;                                                                                         \
                key_end = at;                                                                                          \
                value_start = at + 1;                                                                                  \
            }                                                                                                          \
        }                                                                                                              \
        if (sp) after_space = base + 64 - (size_t)__builtin_clzll(sp);                                                 \
    }                                                                                                                  \
    if (phase < 2) return phase == 0 ? -1 : -2;                                                                        \
    if (has_key) {                                                                                                     \
        if (count == capacity) return -3;                                                                              \
        size_t end = n;                                                                                                \
        while (end > value_start && p[end - 1] == ' ') end--;                                                          \
        out[count++] = (tessera_cef_pair){(uint32_t)key_start, (uint32_t)key_end, (uint32_t)value_start,               \
                                          (uint32_t)end};                                                              \
    }                                                                                                                  \
    return (int64_t)count;

#define CEF_PAIRS_PARAMETERS const uint8_t *p, size_t n, tessera_cef_pair *out, size_t capacity

static int64_t cef_pairs_portable(CEF_PAIRS_PARAMETERS) {
#define CLASSIFY_PORTABLE(q, eq, sp, bar, cap, bs)                                                                     \
    eq = eq_portable(q, '=');                                                                                          \
    sp = eq_portable(q, ' ');                                                                                          \
    bar = eq_portable(q, '|');                                                                                         \
    cap = eq_portable(q, 'C');                                                                                         \
    bs = eq_portable(q, '\\')
    CEF_PAIRS_BODY(CLASSIFY_PORTABLE)
}

#if TESSERA_X86
static int64_t cef_pairs_sse2(CEF_PAIRS_PARAMETERS) {
#define CLASSIFY_SSE2(q, eq, sp, bar, cap, bs)                                                                         \
    __m128i v[4];                                                                                                      \
    LOAD_SSE2(q);                                                                                                      \
    eq = eq_sse2(v, '=');                                                                                              \
    sp = eq_sse2(v, ' ');                                                                                              \
    bar = eq_sse2(v, '|');                                                                                             \
    cap = eq_sse2(v, 'C');                                                                                             \
    bs = eq_sse2(v, '\\')
    CEF_PAIRS_BODY(CLASSIFY_SSE2)
}

static AVX2 int64_t cef_pairs_avx2(CEF_PAIRS_PARAMETERS) {
#define CLASSIFY_AVX2(q, eq, sp, bar, cap, bs)                                                                         \
    __m256i lo, hi;                                                                                                    \
    LOAD_AVX2(q);                                                                                                      \
    eq = eq_avx2(lo, hi, '=');                                                                                         \
    sp = eq_avx2(lo, hi, ' ');                                                                                         \
    bar = eq_avx2(lo, hi, '|');                                                                                        \
    cap = eq_avx2(lo, hi, 'C');                                                                                        \
    bs = eq_avx2(lo, hi, '\\')
    CEF_PAIRS_BODY(CLASSIFY_AVX2)
}

static AVX512 int64_t cef_pairs_avx512(CEF_PAIRS_PARAMETERS) {
#define CLASSIFY_AVX512(q, eq, sp, bar, cap, bs)                                                                       \
    __m512i v;                                                                                                         \
    LOAD_AVX512(q);                                                                                                    \
    eq = EQ_AVX512('=');                                                                                               \
    sp = EQ_AVX512(' ');                                                                                               \
    bar = EQ_AVX512('|');                                                                                              \
    cap = EQ_AVX512('C');                                                                                              \
    bs = EQ_AVX512('\\')
    CEF_PAIRS_BODY(CLASSIFY_AVX512)
}
#endif

int64_t tessera_cef_pairs(const uint8_t *p, size_t n, tessera_cef_pair *out, size_t capacity) {
    scan_fn f = chosen_scan();
#if TESSERA_X86
    if (f == scan_avx512) return cef_pairs_avx512(p, n, out, capacity);
    if (f == scan_avx2) return cef_pairs_avx2(p, n, out, capacity);
    if (f == scan_sse2) return cef_pairs_sse2(p, n, out, capacity);
#endif
    (void)f;
    return cef_pairs_portable(p, n, out, capacity);
}

// MARK: - Tokens

// A line's tokens from the edges of its blanks: bit i of `edges` is set where byte i's blankness differs from the byte
// before's (a line's start counts as after a blank), so edges alternate: a token's start, its end, the next start...
#define LINE_TOKENS_BODY(BLANKS)                                                                                       \
    size_t count = 0, half = 0; /* bounds written: 2 * count + half */                                                 \
    uint64_t carry = 1;                                                                                                \
    uint8_t pad[64];                                                                                                   \
    for (size_t base = 0; base < n && count < capacity; base += 64) {                                                  \
        const uint8_t *q = p + base;                                                                                   \
        if (n - base < 64) {                                                                                           \
            memset(pad, ' ', sizeof pad);                                                                              \
            memcpy(pad, q, n - base);                                                                                  \
            q = pad;                                                                                                   \
        }                                                                                                              \
        uint64_t blank;                                                                                                \
        BLANKS(q, blank);                                                                                              \
        uint64_t edges = blank ^ ((blank << 1) | carry);                                                               \
        carry = blank >> 63;                                                                                           \
        for (; edges && count < capacity; edges &= edges - 1) {                                                        \
            bounds[2 * count + half] = (uint32_t)(base + (size_t)__builtin_ctzll(edges));                              \
            if (half) count++;                                                                                         \
            half ^= 1;                                                                                                 \
        }                                                                                                              \
    }                                                                                                                  \
    /* A token running to the line's end (the padding is blank: only a line ending at a block's end gets here). */    \
    if (half) bounds[2 * count++ + 1] = (uint32_t)n;                                                                   \
    return count;

#define LINE_TOKENS_PARAMETERS const uint8_t *p, size_t n, uint32_t *bounds, size_t capacity

static size_t line_tokens_portable(LINE_TOKENS_PARAMETERS) {
#define BLANKS_PORTABLE(q, blank) blank = eq_portable(q, ' ') | eq_portable(q, '\t')
    LINE_TOKENS_BODY(BLANKS_PORTABLE)
}

#if TESSERA_X86
static size_t line_tokens_sse2(LINE_TOKENS_PARAMETERS) {
#define BLANKS_SSE2(q, blank)                                                                                          \
    __m128i v[4];                                                                                                      \
    LOAD_SSE2(q);                                                                                                      \
    blank = eq_sse2(v, ' ') | eq_sse2(v, '\t')
    LINE_TOKENS_BODY(BLANKS_SSE2)
}

static AVX2 size_t line_tokens_avx2(LINE_TOKENS_PARAMETERS) {
#define BLANKS_AVX2(q, blank)                                                                                          \
    __m256i lo, hi;                                                                                                    \
    LOAD_AVX2(q);                                                                                                      \
    blank = eq_avx2(lo, hi, ' ') | eq_avx2(lo, hi, '\t')
    LINE_TOKENS_BODY(BLANKS_AVX2)
}

static AVX512 size_t line_tokens_avx512(LINE_TOKENS_PARAMETERS) {
#define BLANKS_AVX512(q, blank)                                                                                        \
    __m512i v;                                                                                                         \
    LOAD_AVX512(q);                                                                                                    \
    blank = EQ_AVX512(' ') | EQ_AVX512('\t')
    LINE_TOKENS_BODY(BLANKS_AVX512)
}
#endif

size_t tessera_line_tokens(const uint8_t *p, size_t n, uint32_t *bounds, size_t capacity) {
    scan_fn f = chosen_scan();
#if TESSERA_X86
    if (f == scan_avx512) return line_tokens_avx512(p, n, bounds, capacity);
    if (f == scan_avx2) return line_tokens_avx2(p, n, bounds, capacity);
    if (f == scan_sse2) return line_tokens_sse2(p, n, bounds, capacity);
#endif
    (void)f;
    return line_tokens_portable(p, n, bounds, capacity);
}
