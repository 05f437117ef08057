/*
 * tenant.h - per-tenant replicated state, sans I/O.
 *
 * One struct tenant is one node's part of the tenant service. A tenant's
 * state is one OR-map (crdt/) whose top-level fields are kept one record
 * each in the injected store (tenant_kv.h), next to the tenant's causal
 * context. The ring (ring.h) names each tenant's replicas; any node accepts
 * an operation, and a node that is not a replica forwards it to one.
 *
 * The core reads no clock, opens no socket and draws no system randomness.
 * The driver passes monotonic time into every call, feeds the frames other
 * nodes sent (tenant_recv), tells it when the view changes
 * (tenant_set_view), and drains what it wants sent (tenant_poll_output)
 * and the answers to local requests (tenant_poll_reply). meshd drives it
 * over sealed TCP streams and LMDB, meshsim over a virtual network and an
 * in-memory store. docs/tenants.md explains the protocol.
 *
 * Threading: none. One caller at a time.
 */
#ifndef TENANT_H
#define TENANT_H

#include "crdt.h"
#include "ring.h"
#include "swim.h"
#include "tenant_kv.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TENANT_PROTOCOL_MAJOR 1
#define TENANT_PROTOCOL_MINOR 0
#define TENANT_PROTOCOL_VERSION                                                \
	(TENANT_PROTOCOL_MAJOR << 8 | TENANT_PROTOCOL_MINOR)

/* Limits on what a client may send. */
#define TENANT_ID_MAX 128	     /* bytes of a tenant id, at least 1 */
#define TENANT_KEY_MAX 256	     /* bytes of a user key, at least 1 */
#define TENANT_VALUE_MAX (64u << 10) /* bytes of a value or set element */

/*
 * The system tenant: the mesh's own replicated state (the desired packs and
 * their run states). It is kept like any tenant on the replicas the ring
 * names, and besides every other node holds a copy that it keeps up to
 * date by anti-entropy with one replica per round (it "follows" it), so
 * that any node can read it locally. It needs no capability: only the
 * driver writes it (struct tenant_request.system) or a member of the mesh
 * forwards such a write; clients may not name any tenant starting with
 * '_'. Changes of its fields are reported by tenant_poll_change().
 */
#define TENANT_SYSTEM "_mesh"

/* Ed25519 sizes, for capabilities. */
#define TENANT_PUBKEY_BYTES 32
#define TENANT_SIG_BYTES 64

struct tenant;

/** Rights a capability grants. */
enum tenant_right {
	TENANT_READ = 1,
	TENANT_WRITE = 2,
	TENANT_ADMIN = 4,
};

enum tenant_op {
	TENANT_OP_PUT = 1,    /* MV register := value (LWW with @lww) */
	TENANT_OP_GET = 2,    /* every field named key */
	TENANT_OP_INC = 3,    /* PN-counter += n */
	TENANT_OP_ADD = 4,    /* OR-set add value */
	TENANT_OP_RM = 5,     /* OR-set remove value; no value: drop the key */
	TENANT_OP_KEYS = 6,   /* list the keys */
	TENANT_OP_DIGEST = 7, /* the tenant's digest here */
	TENANT_OP_CREATE = 8, /* register the tenant's public key */
};

/** How many replicas must commit a write before it is acknowledged. */
enum tenant_ack {
	TENANT_ACK_ONE = 0,
	TENANT_ACK_QUORUM = 1,
	TENANT_ACK_ALL = 2,
};

/**
 * Checks an Ed25519 signature: true when @sig is @pub's signature of
 * @msg. The driver supplies it (libsodium in meshd); the core only asks.
 */
typedef bool tenant_verify_fn(void *ctx, const uint8_t *pub, const uint8_t *msg,
			      size_t len, const uint8_t *sig);

/**
 * Tunables. tenant_config_default() fills every field but the identity,
 * the store and the verifier; the reasons for the defaults are in
 * tenant_config.c.
 */
struct tenant_config {
	char name[SWIM_NAME_MAX + 1]; /* this node, as in membership */
	uint64_t replica_id; /* dot replica id: unique per node identity */
	uint64_t seed;	     /* PRNG seed */
	unsigned replicas;   /* RF: replicas per tenant, 1..RING_REPLICAS_MAX */
	uint32_t anti_entropy_ms; /* digest exchange period per peer */
	/* Every this many anti-entropy rounds a node offers its copy of
	 * TENANT_SYSTEM to one replica of it (1: every round). meshd asks
	 * seldom: SWIM acks carry the digest (tenant_follow()). */
	uint32_t follow_rounds;
	uint32_t request_timeout_ms; /* give up waiting for acks after this */
	/* Wall-clock time (capability expiry) = now_ms + wall_offset_ms. */
	int64_t wall_offset_ms;
	uint32_t max_pending; /* writes waiting for acks or forwarded */
	/* Quotas per tenant, checked by the replica that coordinates a
	 * write: 0 means unlimited. */
	uint64_t quota_keys;
	uint64_t quota_bytes;
	uint32_t rate_per_s; /* token bucket: writes per second ... */
	uint32_t rate_burst; /* ... and its depth */
	tenant_verify_fn *verify;
	void *verify_ctx;
	struct tenant_kv kv;
};

