#include "CKerberosAES.h"

#include <string.h>

// A session key's work for one key usage: the key expanded, Ke and Ki derived from it by DR, used once and wiped.
// A validation opens the authenticator (usage 11) and seals the AP-REP (usage 12) with the ticket's session key, a
// key it has not seen before, so each derivation is used once: no schedule is kept between calls.

#define MAC_LENGTH 12

static void wipe(void *p, size_t n) {
    memset(p, 0, n);
    // The compiler may not drop the memset as a dead store: the memory is treated as read after it.
    __asm__ __volatile__("" : : "r"(p) : "memory");
}

void tessera_krb_aes_dr(const tessera_krb_aes_key *base, const uint8_t folded[16], uint8_t *out, size_t length) {
    uint8_t block[16];
    tessera_krb_aes_encrypt_block(base, folded, block);
    for (size_t at = 0;;) {
        memcpy(out + at, block, 16);
        at += 16;
        if (at >= length) break;
        tessera_krb_aes_encrypt_block(base, block, block);
    }
    wipe(block, sizeof block);
}

typedef struct {
    tessera_krb_aes_key base;
    tessera_krb_aes_key encryption;
    tessera_krb_hmac_sha1 integrity;
    uint8_t derived[32];
} usage_keys;

static int derive(usage_keys *k, const uint8_t *key, size_t keyLength, const tessera_krb_usage_constants *usage) {
    if (keyLength != 16 && keyLength != 32) return -1;
    if (tessera_krb_aes_init(&k->base, key, keyLength) != 0) return -1;
    tessera_krb_aes_dr(&k->base, usage->encryption, k->derived, keyLength);
    if (tessera_krb_aes_init(&k->encryption, k->derived, keyLength) != 0) return -1;
    tessera_krb_aes_dr(&k->base, usage->integrity, k->derived, keyLength);
    tessera_krb_hmac_sha1_init(&k->integrity, k->derived, keyLength);
    return 0;
}

int tessera_krb_aes_sha1_encrypt(
    const uint8_t *key, size_t keyLength, const tessera_krb_usage_constants *usage, const uint8_t confounder[16],
    const uint8_t *plaintext, size_t length, uint8_t *out) {
    usage_keys k;
    if (derive(&k, key, keyLength, usage) != 0) {
        wipe(&k, sizeof k);
        return -1;
    }
    // The HMAC is over the confounder and the plaintext, which are encrypted in place in `out` afterwards.
    memcpy(out, confounder, 16);
    memcpy(out + 16, plaintext, length);
    tessera_krb_sha1_update(&k.integrity.inner, out, 16 + length);
    tessera_krb_aes_cts_encrypt(&k.encryption, out, out, 16 + length);
    uint8_t mac[20];
    tessera_krb_hmac_sha1_final(&k.integrity, mac);
    memcpy(out + 16 + length, mac, MAC_LENGTH);
    wipe(&k, sizeof k);
    return 0;
}

int tessera_krb_aes_sha1_decrypt(
    const uint8_t *key, size_t keyLength, const tessera_krb_usage_constants *usage, const uint8_t *in, size_t length,
    uint8_t *out) {
    if (length < 16 + MAC_LENGTH) return -1;
    usage_keys k;
    if (derive(&k, key, keyLength, usage) != 0) {
        wipe(&k, sizeof k);
        return -1;
    }
    const size_t body = length - MAC_LENGTH;
    tessera_krb_aes_cts_decrypt(&k.encryption, in, out, body);
    tessera_krb_sha1_update(&k.integrity.inner, out, body);
    uint8_t mac[20];
    tessera_krb_hmac_sha1_final(&k.integrity, mac);
    wipe(&k, sizeof k);
    uint8_t difference = 0;
    for (size_t i = 0; i < MAC_LENGTH; i++) difference |= mac[i] ^ in[body + i];
    if (difference != 0) {
        wipe(out, body);
        return -2;
    }
    return 0;
}
