/*
 * tenant_cap.c - encoding, decoding and checking capabilities.
 *
 * A capability is a tenant.Capability: the bytes of a tenant.CapBody and an
 * Ed25519 signature over exactly those bytes (proto/tenant.proto). The
 * signature covers bytes, not fields, so the body travels as an opaque
 * `bytes` field and a replica verifies what the signer signed, never a
 * re-encoding of it.
 *
 * Everything here is hostile input: the capability arrives from a client.
 * Decoding bounds every size before protobuf-c sees the buffer, and
 * protobuf-c unpacks into a fixed arena on the stack (a capability is at
 * most TENANT_CAP_MAX bytes, so what unpacking can allocate is bounded
 * too): a decode touches no heap and needs no allocator.
 *
 * Deviation from usual protobuf leniency: a body must be canonical, i.e.
 * equal to what tenant_cap_body_encode() makes of its decoded fields. That
 * refuses unknown fields, repeated fields, padded varints and a tenant id
 * with an embedded NUL. Unknown fields in a signed grant could be
 * restrictions that this replica would silently fail to enforce, so
 * refusing them is the safe reading; a new field means a new format.
 */
#include "tenant_cap.h"

#include "mesh_err.h"
#include "mesh_text.h"
#include "tenant.pb-c.h"

#include <assert.h>
#include <stdalign.h>
#include <stdio.h>
#include <string.h>

#define TENANT_CAP_RIGHTS_ALL (TENANT_READ | TENANT_WRITE | TENANT_ADMIN)

/*
 * Why 8 KiB: unpacking a buffer of at most TENANT_CAP_MAX (512) bytes
 * allocates the message struct, copies of its byte fields (<= 512 bytes)
 * and, for unknown fields, one 24-byte record per field of at least 2
 * bytes: 256 * 24 + 512 + the struct < 7 KiB. What does not fit fails the
 * decode, which is the right answer for such input anyway.
 */
#define TENANT_CAP_ARENA_BYTES 8192

struct tenant_cap_arena {
	alignas(max_align_t) uint8_t bytes[TENANT_CAP_ARENA_BYTES];
	size_t used;
};

static void *
tenant_cap_arena_alloc(void *data, size_t size)
{
	struct tenant_cap_arena *a = data;
	size_t align = alignof(max_align_t);
	size_t aligned = (size + align - 1) & ~(align - 1);
	if (aligned < size || aligned > sizeof(a->bytes) - a->used)
		return NULL;
	void *p = a->bytes + a->used;
	a->used += aligned;
	return p;
}

static void
tenant_cap_arena_free(void *data, void *ptr)
{
	/* The arena dies with the caller's frame. */
	(void)data;
	(void)ptr;
}

static bool
tenant_cap_id_is_valid(const char *tenant)
{
	return mesh_text_is_printable(tenant, TENANT_ID_MAX, false);
}

static bool
tenant_cap_rights_are_valid(uint32_t rights)
{
	return rights != 0 && (rights & ~(uint32_t)TENANT_CAP_RIGHTS_ALL) == 0;
}

int
tenant_cap_body_encode(const struct tenant_cap *c, uint8_t *buf, size_t cap,
		       size_t *len)
{
	if (c == NULL || buf == NULL || len == NULL)
		return MESH_EINVAL;
	/* strnlen first: c->tenant may lack its NUL when the caller filled
	 * the array to the brim. */
	if (strnlen(c->tenant, sizeof(c->tenant)) > TENANT_ID_MAX ||
	    !tenant_cap_id_is_valid(c->tenant) ||
	    !tenant_cap_rights_are_valid(c->rights))
		return MESH_EINVAL;
	Tenant__CapBody b = TENANT__CAP_BODY__INIT;
	b.tenant = (char *)c->tenant;
	b.rights = c->rights;
	b.expires_unix_s = c->expires_unix_s;
	b.nonce.data = (uint8_t *)c->nonce;
	b.nonce.len = sizeof(c->nonce);
	b.tenant_key.data = (uint8_t *)c->tenant_key;
	b.tenant_key.len = sizeof(c->tenant_key);
	size_t n = tenant__cap_body__get_packed_size(&b);
	if (n > cap)
		return MESH_ETOOBIG;
	*len = tenant__cap_body__pack(&b, buf);
	assert(*len == n);
	return 0;
}

