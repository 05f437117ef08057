/* test_tenant_cap.c - capabilities (agent/core/tenant_cap): encoding,
 * hostile decoding, checking, rights text. libsodium signs and verifies
 * here, as meshctl and meshd do; the core itself only asks the verifier. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mesh_err.h"
#include "tenant_cap.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define NOW 1700000000u

struct tenant_cap_keys {
	uint8_t pk[crypto_sign_PUBLICKEYBYTES];
	uint8_t sk[crypto_sign_SECRETKEYBYTES];
};

static unsigned verify_calls;

static bool
test_verify(void *ctx, const uint8_t *pub, const uint8_t *msg, size_t len,
	    const uint8_t *sig)
{
	(void)ctx;
	verify_calls++;
	return crypto_sign_verify_detached(sig, msg, len, pub) == 0;
}

static void
keys_make(struct tenant_cap_keys *k, uint8_t fill)
{
	uint8_t seed[crypto_sign_SEEDBYTES];
	memset(seed, fill, sizeof(seed));
	assert_int_equal(crypto_sign_seed_keypair(k->pk, k->sk, seed), 0);
}

static void
cap_fill(struct tenant_cap *c, const char *tenant, uint32_t rights,
	 uint64_t expires, const struct tenant_cap_keys *k)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->tenant, sizeof(c->tenant), "%s", tenant);
	c->rights = rights;
	c->expires_unix_s = expires;
	memset(c->nonce, 0x5a, sizeof(c->nonce));
	memcpy(c->tenant_key, k->pk, sizeof(c->tenant_key));
}

/* Signs @c with @signer (not necessarily the key named in the body). */
static size_t
cap_make(const struct tenant_cap *c, const struct tenant_cap_keys *signer,
	 uint8_t *out, size_t cap)
{
	uint8_t body[TENANT_CAP_MAX], sig[TENANT_SIG_BYTES];
	size_t body_len, len;
	assert_int_equal(
	    tenant_cap_body_encode(c, body, sizeof(body), &body_len), 0);
	crypto_sign_detached(sig, NULL, body, body_len, signer->sk);
	assert_int_equal(tenant_cap_encode(body, body_len, sig, out, cap, &len),
			 0);
	return len;
}

static int
check(const uint8_t *buf, size_t len, const char *tenant,
      const struct tenant_cap_keys *k, uint32_t need, uint64_t now,
      const char **why)
{
	return tenant_cap_check(buf, len, tenant, k->pk, need, now, test_verify,
				NULL, why);
}

static int
setup(void **state)
{
	(void)state;
	return sodium_init() < 0 ? -1 : 0;
}

static void
test_tenant_cap_round_trip(void **state)
{
	(void)state;
	struct tenant_cap_keys k;
	keys_make(&k, 1);
	struct tenant_cap c, d;
	cap_fill(&c, "acme", TENANT_READ | TENANT_WRITE, NOW + 60, &k);
	uint8_t buf[TENANT_CAP_MAX], sig[TENANT_SIG_BYTES];
	size_t len = cap_make(&c, &k, buf, sizeof(buf));
	assert_true(len <= TENANT_CAP_MAX);
	assert_int_equal(tenant_cap_decode(buf, len, &d, sig), 0);
	assert_string_equal(d.tenant, "acme");
	assert_int_equal(d.rights, TENANT_READ | TENANT_WRITE);
	assert_int_equal(d.expires_unix_s, NOW + 60);
	assert_memory_equal(d.nonce, c.nonce, sizeof(c.nonce));
	assert_memory_equal(d.tenant_key, k.pk, sizeof(k.pk));
	assert_int_equal(tenant_cap_decode(buf, len, NULL, NULL), 0);
	const char *why = "unset";
	assert_int_equal(check(buf, len, "acme", &k, TENANT_WRITE, NOW, &why),
			 0);
	assert_string_equal(why, "");
	assert_int_equal(
	    check(buf, len, "acme", &k, TENANT_READ | TENANT_WRITE, NOW, NULL),
	    0);
	/* No expiry: good forever. */
	cap_fill(&c, "acme", TENANT_READ, 0, &k);
	len = cap_make(&c, &k, buf, sizeof(buf));
	assert_int_equal(
	    check(buf, len, "acme", &k, TENANT_READ, UINT64_MAX, &why), 0);
}

