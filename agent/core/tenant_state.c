/*
 * tenant_state.c - a tenant's state in the store, one field at a time.
 *
 * A tenant may hold millions of keys, so its OR-map is never loaded whole:
 * an operation loads the few top-level fields it touches, rebuilds a
 * partial map with the tenant's whole causal context (cached in RAM), joins
 * or mutates it, and commits those fields, the context and the event index
 * in one transaction. Joining into a partial map is exact for the fields it
 * holds (crdt.h, "Field-at-a-time storage").
 */
#include "tenant_impl.h"

#include "mesh_err.h"
#include "mesh_hash.h"
#include "tenant.pb-c.h"

#include <string.h>

size_t
tenant__key(uint8_t *out, char tag, const char *id, size_t id_len,
	    const struct tenant__ref *ref)
{
	size_t n = 0;
	out[n++] = (uint8_t)tag;
	out[n++] = (uint8_t)id_len;
	memcpy(out + n, id, id_len);
	n += id_len;
	if (ref != NULL) {
		out[n++] = (uint8_t)ref->kind;
		if (ref->len > 0)
			memcpy(out + n, ref->key, ref->len);
		n += ref->len;
	}
	return n;
}

static void
tenant__be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

size_t
tenant__event_key(uint8_t *out, const char *id, size_t id_len,
		  const struct crdt_dot *dot)
{
	size_t n = tenant__key(out, TENANT__TAG_EVENT, id, id_len, NULL);
	tenant__be64(out + n, dot->replica);
	tenant__be64(out + n + 8, dot->counter);
	return n + 16;
}

uint64_t
tenant__digest(const char *id, size_t id_len, const uint8_t *cc, size_t cc_len)
{
	return mesh_hash_bytes(cc, cc_len, mesh_hash_bytes(id, id_len, 0x7e));
}

/* Re-encodes @h->cc into cc_buf and refreshes the digest. */
static int
tenant__held_refresh(struct tenant__held *h, const struct mesh_env *env)
{
	uint8_t *buf;
	size_t len;
	int rc = crdt_cc_encode(h->cc, &buf, &len);
	if (rc != 0)
		return rc;
	mesh_free(env->alloc, h->cc_buf);
	h->cc_buf = buf;
	h->cc_len = len;
	h->digest = tenant__digest(h->id, h->id_len, buf, len);
	return 0;
}

void
tenant__held_free(const struct mesh_env *env, struct tenant__held *h)
{
	if (h == NULL)
		return;
	crdt_cc_free(h->cc);
	mesh_free(env->alloc, h->cc_buf);
	mesh_free(env->alloc, h);
}

static struct tenant__held *
tenant__held_alloc(const struct mesh_env *env, const char *id, size_t id_len)
{
	struct tenant__held *h = mesh_calloc(env->alloc, 1, sizeof(*h));
	if (h == NULL)
		return NULL;
	memcpy(h->id, id, id_len);
	h->id[id_len] = 0;
	h->id_len = id_len;
	h->cc = crdt_cc_new(env->alloc);
	if (h->cc == NULL || tenant__held_refresh(h, env) != 0) {
		tenant__held_free(env, h);
		return NULL;
	}
	return h;
}

int
tenant__held_open(const struct mesh_env *env, const struct tenant_kv *kv,
		  const char *id, size_t id_len, uint64_t base_replica,
		  struct tenant__held **out)
{
	/* A new life of this tenant here: bump the epoch first, so that even
	 * a crash right after leaves the next life a fresh replica id. */
	uint8_t key[TENANT_KV_KEY_MAX];
	size_t klen = tenant__key(key, TENANT__TAG_EPOCH, id, id_len, NULL);
	const void *val;
	size_t vlen;
	uint64_t epoch = 0;
	int rc = kv->get(kv->ctx, key, klen, &val, &vlen);
	if (rc == 0 && vlen == 8) {
		const uint8_t *p = val;
		for (int i = 0; i < 8; i++)
			epoch = epoch << 8 | p[i];
	} else if (rc != MESH_ENOENT && rc != 0) {
		return rc;
	}
	epoch++;
	uint8_t ebuf[8];
	tenant__be64(ebuf, epoch);
	struct tenant_kv_write w = {key, klen, ebuf, 8, false};
	if ((rc = kv->commit(kv->ctx, &w, 1)) != 0)
		return rc;
	struct tenant__held *h = tenant__held_alloc(env, id, id_len);
	if (h == NULL)
		return MESH_ENOMEM;
	/* Never 0: the first epoch keeps the node's own id, later ones mix. */
	h->replica = epoch == 1 ? base_replica
				: mesh_mix64(base_replica ^ mesh_mix64(epoch));
	*out = h;
	return 0;
}