/** A client operation. Every pointer is borrowed for the call. */
struct tenant_request {
	uint64_t id; /* the driver's handle; echoed in the reply */
	enum tenant_op op;
	const char *tenant; /* NUL-terminated */
	const uint8_t *cap; /* encoded capability (tenant_cap.h) */
	size_t cap_len;
	const uint8_t *key;
	size_t key_len;
	const uint8_t *value; /* PUT, ADD, RM with an element */
	size_t value_len;
	bool has_value; /* RM: remove one element */
	int64_t n;	/* INC */
	enum tenant_ack ack;
	const uint8_t *tenant_key; /* CREATE: TENANT_PUBKEY_BYTES */
	bool lww; /* PUT: a last-writer-wins register (by hybrid clock) */
	/* Not NULL: KEY is a field of the nested map MAP (a top-level field
	 * of kind CRDT_ORMAP); KEYS lists that map's keys. */
	const uint8_t *map;
	size_t map_len;
	/* The driver's own operation on TENANT_SYSTEM: no capability. Client
	 * requests never set it. */
	bool system;
};

/** A byte string borrowed from the core. */
struct tenant_bytes {
	const uint8_t *data;
	size_t len;
};

/**
 * The answer to a request. Everything is borrowed until the next call into
 * the core.
 */
struct tenant_reply {
	uint64_t id;
	int rc;		   /* 0 or a MESH_E... code */
	const char *error; /* why, for people; "" on success */
	unsigned acks;	   /* replicas that committed the write */
	const char *const *acked_by;
	const char *const *replicas; /* the tenant's replica set */
	unsigned nreplicas;
	enum crdt_kind kind; /* GET: what was found (0: nothing) */
	const struct tenant_bytes *values; /* MV values, set, keys */
	size_t nvalues;
	int64_t counter;
	uint64_t digest;
	const char *served_by; /* the replica that answered */
};

/** A frame to send to another node over its tenant stream. */
struct tenant_output {
	const char *to; /* node name */
	struct swim_addr addr;
	const uint8_t *data; /* borrowed until the next call */
	size_t len;
	uint64_t seq; /* this frame's number, for tenant_frame_lost() */
};

/** A changed field of TENANT_SYSTEM (tenant_poll_change). */
struct tenant_change {
	const uint8_t *key;
	size_t len;
};

/** Counters, for status and the benchmark. */
struct tenant_stats {
	uint64_t ops, ops_failed, forwarded, writes_local;
	uint64_t deltas_sent, deltas_recv, deltas_applied;
	uint64_t delta_bytes_sent; /* encoded OR-map bytes of deltas sent */
	uint64_t frames_sent, frame_bytes_sent, frames_recv;
	uint64_t ae_rounds, ae_digest_mismatch, ae_pulls_sent, ae_pulls_served,
	    ae_bytes_sent;
	uint64_t ae_partial;	/* pull answers cut short (size cap, errors) */
	uint64_t handoffs_done; /* tenants dropped after new owners had them */
	uint64_t drop_decode, drop_version, drop_bad_delta;
	uint64_t drop_output;	/* frames lost: no address or no memory */
	uint64_t drop_stranger; /* frames from a node not in the view */
	uint64_t store_errors;	/* commits that failed (disk or map full) */
	uint64_t denied;	/* capability refused */
	uint64_t over_quota;
	uint64_t timeouts;
	uint64_t follow_sent, follow_served;   /* system tenant followers */
	uint64_t follow_asked, follow_skipped; /* tenant_follow() */
};

/** What this node holds of one tenant, for status. */
struct tenant_info {
	const char *tenant;
	uint64_t keys, bytes;
	uint64_t digest;
	bool replica;	 /* false: held only until its new owners have it */
	unsigned behind; /* replicas whose last digest differed from ours
			    (not counted until they were compared) */
	uint64_t oldest_unacked_ms; /* age of the oldest delta not acked */
};

/** Fills @cfg with defaults; identity, kv and verify are left empty. */
void tenant_config_default(struct tenant_config *cfg);

/** Checks @cfg; on error *@why says what is wrong. 0 or MESH_EINVAL. */
int tenant_config_check(const struct tenant_config *cfg, const char **why);

/**
 * Creates the service and loads the list of tenants held from the store
 * (their contexts; never their fields). @cfg is copied; @env is borrowed.
 * Returns 0, MESH_EINVAL, MESH_ENOMEM or the store's errors
 * (MESH_ECORRUPT, MESH_EIO).
 */
int tenant_new(const struct tenant_config *cfg, const struct mesh_env *env,
	       uint64_t now_ms, struct tenant **out);