static void
test_tenant_cap_largest_fits(void **state)
{
	(void)state;
	struct tenant_cap_keys k;
	keys_make(&k, 2);
	struct tenant_cap c;
	char id[TENANT_ID_MAX + 1];
	memset(id, 'x', TENANT_ID_MAX);
	id[TENANT_ID_MAX] = 0;
	cap_fill(&c, id, TENANT_READ | TENANT_WRITE | TENANT_ADMIN, UINT64_MAX,
		 &k);
	uint8_t buf[TENANT_CAP_MAX];
	size_t len = cap_make(&c, &k, buf, sizeof(buf));
	const char *why;
	assert_int_equal(check(buf, len, id, &k, TENANT_ADMIN, NOW, &why), 0);
}

static void
test_tenant_cap_wrong_tenant(void **state)
{
	(void)state;
	struct tenant_cap_keys k;
	keys_make(&k, 3);
	struct tenant_cap c;
	cap_fill(&c, "acme", TENANT_READ | TENANT_WRITE, 0, &k);
	uint8_t buf[TENANT_CAP_MAX];
	size_t len = cap_make(&c, &k, buf, sizeof(buf));
	const char *why = NULL;
	verify_calls = 0;
	assert_int_equal(check(buf, len, "acme2", &k, TENANT_READ, NOW, &why),
			 MESH_EAUTH);
	assert_string_equal(why, "capability is for another tenant");
	assert_int_equal(check(buf, len, "acm", &k, TENANT_READ, NOW, &why),
			 MESH_EAUTH);
	assert_int_equal(verify_calls, 0);
}

static void
test_tenant_cap_other_key(void **state)
{
	(void)state;
	struct tenant_cap_keys k, other;
	keys_make(&k, 4);
	keys_make(&other, 5);
	const char *why = NULL;
	uint8_t buf[TENANT_CAP_MAX];
	struct tenant_cap c;
	/* A capability made by another key pair for the same tenant name. */
	cap_fill(&c, "acme", TENANT_READ, 0, &other);
	size_t len = cap_make(&c, &other, buf, sizeof(buf));
	assert_int_equal(check(buf, len, "acme", &k, TENANT_READ, NOW, &why),
			 MESH_EAUTH);
	assert_string_equal(why,
			    "capability is not signed by the tenant's key");
	/* The right key named in the body, signed by another. */
	cap_fill(&c, "acme", TENANT_READ, 0, &k);
	len = cap_make(&c, &other, buf, sizeof(buf));
	assert_int_equal(check(buf, len, "acme", &k, TENANT_READ, NOW, &why),
			 MESH_EAUTH);
	assert_string_equal(why, "capability signature is not valid");
}

