/*
 * tenant_impl.h - internals of the tenant core, shared by its files and by
 * unit tests that look inside. Not a public API.
 *
 * Store layout (keys of the injected tenant_kv; "T" is the tenant id with a
 * one-byte length in front, so no id is a prefix of another's keys):
 *
 *   't' T                    StoredTenant: causal context, usage, replica id
 *   'f' T kind key           one top-level field (crdt_ormap_field_encode)
 *   'e' T replica counter    event index: the field an operation's dot
 *                            touched (kind, key); counters big-endian, so
 *                            one replica's events scan in order
 *   'r' T                    8-byte epoch: lives on after the tenant is
 *                            dropped, so that a node that holds the tenant
 *                            again writes under a fresh replica id and can
 *                            never reuse a dot of its earlier life
 */
#ifndef TENANT_IMPL_H
#define TENANT_IMPL_H

#include "mesh_rand.h"
#include "tenant.h"

#define TENANT__TAG_META 't'
#define TENANT__TAG_FIELD 'f'
#define TENANT__TAG_EVENT 'e'
#define TENANT__TAG_EPOCH 'r'

/* The field that holds the tenant's public key: an MV register under a key
 * no user can write (user keys never start with a NUL byte). Its value is
 * the creation time (8 bytes, big-endian ms) and the key; the earliest
 * value wins when a partition let two creates through. */
#define TENANT__KEY_FIELD "\0key"
#define TENANT__KEY_FIELD_LEN 4
#define TENANT__KEY_RECORD (8 + TENANT_PUBKEY_BYTES)

/* A field's name: (kind, key). @key is borrowed. */
struct tenant__ref {
	enum crdt_kind kind;
	const uint8_t *key;
	size_t len;
};

/* An index entry: dot -> the field its operation touched. */
struct tenant__event {
	struct crdt_dot dot;
	uint32_t field; /* index into the accompanying refs */
};

/* A tenant this node holds in its store. The causal context is cached in
 * RAM (it is small: one entry per replica that ever wrote); fields are not. */
struct tenant__held {
	char id[TENANT_ID_MAX + 1];
	size_t id_len;
	uint64_t ring_hash;
	uint64_t replica; /* our dot replica id for this tenant */
	struct crdt_cc *cc;
	uint8_t *cc_buf; /* cc encoded, for digests and partial loads */
	size_t cc_len;
	uint64_t digest;
	uint64_t keys, bytes;
	bool has_pubkey;
	uint8_t pubkey[TENANT_PUBKEY_BYTES];
	uint64_t pubkey_ms; /* creation time in the winning key record */
	/* From the current view. */
	bool is_replica;
	unsigned nowners;
	const char *owners[RING_REPLICAS_MAX];
	/* Owners (by slot) whose last digest equalled ours: handoff may drop
	 * the tenant when every owner has it. */
	uint32_t owner_same;
	/* Owners whose last digest differed from ours ("behind" in status;
	 * neither bit: not compared since the view changed). */
	uint32_t owner_diff;
	/* Per owner slot: its digest when it last differed from ours, and in
	 * how many rounds in a row (anti-entropy waits out deltas in
	 * flight before it pulls). */
	uint64_t seen_digest[RING_REPLICAS_MAX];
	uint8_t mismatches[RING_REPLICAS_MAX];
	/* Write rate limit (token bucket, in thousandths of a write). */
	uint64_t tokens_milli;
	uint64_t tokens_ms;
};

/* Loading and committing a tenant's fields: tenant_state.c. */

/* A scratch set of field records read from the store (owned copies). */
struct tenant__loaded {
	size_t n;
	struct tenant__ref *refs; /* keys borrowed from the caller */
	uint8_t **rec;		  /* NULL: the field was absent */
	size_t *len;
};

int tenant__held_open(const struct mesh_env *env, const struct tenant_kv *kv,
		      const char *id, size_t id_len, uint64_t base_replica,
		      struct tenant__held **out);
int tenant__held_load(const struct mesh_env *env, const struct tenant_kv *kv,
		      const uint8_t *meta_key, size_t klen, const void *val,
		      size_t vlen, struct tenant__held **out);
void tenant__held_free(const struct mesh_env *env, struct tenant__held *h);

/* Loads the fields @refs[0..n) (sorted by kind, then key) of @h and builds
 * the partial map with @h's whole context. *@m is owned by the caller. */
int tenant__load(const struct mesh_env *env, const struct tenant_kv *kv,
		 const struct tenant__held *h, const struct tenant__ref *refs,
		 size_t n, struct tenant__loaded *ld, struct crdt_ormap **m);
void tenant__loaded_free(const struct mesh_env *env, struct tenant__loaded *ld);

/* Commits the fields @refs of @m (present: put, absent: delete), the
 * context @cc, usage and @events in one transaction, then updates @h's
 * cache. @ld holds the old records (for usage). Errors of kv->commit,
 * MESH_EFULL (over a quota: nothing written), MESH_ENOMEM. */
int tenant__commit(const struct mesh_env *env, const struct tenant_kv *kv,
		   struct tenant__held *h, const struct crdt_ormap *m,
		   const struct crdt_cc *cc, const struct tenant__loaded *ld,
		   const struct tenant__event *events, size_t nevents,
		   uint64_t quota_keys, uint64_t quota_bytes);

/* Deletes everything of @h from the store but its epoch. */
int tenant__drop(const struct mesh_env *env, const struct tenant_kv *kv,
		 const struct tenant__held *h);

/* Builds a store key. Returns its length (<= TENANT_KV_KEY_MAX). */
size_t tenant__key(uint8_t *out, char tag, const char *id, size_t id_len,
		   const struct tenant__ref *ref);
size_t tenant__event_key(uint8_t *out, const char *id, size_t id_len,
			 const struct crdt_dot *dot);

/* Digest of a tenant from its id and encoded context. */
uint64_t tenant__digest(const char *id, size_t id_len, const uint8_t *cc,
			size_t cc_len);

#endif