int
tenant_cap_encode(const uint8_t *body, size_t body_len, const uint8_t *sig,
		  uint8_t *buf, size_t cap, size_t *len)
{
	if (body == NULL || sig == NULL || buf == NULL || len == NULL ||
	    body_len == 0 || body_len > TENANT_CAP_MAX)
		return MESH_EINVAL;
	Tenant__Capability m = TENANT__CAPABILITY__INIT;
	m.body.data = (uint8_t *)body;
	m.body.len = body_len;
	m.sig.data = (uint8_t *)sig;
	m.sig.len = TENANT_SIG_BYTES;
	size_t n = tenant__capability__get_packed_size(&m);
	/* A capability that no replica would decode is not one. */
	if (n > TENANT_CAP_MAX)
		return MESH_EINVAL;
	if (n > cap)
		return MESH_ETOOBIG;
	*len = tenant__capability__pack(&m, buf);
	assert(*len == n);
	return 0;
}

/*
 * Decodes @buf into @out and @sig (not NULL here); *@body and *@body_len
 * point at the signed bytes inside @arena, valid as long as it is.
 */
static int
tenant_cap_decode_in(struct tenant_cap_arena *arena, const uint8_t *buf,
		     size_t len, struct tenant_cap *out, uint8_t *sig,
		     const uint8_t **body, size_t *body_len)
{
	if (buf == NULL || len == 0 || len > TENANT_CAP_MAX)
		return MESH_EDECODE;
	ProtobufCAllocator pa = {tenant_cap_arena_alloc, tenant_cap_arena_free,
				 arena};
	Tenant__Capability *m = tenant__capability__unpack(&pa, len, buf);
	if (m == NULL || m->body.len == 0 || m->sig.len != TENANT_SIG_BYTES)
		return MESH_EDECODE;
	Tenant__CapBody *b =
	    tenant__cap_body__unpack(&pa, m->body.len, m->body.data);
	if (b == NULL || b->tenant == NULL ||
	    b->nonce.len != TENANT_CAP_NONCE_BYTES ||
	    b->tenant_key.len != TENANT_PUBKEY_BYTES ||
	    !tenant_cap_id_is_valid(b->tenant) ||
	    !tenant_cap_rights_are_valid(b->rights))
		return MESH_EDECODE;
	struct tenant_cap c;
	memset(&c, 0, sizeof(c));
	memcpy(c.tenant, b->tenant, strlen(b->tenant) + 1);
	c.rights = b->rights;
	c.expires_unix_s = b->expires_unix_s;
	memcpy(c.nonce, b->nonce.data, sizeof(c.nonce));
	memcpy(c.tenant_key, b->tenant_key.data, sizeof(c.tenant_key));
	/* Canonical form only (see the note at the top). */
	uint8_t again[TENANT_CAP_MAX];
	size_t again_len;
	if (tenant_cap_body_encode(&c, again, sizeof(again), &again_len) != 0 ||
	    again_len != m->body.len ||
	    memcmp(again, m->body.data, again_len) != 0)
		return MESH_EDECODE;
	*out = c;
	memcpy(sig, m->sig.data, TENANT_SIG_BYTES);
	*body = m->body.data;
	*body_len = m->body.len;
	return 0;
}

int
tenant_cap_decode(const uint8_t *buf, size_t len, struct tenant_cap *out,
		  uint8_t *sig)
{
	struct tenant_cap_arena arena;
	arena.used = 0;
	uint8_t s[TENANT_SIG_BYTES];
	const uint8_t *body;
	size_t body_len;
	struct tenant_cap c;
	int rc =
	    tenant_cap_decode_in(&arena, buf, len, &c, s, &body, &body_len);
	if (rc != 0)
		return rc;
	if (out != NULL)
		*out = c;
	if (sig != NULL)
		memcpy(sig, s, sizeof(s));
	return 0;
}