int
tenant__held_load(const struct mesh_env *env, const struct tenant_kv *kv,
		  const uint8_t *meta_key, size_t klen, const void *val,
		  size_t vlen, struct tenant__held **out)
{
	(void)kv;
	if (klen < 3 || meta_key[0] != TENANT__TAG_META ||
	    (size_t)meta_key[1] + 2 != klen || meta_key[1] > TENANT_ID_MAX)
		return MESH_ECORRUPT;
	Tenant__StoredTenant *st =
	    tenant__stored_tenant__unpack(NULL, vlen, val);
	if (st == NULL)
		return MESH_ECORRUPT;
	struct tenant__held *h =
	    tenant__held_alloc(env, (const char *)meta_key + 2, meta_key[1]);
	int rc = h == NULL ? MESH_ENOMEM : 0;
	struct crdt_cc *cc = NULL;
	if (rc == 0 && st->ctx.len > 0) {
		rc = crdt_cc_decode(env->alloc, st->ctx.data, st->ctx.len, &cc);
		if (rc == MESH_EDECODE || rc == MESH_ETOOBIG)
			rc = MESH_ECORRUPT;
	}
	if (rc == 0 && cc != NULL) {
		crdt_cc_free(h->cc);
		h->cc = cc;
		cc = NULL;
		rc = tenant__held_refresh(h, env);
	}
	if (rc == 0) {
		h->keys = st->keys;
		h->bytes = st->bytes;
		h->replica = st->replica;
		if (h->replica == 0)
			rc = MESH_ECORRUPT;
	}
	tenant__stored_tenant__free_unpacked(st, NULL);
	crdt_cc_free(cc);
	if (rc != 0) {
		tenant__held_free(env, h);
		return rc;
	}
	*out = h;
	return 0;
}

void
tenant__loaded_free(const struct mesh_env *env, struct tenant__loaded *ld)
{
	for (size_t i = 0; ld->rec != NULL && i < ld->n; i++)
		mesh_free(env->alloc, ld->rec[i]);
	mesh_free(env->alloc, ld->rec);
	mesh_free(env->alloc, ld->len);
	mesh_free(env->alloc, ld->refs);
	memset(ld, 0, sizeof(*ld));
}

int
tenant__load(const struct mesh_env *env, const struct tenant_kv *kv,
	     const struct tenant__held *h, const struct tenant__ref *refs,
	     size_t n, struct tenant__loaded *ld, struct crdt_ormap **m)
{
	const struct mesh_allocator *a = env->alloc;
	memset(ld, 0, sizeof(*ld));
	size_t cap = n ? n : 1;
	ld->refs = mesh_calloc(a, cap, sizeof(*ld->refs));
	ld->rec = mesh_calloc(a, cap, sizeof(*ld->rec));
	ld->len = mesh_calloc(a, cap, sizeof(*ld->len));
	const uint8_t **parts = mesh_calloc(a, cap, sizeof(*parts));
	size_t *lens = mesh_calloc(a, cap, sizeof(*lens)), nparts = 0;
	int rc = (ld->refs == NULL || ld->rec == NULL || ld->len == NULL ||
		  parts == NULL || lens == NULL)
		     ? MESH_ENOMEM
		     : 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		uint8_t key[TENANT_KV_KEY_MAX];
		size_t klen = tenant__key(key, TENANT__TAG_FIELD, h->id,
					  h->id_len, &refs[i]);
		const void *val;
		size_t vlen;
		ld->refs[i] = refs[i];
		ld->n = i + 1;
		rc = kv->get(kv->ctx, key, klen, &val, &vlen);
		if (rc == MESH_ENOENT) {
			rc = 0;
			continue;
		}
		if (rc != 0)
			break;
		/* Borrowed until the next store call: copy. */
		ld->rec[i] = mesh_malloc(a, vlen ? vlen : 1);
		if (ld->rec[i] == NULL) {
			rc = MESH_ENOMEM;
			break;
		}
		memcpy(ld->rec[i], val, vlen);
		ld->len[i] = vlen;
		parts[nparts] = ld->rec[i];
		lens[nparts++] = vlen;
	}
	if (rc == 0) {
		rc = crdt_ormap_decode_parts(a, parts, lens, nparts, h->cc_buf,
					     h->cc_len, m);
		if (rc == MESH_EDECODE || rc == MESH_ETOOBIG)
			rc = MESH_ECORRUPT;
	}
	mesh_free(a, parts);
	mesh_free(a, lens);
	if (rc != 0)
		tenant__loaded_free(env, ld);
	return rc;
}

