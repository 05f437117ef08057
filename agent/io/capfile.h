/*
 * capfile.h - capabilities as text: what meshctl prints and reads, what
 * meshd receives on the admin socket.
 *
 * A capability file (`meshctl tenant create T > t.cap`):
 *
 *   # packmesh capability for tenant T: read,write,admin, expires never
 *   cap: pmcap1.<base64url, no padding, of the encoded tenant.Capability>
 *   key: pmkey1.<base64url, no padding, of the 32-byte Ed25519 seed>
 *
 * The key line is the tenant's secret: only `tenant create` prints it, and
 * `tenant grant` needs it to sign narrower capabilities offline. Lines
 * starting with '#' and blank lines are ignored; a bare "pmcap1." or
 * "pmkey1." line is read as if it had its label, so $MESH_CAP may hold
 * just the capability text.
 *
 * Public keys travel to the agent as standard base64 (with padding), as
 * the cluster keyring does.
 *
 * Signing and verifying use libsodium (Ed25519); the functions that need
 * it initialise it themselves.
 */
#ifndef CAPFILE_H
#define CAPFILE_H

#include "tenant_cap.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAPFILE_CAP_PREFIX "pmcap1."
#define CAPFILE_KEY_PREFIX "pmkey1."
#define CAPFILE_SEED_BYTES 32
/* Text sizes, NUL included. */
#define CAPFILE_CAP_TEXT_MAX (7 + (TENANT_CAP_MAX * 4 + 2) / 3 + 1)
#define CAPFILE_KEY_TEXT_MAX (7 + 43 + 1)
#define CAPFILE_PUBKEY_TEXT_MAX 45
/* A whole file: comment, cap and key lines. */
#define CAPFILE_TEXT_MAX 1280
/* Largest file capfile_load() reads. */
#define CAPFILE_FILE_MAX 16384

/** A parsed capability file. */
struct capfile {
	uint8_t cap[TENANT_CAP_MAX]; /* the encoded capability */
	size_t cap_len;
	struct tenant_cap info; /* its body, signature checked */
	bool has_key;
	uint8_t seed[CAPFILE_SEED_BYTES]; /* when has_key; secret */
};

/**
 * Writes "pmcap1." and the text of the encoded capability @cap (@len
 * bytes) into @out (capacity @outcap; CAPFILE_CAP_TEXT_MAX is enough),
 * NUL-terminated. Returns 0, MESH_EINVAL (@len 0 or over TENANT_CAP_MAX)
 * or MESH_ETOOBIG.
 */
int capfile_encode_cap_text(const uint8_t *cap, size_t len, char *out,
			    size_t outcap);

/**
 * Decodes capability text (@len bytes at @text, "pmcap1." included, no
 * surrounding spaces) into the encoded capability @cap (capacity @capcap;
 * TENANT_CAP_MAX is enough), *@cap_len its length. The bytes are not
 * checked beyond their size: tenant_cap_check() does that. Returns 0,
 * MESH_EDECODE (no prefix, bad base64, empty or over TENANT_CAP_MAX) or
 * MESH_ETOOBIG (@capcap too small).
 */
int capfile_decode_cap_text(const char *text, size_t len, uint8_t *cap,
			    size_t capcap, size_t *cap_len);

/**
 * Writes "pmkey1." and the text of @seed into @out (capacity @outcap;
 * CAPFILE_KEY_TEXT_MAX is enough). Returns 0 or MESH_ETOOBIG.
 */
int capfile_encode_key_text(const uint8_t seed[CAPFILE_SEED_BYTES], char *out,
			    size_t outcap);

/**
 * Decodes key text (@len bytes at @text) into @seed. Returns 0 or
 * MESH_EDECODE.
 */
int capfile_decode_key_text(const char *text, size_t len,
			    uint8_t seed[CAPFILE_SEED_BYTES]);

/**
 * Writes the public key @pub as standard base64 into @out (capacity
 * @outcap; CAPFILE_PUBKEY_TEXT_MAX is enough). Returns 0 or MESH_ETOOBIG.
 */
int capfile_encode_pubkey(const uint8_t pub[TENANT_PUBKEY_BYTES], char *out,
			  size_t outcap);

/**
 * Decodes a public key sent as base64 (standard, padded; @len bytes at
 * @text) into @pub. Returns 0 or MESH_EDECODE (bad base64, not 32 bytes).
 */
int capfile_decode_pubkey(const char *text, size_t len,
			  uint8_t pub[TENANT_PUBKEY_BYTES]);

/**
 * Makes a fresh Ed25519 key pair: @seed (secret) and @pub. Returns 0 or
 * MESH_EIO (libsodium unusable).
 */
int capfile_keypair(uint8_t seed[CAPFILE_SEED_BYTES],
		    uint8_t pub[TENANT_PUBKEY_BYTES]);

/**
 * Signs the capability described by @c with the key pair of @seed and
 * encodes it into @out (capacity @outcap; TENANT_CAP_MAX is enough).
 * c->tenant_key is ignored: the body names @seed's public key. Returns 0,
 * MESH_EINVAL (bad tenant id or rights), MESH_ETOOBIG or MESH_EIO.
 */
int capfile_sign(const uint8_t seed[CAPFILE_SEED_BYTES],
		 const struct tenant_cap *c, uint8_t *out, size_t outcap,
		 size_t *len);

/**
 * capfile_sign() of a capability for @tenant with @rights and
 * @expires_unix_s (0: never) and a fresh random nonce. Same returns.
 */
int capfile_make(const uint8_t seed[CAPFILE_SEED_BYTES], const char *tenant,
		 uint32_t rights, uint64_t expires_unix_s, uint8_t *out,
		 size_t outcap, size_t *len);

/**
 * Ed25519 verification with libsodium, as a tenant_verify_fn (@ctx
 * unused): meshd hands it to the tenant core.
 */
bool capfile_verify(void *ctx, const uint8_t *pub, const uint8_t *msg,
		    size_t len, const uint8_t *sig);

/**
 * Parses a capability file's text (@len bytes, need not be
 * NUL-terminated) into @out and checks it: the capability decodes and is
 * signed by the key its body names, and a key line, if any, is that key's
 * secret. On error *@why (when not NULL) says why, for people. Returns 0,
 * MESH_ENOENT (no cap line), MESH_EDECODE (a malformed or repeated line)
 * or MESH_EAUTH (bad signature, or a key that does not match).
 */
int capfile_parse(const char *text, size_t len, struct capfile *out,
		  const char **why);

/**
 * Reads the file at @path (at most CAPFILE_FILE_MAX bytes) and parses it.
 * Returns capfile_parse()'s codes, MESH_EIO (cannot read) or MESH_ETOOBIG.
 */
int capfile_load(const char *path, struct capfile *out, const char **why);

/**
 * Writes the capability file text for @cap (@len bytes, decodable) into
 * @out (capacity @outcap; CAPFILE_TEXT_MAX is enough): the comment line,
 * the cap line and, when @seed is not NULL, the key line. Returns 0,
 * MESH_EDECODE (@cap does not decode) or MESH_ETOOBIG.
 */
int capfile_format(const uint8_t *cap, size_t len,
		   const uint8_t seed[CAPFILE_SEED_BYTES], char *out,
		   size_t outcap);

/**
 * Parses a duration such as "30s", "15m", "24h", "7d" (a bare number is
 * seconds) into *@seconds. Returns 0, MESH_EINVAL (syntax, or zero) or
 * MESH_ERANGE (overflow).
 */
int capfile_ttl_parse(const char *text, uint64_t *seconds);

#endif