static void
test_tenant_cap_tampered_body(void **state)
{
	(void)state;
	struct tenant_cap_keys k;
	keys_make(&k, 6);
	struct tenant_cap c;
	cap_fill(&c, "acme", TENANT_READ, NOW + 10, &k);
	uint8_t buf[TENANT_CAP_MAX];
	size_t len = cap_make(&c, &k, buf, sizeof(buf));
	/* Flip each bit of the whole capability: nothing may pass except
	 * through a valid signature, and nothing may crash. */
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			uint8_t t[TENANT_CAP_MAX];
			memcpy(t, buf, len);
			t[i] ^= (uint8_t)(1u << bit);
			const char *why = NULL;
			int rc =
			    check(t, len, "acme", &k, TENANT_READ, NOW, &why);
			assert_true(rc == MESH_EDECODE || rc == MESH_EAUTH);
			assert_non_null(why);
		}
	}
	/* Rights widened in the body, signature kept: refused. */
	struct tenant_cap wide = c;
	wide.rights |= TENANT_WRITE | TENANT_ADMIN;
	uint8_t body[TENANT_CAP_MAX], sig[TENANT_SIG_BYTES], t[TENANT_CAP_MAX];
	size_t body_len, tlen;
	assert_int_equal(tenant_cap_decode(buf, len, NULL, sig), 0);
	assert_int_equal(
	    tenant_cap_body_encode(&wide, body, sizeof(body), &body_len), 0);
	assert_int_equal(
	    tenant_cap_encode(body, body_len, sig, t, sizeof(t), &tlen), 0);
	const char *why = NULL;
	assert_int_equal(check(t, tlen, "acme", &k, TENANT_WRITE, NOW, &why),
			 MESH_EAUTH);
	assert_string_equal(why, "capability signature is not valid");
	/* Expiry pushed out, signature kept: refused. */
	wide = c;
	wide.expires_unix_s = 0;
	assert_int_equal(
	    tenant_cap_body_encode(&wide, body, sizeof(body), &body_len), 0);
	assert_int_equal(
	    tenant_cap_encode(body, body_len, sig, t, sizeof(t), &tlen), 0);
	assert_int_equal(
	    check(t, tlen, "acme", &k, TENANT_READ, NOW + 100, &why),
	    MESH_EAUTH);
}

static void
test_tenant_cap_bad_sig(void **state)
{
	(void)state;
	struct tenant_cap_keys k;
	keys_make(&k, 7);
	struct tenant_cap c;
	cap_fill(&c, "acme", TENANT_READ, 0, &k);
	uint8_t body[TENANT_CAP_MAX], sig[TENANT_SIG_BYTES],
	    buf[TENANT_CAP_MAX];
	size_t body_len, len;
	assert_int_equal(
	    tenant_cap_body_encode(&c, body, sizeof(body), &body_len), 0);
	memset(sig, 0, sizeof(sig));
	assert_int_equal(
	    tenant_cap_encode(body, body_len, sig, buf, sizeof(buf), &len), 0);
	const char *why = NULL;
	assert_int_equal(check(buf, len, "acme", &k, TENANT_READ, NOW, &why),
			 MESH_EAUTH);
	assert_string_equal(why, "capability signature is not valid");
	/* A good signature over other bytes. */
	crypto_sign_detached(sig, NULL, (const uint8_t *)"other", 5, k.sk);
	assert_int_equal(
	    tenant_cap_encode(body, body_len, sig, buf, sizeof(buf), &len), 0);
	assert_int_equal(check(buf, len, "acme", &k, TENANT_READ, NOW, &why),
			 MESH_EAUTH);
}

static void
test_tenant_cap_expired(void **state)
{
	(void)state;
	struct tenant_cap_keys k;
	keys_make(&k, 8);
	struct tenant_cap c;
	cap_fill(&c, "acme", TENANT_READ, NOW, &k);
	uint8_t buf[TENANT_CAP_MAX];
	size_t len = cap_make(&c, &k, buf, sizeof(buf));
	const char *why = NULL;
	assert_int_equal(
	    check(buf, len, "acme", &k, TENANT_READ, NOW - 1, &why), 0);
	assert_int_equal(check(buf, len, "acme", &k, TENANT_READ, NOW, &why),
			 MESH_ESTATE);
	assert_string_equal(why, "capability expired");
	assert_int_equal(
	    check(buf, len, "acme", &k, TENANT_READ, NOW + 1, &why),
	    MESH_ESTATE);
	/* A bad signature is reported before expiry: an attacker learns
	 * nothing about a capability it cannot have made. */
	struct tenant_cap_keys other;
	keys_make(&other, 9);
	len = cap_make(&c, &other, buf, sizeof(buf));
	assert_int_equal(
	    check(buf, len, "acme", &k, TENANT_READ, NOW + 1, &why),
	    MESH_EAUTH);
}

