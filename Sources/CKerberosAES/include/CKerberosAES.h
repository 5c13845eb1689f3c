// AES with its key schedule expanded once per key, for Kerberos's AES-CTS (RFC 3962), on the processor's AES
// instructions (AES-NI). Where they are missing (another architecture, or an x86-64 without them),
// tessera_krb_aes_available() is 0 and the Swift side uses swift-crypto's AES instead: no table-driven fallback
// here, whose timing would depend on the key.
#ifndef TESSERA_CKERBEROS_AES_H
#define TESSERA_CKERBEROS_AES_H

#include <stddef.h>
#include <stdint.h>

/// An expanded AES-128 or AES-256 key: the round keys for encryption and, for decryption, the equivalent inverse
/// cipher's (RFC-independent: FIPS 197 section 5.3.5).
typedef struct {
    uint8_t encryption[15][16];
    uint8_t decryption[15][16];
    int rounds;
} tessera_krb_aes_key;

/// 1 when this processor has the AES instructions this file uses, 0 otherwise (then nothing else may be called).
/// Ask once and keep the answer: CPUID traps to the hypervisor in a virtual machine, tens of microseconds.
int tessera_krb_aes_available(void);

/// Expands a 16- or 32-byte key; returns 0, or -1 for another length (or on a processor without the instructions).
int tessera_krb_aes_init(tessera_krb_aes_key *key, const uint8_t *bytes, size_t length);

/// Overwrites the round keys with zeros.
void tessera_krb_aes_clear(tessera_krb_aes_key *key);

/// One block encrypted (ECB): DR's building block.
void tessera_krb_aes_encrypt_block(const tessera_krb_aes_key *key, const uint8_t in[16], uint8_t out[16]);

/// RFC 3962 section 5's AES-CTS (CBC with ciphertext stealing, the last two blocks always swapped, a zero IV) of
/// `length` bytes, `length` at least 16; `in` and `out` are the same buffer (in place) or do not overlap. Returns 0,
/// or -1 for a length below 16.
int tessera_krb_aes_cts_encrypt(const tessera_krb_aes_key *key, const uint8_t *in, uint8_t *out, size_t length);
int tessera_krb_aes_cts_decrypt(const tessera_krb_aes_key *key, const uint8_t *in, uint8_t *out, size_t length);

/// SHA-1 (FIPS 180-4) on the processor's SHA extensions, for HMAC-SHA1 (RFC 2104) with its pads hashed once per
/// key: the integrity check of aes-cts-hmac-sha1-96 and the PAC's checksum. Where the extensions are missing,
/// tessera_krb_sha1_available() is 0 and Kerberos uses swift-crypto's HMAC.
typedef struct {
    uint32_t state[5];
    uint64_t length;
    size_t used;
    uint8_t buffer[64];
} tessera_krb_sha1;

typedef struct {
    tessera_krb_sha1 inner;
    tessera_krb_sha1 outer;
} tessera_krb_hmac_sha1;

/// 1 when this processor has the SHA extensions (and SSSE3 and SSE4.1); ask once (CPUID traps in a VM).
int tessera_krb_sha1_available(void);
/// Keys `mac` (the key hashed first when longer than a block).
void tessera_krb_hmac_sha1_init(tessera_krb_hmac_sha1 *mac, const uint8_t *key, size_t length);
/// Hashes more message into a keyed HMAC's inner hash (`&mac->inner`).
void tessera_krb_sha1_update(tessera_krb_sha1 *hash, const uint8_t *data, size_t count);
/// The 20-byte HMAC of what `mac` has hashed; `mac` itself is left as it was.
void tessera_krb_hmac_sha1_final(const tessera_krb_hmac_sha1 *mac, uint8_t out[20]);

/// RFC 3961 section 5.1's DR with RFC 3962's random-to-key (the identity): `length` bytes (16 or 32, the key's
/// length) of successive encryptions under `base` of the n-folded constant. Needs the AES instructions and SHA
/// extensions both, as the functions below do.
void tessera_krb_aes_dr(const tessera_krb_aes_key *base, const uint8_t folded[16], uint8_t *out, size_t length);

/// One key usage's n-folded constants (RFC 3961 section 5.3): usage | 0xAA for Ke, usage | 0x55 for Ki.
typedef struct {
    uint8_t encryption[16];
    uint8_t integrity[16];
} tessera_krb_usage_constants;

/// RFC 3961 section 5.3's encryption for aes128- and aes256-cts-hmac-sha1-96 (RFC 3962) under one key usage of a
/// session key, Ke and Ki derived from `key` (16 or 32 bytes) on the stack and wiped before returning: nothing is
/// allocated and no expanded key outlives the call. `out` receives the confounder and `plaintext` encrypted (16 +
/// `length` bytes) and the 12-byte HMAC-SHA1-96 of both. Returns 0, or -1 for another key length.
int tessera_krb_aes_sha1_encrypt(
    const uint8_t *key, size_t keyLength, const tessera_krb_usage_constants *usage, const uint8_t confounder[16],
    const uint8_t *plaintext, size_t length, uint8_t *out);

/// The decryption of `length` bytes (an encrypted confounder and plaintext, then the 12-byte HMAC) with the same
/// keys: `out` receives `length` - 12 bytes, the confounder and the plaintext. Returns 0; -1 for another key length
/// or a `length` below 28; -2 when the HMAC does not verify (compared in constant time), and then `out` is zeroed.
int tessera_krb_aes_sha1_decrypt(
    const uint8_t *key, size_t keyLength, const tessera_krb_usage_constants *usage, const uint8_t *in, size_t length,
    uint8_t *out);

/// `count` bytes from the kernel's CSPRNG in one call (`getrandom` on Linux, `arc4random_buf` elsewhere); 0, or -1
/// when the kernel refuses.
int tessera_krb_random(uint8_t *out, size_t count);

#endif