int
tenant__commit(const struct mesh_env *env, const struct tenant_kv *kv,
	       struct tenant__held *h, const struct crdt_ormap *m,
	       const struct crdt_cc *cc, const struct tenant__loaded *ld,
	       const struct tenant__event *events, size_t nevents,
	       uint64_t quota_keys, uint64_t quota_bytes)
{
	const struct mesh_allocator *a = env->alloc;
	size_t nw = 0, cap = ld->n + nevents + 1;
	struct tenant_kv_write *w = mesh_calloc(a, cap, sizeof(*w));
	/* Keys live in one block: ld->n field keys, nevents event keys, one
	 * meta key; values of fields and events in owned buffers. */
	uint8_t *keys = mesh_malloc(a, cap * TENANT_KV_KEY_MAX);
	uint8_t **vals = mesh_calloc(a, cap, sizeof(*vals));
	struct crdt_cc *newcc = crdt_cc_new(a);
	uint8_t *ccbuf = NULL, *meta = NULL;
	size_t cclen = 0;
	int rc = (w == NULL || keys == NULL || vals == NULL || newcc == NULL)
		     ? MESH_ENOMEM
		     : 0;
	uint64_t nkeys = h->keys, nbytes = h->bytes;
	bool grows = false;
	for (size_t i = 0; i < ld->n && rc == 0; i++) {
		const struct tenant__ref *r = &ld->refs[i];
		uint8_t *k = keys + nw * TENANT_KV_KEY_MAX;
		size_t klen =
		    tenant__key(k, TENANT__TAG_FIELD, h->id, h->id_len, r);
		uint8_t *buf = NULL;
		size_t len = 0;
		rc = crdt_ormap_field_encode(m, r->kind, r->key, r->len, &buf,
					     &len);
		if (rc == MESH_ENOENT) {
			rc = 0;
			if (ld->rec[i] == NULL)
				continue; /* absent before and after */
			w[nw++] =
			    (struct tenant_kv_write){k, klen, NULL, 0, true};
			nkeys = nkeys > 0 ? nkeys - 1 : 0;
			nbytes = nbytes >= ld->len[i] ? nbytes - ld->len[i] : 0;
			continue;
		}
		if (rc != 0)
			break;
		if (ld->rec[i] != NULL && ld->len[i] == len &&
		    memcmp(ld->rec[i], buf, len) == 0) {
			mesh_free(a, buf); /* unchanged: nothing to write */
			continue;
		}
		vals[nw] = buf;
		w[nw++] = (struct tenant_kv_write){k, klen, buf, len, false};
		if (ld->rec[i] == NULL) {
			nkeys++;
			grows = true;
		}
		nbytes = nbytes - (ld->rec[i] ? ld->len[i] : 0) + len;
		if (len > (ld->rec[i] ? ld->len[i] : 0))
			grows = true;
	}
	/* Quotas bound growth only: a write that shrinks a tenant over its
	 * quota (a remove) must still go through. */
	if (rc == 0 && grows &&
	    ((quota_keys != 0 && nkeys > quota_keys) ||
	     (quota_bytes != 0 && nbytes > quota_bytes)))
		rc = MESH_EFULL;
	for (size_t i = 0; i < nevents && rc == 0; i++) {
		if (events[i].field >= ld->n) {
			rc = MESH_EINVAL;
			break;
		}
		const struct tenant__ref *r = &ld->refs[events[i].field];
		uint8_t *k = keys + nw * TENANT_KV_KEY_MAX;
		size_t klen =
		    tenant__event_key(k, h->id, h->id_len, &events[i].dot);
		uint8_t *v = mesh_malloc(a, 1 + r->len);
		if (v == NULL) {
			rc = MESH_ENOMEM;
			break;
		}
		v[0] = (uint8_t)r->kind;
		if (r->len > 0)
			memcpy(v + 1, r->key, r->len);
		vals[nw] = v;
		w[nw++] =
		    (struct tenant_kv_write){k, klen, v, 1 + r->len, false};
	}
	if (rc == 0)
		rc = crdt_cc_join(newcc, h->cc);
	if (rc == 0)
		rc = crdt_cc_join(newcc, cc);
	if (rc == 0)
		rc = crdt_cc_encode(newcc, &ccbuf, &cclen);
	if (rc == 0) {
		Tenant__StoredTenant st = TENANT__STORED_TENANT__INIT;
		st.ctx.data = ccbuf;
		st.ctx.len = cclen;
		st.keys = nkeys;
		st.bytes = nbytes;
		st.replica = h->replica;
		size_t mlen = tenant__stored_tenant__get_packed_size(&st);
		meta = mesh_malloc(a, mlen ? mlen : 1);
		if (meta == NULL) {
			rc = MESH_ENOMEM;
		} else {
			tenant__stored_tenant__pack(&st, meta);
			uint8_t *k = keys + nw * TENANT_KV_KEY_MAX;
			size_t klen = tenant__key(k, TENANT__TAG_META, h->id,
						  h->id_len, NULL);
			w[nw++] = (struct tenant_kv_write){k, klen, meta, mlen,
							   false};
		}
	}
	if (rc == 0)
		rc = kv->commit(kv->ctx, w, nw);
	if (rc == 0) {
		/* Committed: the cache follows. Nothing below may fail. */
		crdt_cc_free(h->cc);
		h->cc = newcc;
		newcc = NULL;
		mesh_free(a, h->cc_buf);
		h->cc_buf = ccbuf;
		h->cc_len = cclen;
		ccbuf = NULL;
		h->digest =
		    tenant__digest(h->id, h->id_len, h->cc_buf, h->cc_len);
		h->keys = nkeys;
		h->bytes = nbytes;
		/* What owners confirmed no longer covers us (handoff). */
		h->owner_same = 0;
	}
	for (size_t i = 0; vals != NULL && i < cap; i++)
		mesh_free(a, vals[i]);
	mesh_free(a, vals);
	mesh_free(a, keys);
	mesh_free(a, w);
	mesh_free(a, meta);
	mesh_free(a, ccbuf);
	crdt_cc_free(newcc);
	return rc;
}