static void
test_tenant_cap_missing_rights(void **state)
{
	(void)state;
	struct tenant_cap_keys k;
	keys_make(&k, 10);
	struct tenant_cap c;
	cap_fill(&c, "acme", TENANT_READ, 0, &k);
	uint8_t buf[TENANT_CAP_MAX];
	size_t len = cap_make(&c, &k, buf, sizeof(buf));
	const char *why = NULL;
	assert_int_equal(check(buf, len, "acme", &k, TENANT_WRITE, NOW, &why),
			 MESH_EAUTH);
	assert_string_equal(why, "capability lacks write");
	assert_int_equal(check(buf, len, "acme", &k, TENANT_ADMIN, NOW, &why),
			 MESH_EAUTH);
	assert_string_equal(why, "capability lacks admin");
	cap_fill(&c, "acme", TENANT_WRITE | TENANT_ADMIN, 0, &k);
	len = cap_make(&c, &k, buf, sizeof(buf));
	assert_int_equal(check(buf, len, "acme", &k, TENANT_READ, NOW, &why),
			 MESH_EAUTH);
	assert_string_equal(why, "capability lacks read");
	/* Admin does not imply read or write. */
	assert_int_equal(check(buf, len, "acme", &k, TENANT_ADMIN, NOW, &why),
			 0);
}

static void
test_tenant_cap_encode_refuses_bad_fields(void **state)
{
	(void)state;
	struct tenant_cap_keys k;
	keys_make(&k, 11);
	struct tenant_cap c;
	uint8_t buf[TENANT_CAP_MAX];
	size_t len;
	cap_fill(&c, "", TENANT_READ, 0, &k);
	assert_int_equal(tenant_cap_body_encode(&c, buf, sizeof(buf), &len),
			 MESH_EINVAL);
	cap_fill(&c, "a\nb", TENANT_READ, 0, &k);
	assert_int_equal(tenant_cap_body_encode(&c, buf, sizeof(buf), &len),
			 MESH_EINVAL);
	cap_fill(&c, "acme", 0, 0, &k);
	assert_int_equal(tenant_cap_body_encode(&c, buf, sizeof(buf), &len),
			 MESH_EINVAL);
	cap_fill(&c, "acme", TENANT_READ | 8, 0, &k);
	assert_int_equal(tenant_cap_body_encode(&c, buf, sizeof(buf), &len),
			 MESH_EINVAL);
	/* An id filling the array with no NUL. */
	cap_fill(&c, "acme", TENANT_READ, 0, &k);
	memset(c.tenant, 'x', sizeof(c.tenant));
	assert_int_equal(tenant_cap_body_encode(&c, buf, sizeof(buf), &len),
			 MESH_EINVAL);
	cap_fill(&c, "acme", TENANT_READ, 0, &k);
	assert_int_equal(tenant_cap_body_encode(&c, buf, 10, &len),
			 MESH_ETOOBIG);
	assert_int_equal(tenant_cap_body_encode(&c, buf, sizeof(buf), &len), 0);
	uint8_t sig[TENANT_SIG_BYTES] = {0}, out[TENANT_CAP_MAX];
	size_t olen;
	assert_int_equal(tenant_cap_encode(buf, len, sig, out, 20, &olen),
			 MESH_ETOOBIG);
	assert_int_equal(
	    tenant_cap_encode(buf, 0, sig, out, sizeof(out), &olen),
	    MESH_EINVAL);
	uint8_t big[TENANT_CAP_MAX] = {0};
	assert_int_equal(
	    tenant_cap_encode(big, sizeof(big), sig, out, sizeof(out), &olen),
	    MESH_EINVAL);
}

