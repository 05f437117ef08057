/*
 * tenant_cap.h - capabilities: what the holder of a tenant's key grants.
 *
 * A capability is a CapBody (tenant id, rights, expiry, nonce, the tenant's
 * public key; proto/tenant.proto) signed with the tenant's Ed25519 secret
 * key. `meshctl tenant create` makes the key pair and the first capability;
 * `meshctl tenant grant` signs narrower ones offline. A replica checks a
 * capability against the public key registered when the tenant was created,
 * so a capability of tenant A never opens tenant B, and one signed by any
 * other key opens nothing.
 *
 * Sans I/O: signing happens in meshctl (libsodium); checking asks the
 * injected tenant_verify_fn. The text form ("pmcap1." + base64) is made and
 * read by the io layer, not here.
 */
#ifndef TENANT_CAP_H
#define TENANT_CAP_H

#include "tenant.h"

#define TENANT_CAP_NONCE_BYTES 8
/* Largest encoded capability: body (id, key, nonce, numbers) + signature. */
#define TENANT_CAP_MAX 512

struct tenant_cap {
	char tenant[TENANT_ID_MAX + 1];
	uint32_t rights;	 /* enum tenant_right bits */
	uint64_t expires_unix_s; /* 0: never */
	uint8_t nonce[TENANT_CAP_NONCE_BYTES];
	uint8_t tenant_key[TENANT_PUBKEY_BYTES];
};

/**
 * Encodes the body of @c, the bytes to sign, into @buf (capacity @cap).
 * Returns 0, MESH_EINVAL (tenant id not 1..TENANT_ID_MAX bytes, unknown
 * rights bits, no rights) or MESH_ETOOBIG (@cap too small).
 */
int tenant_cap_body_encode(const struct tenant_cap *c, uint8_t *buf, size_t cap,
			   size_t *len);

/**
 * Wraps a body and its signature @sig (TENANT_SIG_BYTES) into the encoded
 * capability. Returns 0, MESH_EINVAL or MESH_ETOOBIG.
 */
int tenant_cap_encode(const uint8_t *body, size_t body_len, const uint8_t *sig,
		      uint8_t *buf, size_t cap, size_t *len);

/**
 * Decodes an encoded capability into @out without checking the signature;
 * when @sig is not NULL it gets the signature (TENANT_SIG_BYTES). Returns
 * 0 or MESH_EDECODE (malformed, over TENANT_CAP_MAX, bad field sizes).
 */
int tenant_cap_decode(const uint8_t *buf, size_t len, struct tenant_cap *out,
		      uint8_t *sig);

/**
 * Checks that the capability @buf lets its holder do @need (rights bits)
 * on tenant @tenant whose registered public key is @tenant_key, at
 * wall-clock time @now_unix_s, asking @verify for the signature. On
 * failure *@why (when not NULL) says why for people. Returns 0,
 * MESH_EDECODE (malformed), MESH_EAUTH (another tenant, another key, a bad
 * signature, or missing rights) or MESH_ESTATE (expired).
 */
int tenant_cap_check(const uint8_t *buf, size_t len, const char *tenant,
		     const uint8_t *tenant_key, uint32_t need,
		     uint64_t now_unix_s, tenant_verify_fn *verify, void *ctx,
		     const char **why);

/**
 * Parses a rights list such as "read,write" or "rw" / "admin" into bits.
 * Returns 0 or MESH_EINVAL.
 */
int tenant_rights_parse(const char *text, uint32_t *out);

/** Formats rights bits as "read,write,admin" into @buf (>= 24 bytes). */
const char *tenant_rights_format(uint32_t rights, char *buf, size_t cap);

#endif
