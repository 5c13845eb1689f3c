// The traffic importer's line scanner (issue 17): finds the host of each Squid or CEF log line and probes the AI app
// catalog's host table without a call per line. The input is read 64 bytes at a time into bitmasks of the bytes
// that matter (newlines, blanks, `|`, `=`, `\`), with SSE2, AVX2 or AVX-512 where the processor has them and a
// portable loop elsewhere, the way simdjson's first stage works; each line's fields are then found with bit
// operations on those masks. A line the fast path is not sure of (escapes, a header, a malformed line, a host in the catalog) is handed
// back to the Swift parsers, which decide it.
#ifndef TESSERA_CLOGSCAN_H
#define TESSERA_CLOGSCAN_H

#include <stddef.h>
#include <stdint.h>

/// What the fast path reads: only the line splitting (every line is handed back), Squid's native format, or CEF.
typedef enum {
    tessera_log_lines = 0,
    tessera_log_squid = 1,
    tessera_log_cef = 2,
} tessera_log_format;

/// What a line handed back is.
typedef enum {
    /// The fast path is not sure of the line: the parser decides it.
    tessera_log_parse = 0,
    /// The fast path found the host (`host_start..<host_end`) of a line that certainly parses as a request: a
    /// catalog host's (`app`) when the scan has a table; any host when it has none.
    tessera_log_host = 1,
    /// A line of `max_line` bytes or more: reported, its bytes dropped.
    tessera_log_truncated = 2,
} tessera_log_kind;

/// A line handed back; offsets are into the buffer given to tessera_log_scan.
typedef struct {
    uint64_t start, end;
    uint64_t host_start, host_end;
    /// The line's number in the input, from 1.
    uint64_t number;
    int32_t kind;
    int32_t app;
} tessera_log_line;

/// What a scan carries from one buffer to the next.
typedef struct {
    /// Lines met so far (every line, handed back or not).
    uint64_t lines;
    /// Lines the fast path found to be requests to a host that is no catalog app's: counted, not handed back.
    uint64_t requests;
    /// In a line of `max_line` bytes or more: its bytes are dropped up to its newline.
    int32_t skipping;
} tessera_log_state;

/// A slot of the host table: a host or a parent domain of catalog hosts (`app` -1), its bytes at `text[start]`.
typedef struct {
    int32_t start;
    int32_t length;
    int32_t app;
} tessera_host_entry;

/// The host table (open addressing, linear probing): `hashes` (0 for an empty slot) and `entries` of `mask + 1`
/// slots. Every parent domain of a catalog host is in it too (`app` -1), so a lookup walking a name from its last
/// label stops at the first suffix that is absent: one probe for almost every host of a proxy log.
typedef struct {
    const uint64_t *hashes;
    const tessera_host_entry *entries;
    const uint8_t *text;
    uint64_t mask;
} tessera_host_table;

/// ASCII capitals of a word to small letters (bytes from 0x80 up are left alone).
static inline uint64_t tessera_host_lowercased(uint64_t w) {
    const uint64_t ones = 0x0101010101010101ULL, low7 = 0x7f7f7f7f7f7f7f7fULL;
    uint64_t b = w & low7;
    // 0x80 in each byte from "A" (0x41) through "Z" (0x5a) and below 0x80.
    uint64_t capital = (b + ones * (0x80 - 0x41)) & ~(b + ones * (0x80 - 0x5b)) & ~w & (ones * 0x80);
    return w | (capital >> 2);
}

/// A host table hash from a name's first and last eight bytes (as little-endian words; for a name shorter than eight
/// bytes, its bytes as `first` and 0 as `last`) and its length.
static inline uint64_t tessera_host_mix(uint64_t first, uint64_t last, size_t length) {
    uint64_t h = tessera_host_lowercased(first) * 0x9e3779b97f4a7c15ULL;
    h ^= tessera_host_lowercased(last) * 0xc2b2ae3d27d4eb4fULL;
    h ^= (uint64_t)length * 0x165667b19e3779f9ULL;
    h ^= h >> 29;
    return h | 1;
}