/* Hand-made protobuf: what an attacker could send. */
static size_t
pb_bytes(uint8_t *p, unsigned field, const void *data, size_t len)
{
	size_t n = 0;
	p[n++] = (uint8_t)(field << 3 | 2);
	size_t l = len;
	do {
		p[n++] = (uint8_t)((l & 0x7f) | (l > 0x7f ? 0x80 : 0));
		l >>= 7;
	} while (l);
	memcpy(p + n, data, len);
	return n + len;
}

static size_t
pb_varint(uint8_t *p, unsigned field, uint64_t v)
{
	size_t n = 0;
	p[n++] = (uint8_t)(field << 3);
	do {
		p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	return n;
}

/* A capability whose body is @body, with a valid signature by @k. */
static size_t
wrap_signed(const uint8_t *body, size_t body_len,
	    const struct tenant_cap_keys *k, uint8_t *out)
{
	uint8_t sig[TENANT_SIG_BYTES];
	crypto_sign_detached(sig, NULL, body, body_len, k->sk);
	size_t n = pb_bytes(out, 1, body, body_len);
	return n + pb_bytes(out + n, 2, sig, sizeof(sig));
}

static void
test_tenant_cap_malformed_refused(void **state)
{
	(void)state;
	struct tenant_cap_keys k;
	keys_make(&k, 12);
	uint8_t nonce[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	uint8_t body[1024], buf[2048];
	size_t n, len;
	const char *why = NULL;
	struct tenant_cap out;

	/* Reference: a hand-made canonical body is accepted. */
	n = pb_bytes(body, 1, "acme", 4);
	n += pb_varint(body + n, 2, TENANT_READ);
	n += pb_bytes(body + n, 4, nonce, 8);
	n += pb_bytes(body + n, 5, k.pk, 32);
	len = wrap_signed(body, n, &k, buf);
	assert_int_equal(check(buf, len, "acme", &k, TENANT_READ, NOW, &why),
			 0);

	/* Each of these is signed by the right key, and still refused. */
	struct {
		const char *what;
		const char *tenant;
		size_t tenant_len;
		uint32_t rights;
		size_t nonce_len, key_len;
		bool extra_field;
	} bad[] = {
	    {"empty tenant", "", 0, TENANT_READ, 8, 32, false},
	    {"tenant with NUL", "ac\0me", 5, TENANT_READ, 8, 32, false},
	    {"tenant with newline", "ac\nme", 5, TENANT_READ, 8, 32, false},
	    {"no rights", "acme", 4, 0, 8, 32, false},
	    {"unknown right", "acme", 4, TENANT_READ | 16, 8, 32, false},
	    {"short nonce", "acme", 4, TENANT_READ, 7, 32, false},
	    {"long nonce", "acme", 4, TENANT_READ, 9, 32, false},
	    {"short key", "acme", 4, TENANT_READ, 8, 31, false},
	    {"unknown field", "acme", 4, TENANT_READ, 8, 32, true},
	};
	uint8_t keybuf[33], noncebuf[9];
	memcpy(keybuf, k.pk, 32);
	keybuf[32] = 0;
	memcpy(noncebuf, nonce, 8);
	noncebuf[8] = 0;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = 0;
		if (bad[i].tenant_len)
			n += pb_bytes(body + n, 1, bad[i].tenant,
				      bad[i].tenant_len);
		if (bad[i].rights)
			n += pb_varint(body + n, 2, bad[i].rights);
		n += pb_bytes(body + n, 4, noncebuf, bad[i].nonce_len);
		n += pb_bytes(body + n, 5, keybuf, bad[i].key_len);
		if (bad[i].extra_field)
			n += pb_varint(body + n, 9, 1);
		len = wrap_signed(body, n, &k, buf);
		why = NULL;
		int rc =
		    check(buf, len, bad[i].tenant, &k, TENANT_READ, NOW, &why);
		if (rc != MESH_EDECODE)
			fail_msg("%s: rc %d", bad[i].what, rc);
		assert_string_equal(why, "malformed capability");
		assert_int_equal(tenant_cap_decode(buf, len, &out, NULL),
				 MESH_EDECODE);
	}

	/* Outer message: a short signature, a missing body. */
	n = pb_bytes(body, 1, "acme", 4);
	n += pb_varint(body + n, 2, TENANT_READ);
	n += pb_bytes(body + n, 4, nonce, 8);
	n += pb_bytes(body + n, 5, k.pk, 32);
	uint8_t sig[TENANT_SIG_BYTES + 1] = {0};
	len = pb_bytes(buf, 1, body, n);
	len += pb_bytes(buf + len, 2, sig, 63);
	assert_int_equal(tenant_cap_decode(buf, len, &out, NULL), MESH_EDECODE);
	len = pb_bytes(buf, 2, sig, 64);
	assert_int_equal(tenant_cap_decode(buf, len, &out, NULL), MESH_EDECODE);
	/* Garbage and empty input. */
	memset(buf, 0xff, 64);
	assert_int_equal(tenant_cap_decode(buf, 64, &out, NULL), MESH_EDECODE);
	assert_int_equal(tenant_cap_decode(buf, 0, &out, NULL), MESH_EDECODE);
	assert_int_equal(tenant_cap_decode(NULL, 10, &out, NULL), MESH_EDECODE);
	/* Many tiny unknown fields in the outer message: bounded, no crash. */
	len = 0;
	while (len + 2 <= TENANT_CAP_MAX)
		len += pb_varint(buf + len, 15, 0);
	assert_int_equal(tenant_cap_decode(buf, len, &out, NULL), MESH_EDECODE);
}

static void
test_tenant_cap_truncated_refused(void **state)
{
	(void)state;
	struct tenant_cap_keys k;
	keys_make(&k, 13);
	struct tenant_cap c;
	cap_fill(&c, "a-tenant-with-a-longer-name", TENANT_READ | TENANT_WRITE,
		 NOW + 3600, &k);
	uint8_t buf[TENANT_CAP_MAX];
	size_t len = cap_make(&c, &k, buf, sizeof(buf));
	for (size_t n = 0; n < len; n++) {
		/* A heap copy of exactly n bytes: the sanitizer catches any
		 * read past the end. */
		uint8_t *t = test_malloc(n ? n : 1);
		memcpy(t, buf, n);
		const char *why = NULL;
		assert_int_equal(tenant_cap_decode(t, n, NULL, NULL),
				 MESH_EDECODE);
		assert_int_equal(
		    check(t, n, c.tenant, &k, TENANT_READ, NOW, &why),
		    MESH_EDECODE);
		assert_string_equal(why, "malformed capability");
		test_free(t);
	}
}

static void
test_tenant_cap_oversize_refused(void **state)
{
	(void)state;
	struct tenant_cap_keys k;
	keys_make(&k, 14);
	struct tenant_cap c;
	cap_fill(&c, "acme", TENANT_READ, 0, &k);
	uint8_t buf[TENANT_CAP_MAX + 64];
	size_t len = cap_make(&c, &k, buf, sizeof(buf));
	/* Padding with an unknown outer field past TENANT_CAP_MAX. */
	uint8_t pad[TENANT_CAP_MAX];
	memset(pad, 0, sizeof(pad));
	size_t pad_len = TENANT_CAP_MAX + 1 - len - 3;
	size_t n = len + pb_bytes(buf + len, 15, pad, pad_len);
	assert_true(n > TENANT_CAP_MAX);
	const char *why = NULL;
	assert_int_equal(tenant_cap_decode(buf, n, NULL, NULL), MESH_EDECODE);
	assert_int_equal(check(buf, n, "acme", &k, TENANT_READ, NOW, &why),
			 MESH_EDECODE);
	/* A body claiming more bytes than there are. */
	uint8_t lie[8] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x00};
	assert_int_equal(tenant_cap_decode(lie, sizeof(lie), NULL, NULL),
			 MESH_EDECODE);
}