/** Frees @t; NULL is fine. Pending requests are dropped unanswered. */
void tenant_free(struct tenant *t);

/**
 * The view changed: @ring names replicas, @s gives addresses (NULL: the
 * driver routes outputs by name and their addresses are zero). Both are
 * borrowed until the next tenant_set_view() (the driver keeps them alive).
 * Starts handoff of tenants whose replica set changed.
 */
void tenant_set_view(struct tenant *t, uint64_t now_ms, const struct ring *ring,
		     const struct swim *s);

/**
 * Submits a client operation; the answer comes from tenant_poll_reply(),
 * at once or when replicas have answered. Returns 0 when accepted (an
 * answer will come, possibly an error) or MESH_EFULL when too many
 * requests are pending (no answer will come).
 */
int tenant_submit(struct tenant *t, uint64_t now_ms,
		  const struct tenant_request *rq);

/**
 * Feeds a frame another node sent. Malformed input is dropped and counted.
 * Returns 0, MESH_EDECODE or MESH_EVERSION.
 */
int tenant_recv(struct tenant *t, uint64_t now_ms, const uint8_t *data,
		size_t len);

/**
 * Group commit. Between tenant_batch_begin() and tenant_batch_end(), every
 * call's store writes join one batch of the store (tenant_kv.h), made
 * durable at once by tenant_batch_end(); the frames and answers of those
 * calls are released only then. Without them each call is its own batch.
 * meshd opens a batch at the first call of a loop iteration and ends it
 * before the loop waits again.
 */
void tenant_batch_begin(struct tenant *t);
void tenant_batch_end(struct tenant *t, uint64_t now_ms);

/**
 * The driver could not send frame @seq to @name at all (the peer is down,
 * or its queue is full): nothing in it reached the peer. Requests it
 * carried are asked of the next replica at once instead of waiting for
 * their timeout; that is safe for writes too, since the replica never saw
 * them.
 */
void tenant_frame_lost(struct tenant *t, uint64_t now_ms, const char *name,
		       uint64_t seq);

/** Runs timers: anti-entropy, handoff, request timeouts. */
void tenant_tick(struct tenant *t, uint64_t now_ms);

/** When tenant_tick() is due next. */
uint64_t tenant_next_deadline(const struct tenant *t);

/** Next frame to send; false when none. Data borrowed until next call. */
bool tenant_poll_output(struct tenant *t, struct tenant_output *out);

/** Next answer to a local request; false when none. */
bool tenant_poll_reply(struct tenant *t, struct tenant_reply *out);

/**
 * This node's copy of TENANT_SYSTEM in 32 bits (for swim_set_app_digest()):
 * equal on nodes whose copies are equal, never 0.
 */
uint32_t tenant_system_digest(const struct tenant *t);

/**
 * Offers our copy of TENANT_SYSTEM to @peer now, which serves what we lack
 * and pulls what it lacks: a peer's digest was seen to differ from ours.
 * At most one offer per TENANT_FOLLOW_GAP_MS; the rest are counted in
 * follow_skipped.
 */
void tenant_follow(struct tenant *t, uint64_t now_ms, const char *peer);
#define TENANT_FOLLOW_GAP_MS 500

/**
 * Next top-level field of TENANT_SYSTEM that changed here (a local write,
 * a delta or a pull applied); false when none. The key is borrowed until
 * the next call into the core. Read the field with tenant_system_read().
 */
bool tenant_poll_change(struct tenant *t, struct tenant_change *out);

/**
 * Called by tenant_system_read() for each value: @sub is NULL for a
 * top-level LWW register, else the key of a LWW field in the nested map.
 */
typedef void tenant_visit_fn(void *ctx, const uint8_t *sub, size_t sublen,
			     const uint8_t *val, size_t len);

/**
 * Reads field @key of TENANT_SYSTEM from this node's copy (no replica is
 * asked): a LWW register gives one call of @fn, a nested map one call per
 * LWW field in it. Returns 0, MESH_ENOENT (no such field) or the store's
 * errors.
 */
int tenant_system_read(struct tenant *t, const uint8_t *key, size_t len,
		       tenant_visit_fn *fn, void *ctx);

/**
 * Calls @fn for the key of every top-level field of TENANT_SYSTEM held here
 * that starts with @prefix (a key held under two kinds comes twice): how
 * a driver reads what it watches after a restart, when nothing changed.
 * Returns 0 or the store's errors.
 */
int tenant_system_scan(struct tenant *t, const char *prefix,
		       void (*fn)(void *ctx, const uint8_t *key, size_t len),
		       void *ctx);

/** Counters. */
const struct tenant_stats *tenant_stats(const struct tenant *t);

/** Number of client tenants held here (TENANT_SYSTEM is not counted). */
size_t tenant_count(const struct tenant *t);

/** The @i-th client tenant held (in no particular order), 0 or MESH_ENOENT. */
int tenant_info_at(const struct tenant *t, uint64_t now_ms, size_t i,
		   struct tenant_info *out);

#endif