/// The hash of `name[0..<length)` lowercased, never 0: from its first and last eight bytes (fewer for a shorter name)
/// and its length, so its cost does not grow with the name.
static inline uint64_t tessera_host_hash(const uint8_t *name, size_t length) {
    uint64_t first = 0, last = 0;
    if (length >= 8) {
        __builtin_memcpy(&first, name, 8);
        __builtin_memcpy(&last, name + length - 8, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        first = __builtin_bswap64(first);
        last = __builtin_bswap64(last);
#endif
    } else {
        for (size_t k = 0; k < length; k++) first |= (uint64_t)name[k] << (8 * k);
    }
    return tessera_host_mix(first, last, length);
}

/// The slot where a hash's probe starts: its high bits (a product's low bits mix least, and the lowest is always set).
static inline uint64_t tessera_host_slot(uint64_t hash, uint64_t mask) { return (hash >> 32) & mask; }

/// The entry of `name[0..<length)` (compared lowercased), or -1 when the table does not hold it.
int64_t tessera_host_find(const tessera_host_table *table, const uint8_t *name, size_t length);

/// The app of `host` or of its most specific parent domain in the table, or -1; `host` is ASCII, any case, without
/// a port (trailing dots ignored).
int32_t tessera_host_lookup(const tessera_host_table *table, const uint8_t *host, size_t length);

/// Scans the lines of `data[*from ..< length)` and hands back, in `out` (at most `capacity`), the lines the caller
/// must look at: with a `table`, the lines the fast path is unsure of, the lines to catalog hosts and the truncated
/// lines (other requests are only counted in `state->requests`); without one, every line. Lines end at `\n`, a `\r`
/// before it dropped; the last line needs no newline when `final` is set. A line of `max_line` bytes or more is
/// handed back truncated. Returns the number handed back and moves `*from` to where the next call goes on: when
/// `out` is full, or at the end of the data (at the start of an unfinished last line unless `final`).
size_t tessera_log_scan(tessera_log_format format, const uint8_t *data, size_t length, size_t *from, int final,
                        size_t max_line, const tessera_host_table *table, tessera_log_state *state,
                        tessera_log_line *out, size_t capacity);

/// A `key=value` pair of a CEF extension: offsets into the line, the value without the spaces that end it.
typedef struct {
    uint32_t key_start, key_end, value_start, value_end;
} tessera_cef_pair;

/// The pairs of a CEF line's extension (after `CEF:` and its seven `|`), in order, as the Swift parser reads them: a
/// key is the bytes from the last space (or the previous value's start) to an `=`, a value runs to the space before
/// the next key. For a line that the scan handed back, with `=` and spaces found 64 bytes at a time (in the
/// instructions scans use). Returns how many it wrote, or -1 when the line has no `CEF:`, -2 when its header has fewer
/// than eight fields, -3 when it holds a backslash (escapes are the Swift parser's) or more than `capacity` pairs.
int64_t tessera_cef_pairs(const uint8_t *line, size_t length, tessera_cef_pair *out, size_t capacity);

/// The first `capacity` tokens of a line (runs of bytes other than spaces and tabs) as offsets, `bounds[2 * i]` where
/// token `i` starts and `bounds[2 * i + 1]` where it ends, found 64 bytes at a time (in the instructions scans use):
/// Squid's fields, as its Swift parser reads them. Returns how many it wrote.
size_t tessera_line_tokens(const uint8_t *line, size_t length, uint32_t *bounds, size_t capacity);

/// The instructions a scan uses: the best this processor has (the default), or, for tests that compare them on the
/// same input, a given set: portable C, SSE2, AVX2 or AVX-512 (x86-64 only).
typedef enum {
    tessera_log_best = 0,
    tessera_log_portable = 1,
    tessera_log_sse2 = 2,
    tessera_log_avx2 = 3,
    tessera_log_avx512 = 4,
} tessera_log_instructions;

/// Makes every later scan (in the process) use `instructions`; returns 0, changing nothing, where they are missing.
int tessera_log_scan_use(tessera_log_instructions instructions);

#endif