static void
test_tenant_cap_rights_parse_format(void **state)
{
	(void)state;
	uint32_t r = 0;
	char buf[24];
	assert_int_equal(tenant_rights_parse("read", &r), 0);
	assert_int_equal(r, TENANT_READ);
	assert_int_equal(tenant_rights_parse("read,write", &r), 0);
	assert_int_equal(r, TENANT_READ | TENANT_WRITE);
	assert_int_equal(tenant_rights_parse("admin,read", &r), 0);
	assert_int_equal(r, TENANT_READ | TENANT_ADMIN);
	assert_int_equal(tenant_rights_parse("rw", &r), 0);
	assert_int_equal(r, TENANT_READ | TENANT_WRITE);
	assert_int_equal(tenant_rights_parse("rwa", &r), 0);
	assert_int_equal(r, TENANT_READ | TENANT_WRITE | TENANT_ADMIN);
	assert_int_equal(tenant_rights_parse("a", &r), 0);
	assert_int_equal(r, TENANT_ADMIN);
	assert_int_equal(tenant_rights_parse("w,read", &r), 0);
	assert_int_equal(r, TENANT_READ | TENANT_WRITE);
	r = 99;
	const char *bad[] = {"",   ",",	   "read,",	 ",read", "reed",
			     "rx", "READ", "read write", "r,,w",  "all"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (tenant_rights_parse(bad[i], &r) != MESH_EINVAL)
			fail_msg("'%s' accepted", bad[i]);
	assert_int_equal(r, 99);
	assert_int_equal(tenant_rights_parse(NULL, &r), MESH_EINVAL);

	assert_string_equal(tenant_rights_format(TENANT_READ, buf, sizeof(buf)),
			    "read");
	assert_string_equal(
	    tenant_rights_format(TENANT_READ | TENANT_WRITE, buf, sizeof(buf)),
	    "read,write");
	assert_string_equal(
	    tenant_rights_format(TENANT_READ | TENANT_WRITE | TENANT_ADMIN, buf,
				 sizeof(buf)),
	    "read,write,admin");
	assert_string_equal(
	    tenant_rights_format(TENANT_WRITE | TENANT_ADMIN, buf, sizeof(buf)),
	    "write,admin");
	assert_string_equal(
	    tenant_rights_format(TENANT_READ | TENANT_ADMIN, buf, sizeof(buf)),
	    "read,admin");
	assert_string_equal(tenant_rights_format(0, buf, sizeof(buf)), "none");
	/* Every combination formats to text that parses back to itself. */
	for (uint32_t bits = 1; bits < 8; bits++) {
		assert_int_equal(
		    tenant_rights_parse(
			tenant_rights_format(bits, buf, sizeof(buf)), &r),
		    0);
		assert_int_equal(r, bits);
	}
	/* A small buffer is cut, never overrun. */
	char small[5];
	assert_string_equal(tenant_rights_format(TENANT_READ | TENANT_WRITE,
						 small, sizeof(small)),
			    "read");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tenant_cap_round_trip),
	    cmocka_unit_test(test_tenant_cap_largest_fits),
	    cmocka_unit_test(test_tenant_cap_wrong_tenant),
	    cmocka_unit_test(test_tenant_cap_other_key),
	    cmocka_unit_test(test_tenant_cap_tampered_body),
	    cmocka_unit_test(test_tenant_cap_bad_sig),
	    cmocka_unit_test(test_tenant_cap_expired),
	    cmocka_unit_test(test_tenant_cap_missing_rights),
	    cmocka_unit_test(test_tenant_cap_encode_refuses_bad_fields),
	    cmocka_unit_test(test_tenant_cap_malformed_refused),
	    cmocka_unit_test(test_tenant_cap_truncated_refused),
	    cmocka_unit_test(test_tenant_cap_oversize_refused),
	    cmocka_unit_test(test_tenant_cap_rights_parse_format),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