/* The first right of @missing, for people; static strings only. */
static const char *
tenant_cap_lacks(uint32_t missing)
{
	if (missing & TENANT_READ)
		return "capability lacks read";
	if (missing & TENANT_WRITE)
		return "capability lacks write";
	if (missing & TENANT_ADMIN)
		return "capability lacks admin";
	return "capability lacks a right";
}

int
tenant_cap_check(const uint8_t *buf, size_t len, const char *tenant,
		 const uint8_t *tenant_key, uint32_t need, uint64_t now_unix_s,
		 tenant_verify_fn *verify, void *ctx, const char **why)
{
	assert(tenant != NULL && tenant_key != NULL && verify != NULL);
	const char *dummy;
	if (why == NULL)
		why = &dummy;
	struct tenant_cap_arena arena;
	arena.used = 0;
	struct tenant_cap c;
	uint8_t sig[TENANT_SIG_BYTES];
	const uint8_t *body;
	size_t body_len;
	if (tenant_cap_decode_in(&arena, buf, len, &c, sig, &body, &body_len) !=
	    0) {
		*why = "malformed capability";
		return MESH_EDECODE;
	}
	if (strcmp(c.tenant, tenant) != 0) {
		*why = "capability is for another tenant";
		return MESH_EAUTH;
	}
	if (memcmp(c.tenant_key, tenant_key, TENANT_PUBKEY_BYTES) != 0) {
		*why = "capability is not signed by the tenant's key";
		return MESH_EAUTH;
	}
	/* The key in the body is the registered one, so checking against the
	 * registered key is checking against the body's. */
	if (!verify(ctx, tenant_key, body, body_len, sig)) {
		*why = "capability signature is not valid";
		return MESH_EAUTH;
	}
	if (c.expires_unix_s != 0 && now_unix_s >= c.expires_unix_s) {
		*why = "capability expired";
		return MESH_ESTATE;
	}
	uint32_t missing = need & ~c.rights;
	if (missing != 0) {
		*why = tenant_cap_lacks(missing);
		return MESH_EAUTH;
	}
	*why = "";
	return 0;
}

/* One word of a rights list: a name, or a run of the letters r, w, a. */
static int
tenant_rights_word(const char *w, size_t n, uint32_t *out)
{
	static const struct {
		const char *name;
		uint32_t bit;
	} names[] = {
	    {"read", TENANT_READ},
	    {"write", TENANT_WRITE},
	    {"admin", TENANT_ADMIN},
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i].name) == n &&
		    memcmp(w, names[i].name, n) == 0) {
			*out |= names[i].bit;
			return 0;
		}
	if (n == 0)
		return MESH_EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (w[i] == 'r')
			*out |= TENANT_READ;
		else if (w[i] == 'w')
			*out |= TENANT_WRITE;
		else if (w[i] == 'a')
			*out |= TENANT_ADMIN;
		else
			return MESH_EINVAL;
	}
	return 0;
}

int
tenant_rights_parse(const char *text, uint32_t *out)
{
	if (text == NULL || out == NULL)
		return MESH_EINVAL;
	uint32_t rights = 0;
	const char *p = text;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		int rc = tenant_rights_word(p, n, &rights);
		if (rc != 0)
			return rc;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	if (rights == 0)
		return MESH_EINVAL;
	*out = rights;
	return 0;
}

const char *
tenant_rights_format(uint32_t rights, char *buf, size_t cap)
{
	if (buf == NULL || cap == 0)
		return "";
	snprintf(buf, cap, "%s%s%s%s%s%s", rights & TENANT_READ ? "read" : "",
		 (rights & TENANT_READ) &&
			 (rights & (TENANT_WRITE | TENANT_ADMIN))
		     ? ","
		     : "",
		 rights & TENANT_WRITE ? "write" : "",
		 (rights & TENANT_WRITE) && (rights & TENANT_ADMIN) ? "," : "",
		 rights & TENANT_ADMIN ? "admin" : "",
		 (rights & TENANT_CAP_RIGHTS_ALL) == 0 ? "none" : "");
	return buf;
}
