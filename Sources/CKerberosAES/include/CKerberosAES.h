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
int tessera_krb_aes_available(void);

/// Expands a 16- or 32-byte key; returns 0, or -1 for another length or without the AES instructions.
int tessera_krb_aes_init(tessera_krb_aes_key *key, const uint8_t *bytes, size_t length);

/// Overwrites the round keys with zeros.
void tessera_krb_aes_clear(tessera_krb_aes_key *key);

/// One block encrypted (ECB): DR's building block.
void tessera_krb_aes_encrypt_block(const tessera_krb_aes_key *key, const uint8_t in[16], uint8_t out[16]);

/// RFC 3962 section 5's AES-CTS (CBC with ciphertext stealing, the last two blocks always swapped, a zero IV) of
/// `length` bytes, `length` at least 16; `in` and `out` do not overlap. Returns 0, or -1 for a length below 16.
int tessera_krb_aes_cts_encrypt(const tessera_krb_aes_key *key, const uint8_t *in, uint8_t *out, size_t length);
int tessera_krb_aes_cts_decrypt(const tessera_krb_aes_key *key, const uint8_t *in, uint8_t *out, size_t length);

#endif
