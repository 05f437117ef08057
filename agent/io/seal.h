/*
 * seal.h - sealing datagrams and frames with the cluster keyring.
 *
 * Sealed format (docs/protocol.md):
 *
 *   byte 0        seal version, SEAL_VERSION (also authenticated)
 *   bytes 1..24   random XChaCha20 nonce
 *   bytes 25..    XChaCha20-Poly1305 ciphertext of the plaintext + 16-byte tag
 *
 * No key id travels on the wire: the opener tries the primary key first and
 * then the others, so a rotation needs no agreement on ids and leaks nothing.
 * With at most SEAL_MAX_KEYS keys, the cost of a miss is bounded.
 */
#ifndef SEAL_H
#define SEAL_H

#include <stddef.h>
#include <stdint.h>

#define SEAL_VERSION 1
#define SEAL_KEY_BYTES 32
#define SEAL_NONCE_BYTES 24
#define SEAL_TAG_BYTES 16
#define SEAL_OVERHEAD (1 + SEAL_NONCE_BYTES + SEAL_TAG_BYTES)
/* Enough for a primary and a few keys being rotated in or out. */
#define SEAL_MAX_KEYS 8

/** A keyring: keys[0] is the primary (used to seal); all are accepted. */
struct seal_keyring {
	uint8_t keys[SEAL_MAX_KEYS][SEAL_KEY_BYTES];
	unsigned count;
};

/**
 * Initialises libsodium. Call once before anything else here.
 * Returns 0 or MESH_EIO.
 */
int seal_init(void);

/**
 * Parses a keyring text: one base64 key (32 bytes) per line, the first is the
 * primary; blank lines and lines starting with '#' are ignored.
 * @text need not be NUL-terminated. @err_line, if not NULL, gets the 1-based
 * line of the first error.
 * Returns 0, MESH_EINVAL (bad base64 or key length), MESH_ERANGE (more than
 * SEAL_MAX_KEYS keys) or MESH_ENOENT (no key at all).
 */
int seal_keyring_parse(struct seal_keyring *ring, const char *text, size_t len,
		       int *err_line);

/**
 * Reads and parses a keyring file. Returns the codes of seal_keyring_parse()
 * or MESH_EIO when the file cannot be read.
 */
int seal_keyring_load(struct seal_keyring *ring, const char *path,
		      int *err_line);

/**
 * Writes a new keyring text with one fresh random key into @buf.
 * Returns 0 or MESH_ERANGE when @cap is too small (128 bytes is enough).
 */
int seal_keyring_generate(char *buf, size_t cap);

/**
 * Seals @len bytes of @plain with the primary key into @out (capacity @cap).
 * @out and @plain must not overlap. On success *@out_len = @len +
 * SEAL_OVERHEAD. Returns 0, MESH_ETOOBIG when @cap is too small, MESH_ESTATE
 * with no key.
 */
int seal_seal(const struct seal_keyring *ring, const uint8_t *plain, size_t len,
	      uint8_t *out, size_t cap, size_t *out_len);

/**
 * Opens a sealed buffer into @out (capacity @cap, at least len -
 * SEAL_OVERHEAD). Returns 0, MESH_ETRUNC (shorter than the overhead),
 * MESH_EVERSION (unknown seal version), MESH_ETOOBIG (@cap too small) or
 * MESH_EAUTH (no key opens it: wrong key, garbage or tampering). @out is
 * unspecified on failure.
 */
int seal_open(const struct seal_keyring *ring, const uint8_t *sealed,
	      size_t len, uint8_t *out, size_t cap, size_t *out_len);

#endif