struct tenant__drop_ctx {
	const struct mesh_allocator *a;
	struct tenant_kv_write *w;
	size_t n, cap;
	int rc;
};

static int
tenant__drop_visit(void *arg, const void *key, size_t klen, const void *val,
		   size_t vlen)
{
	struct tenant__drop_ctx *d = arg;
	(void)val;
	(void)vlen;
	if (d->n == d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 256;
		struct tenant_kv_write *nw =
		    mesh_realloc(d->a, d->w, ncap * sizeof(*nw));
		if (nw == NULL)
			return d->rc = MESH_ENOMEM;
		d->w = nw;
		d->cap = ncap;
	}
	uint8_t *k = mesh_malloc(d->a, klen);
	if (k == NULL)
		return d->rc = MESH_ENOMEM;
	memcpy(k, key, klen);
	d->w[d->n++] = (struct tenant_kv_write){k, klen, NULL, 0, true};
	return 0;
}

int
tenant__drop(const struct mesh_env *env, const struct tenant_kv *kv,
	     const struct tenant__held *h)
{
	struct tenant__drop_ctx d = {env->alloc, NULL, 0, 0, 0};
	static const char tags[] = {TENANT__TAG_FIELD, TENANT__TAG_EVENT,
				    TENANT__TAG_META};
	int rc = 0;
	for (size_t i = 0; i < sizeof(tags) && rc == 0; i++) {
		uint8_t prefix[TENANT_KV_KEY_MAX];
		size_t plen =
		    tenant__key(prefix, tags[i], h->id, h->id_len, NULL);
		rc = kv->scan(kv->ctx, prefix, plen, NULL, 0,
			      tenant__drop_visit, &d);
	}
	if (rc == 0)
		rc = kv->commit(kv->ctx, d.w, d.n);
	for (size_t i = 0; i < d.n; i++)
		mesh_free(env->alloc, (void *)d.w[i].key);
	mesh_free(env->alloc, d.w);
	return rc;
}
