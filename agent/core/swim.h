/*
 * swim.h - SWIM membership with the Lifeguard extensions, sans I/O.
 *
 * One struct swim is one node's view of the mesh. It never reads a clock,
 * touches a socket or draws system randomness: the driver passes the time
 * (monotonic milliseconds) into every call, seeds the PRNG through the
 * config, feeds received datagrams and stream frames in, and drains what the
 * core wants sent with swim_poll_output() and what happened with
 * swim_poll_event(). The same object runs in meshd, the simulator and tests.
 *
 * Threading: none. One caller at a time.
 */
#ifndef SWIM_H
#define SWIM_H

#include "mesh_log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SWIM_PROTOCOL_MAJOR 2
#define SWIM_PROTOCOL_MINOR 2
#define SWIM_PROTOCOL_VERSION (SWIM_PROTOCOL_MAJOR << 8 | SWIM_PROTOCOL_MINOR)

/* Limits on what a node may say about itself. They keep the largest alive
 * update (name + address + full metadata, about 1 KiB) inside one datagram. */
#define SWIM_NAME_MAX 64     /* bytes of [A-Za-z0-9._-] */
#define SWIM_TAG_MAX 32	     /* zone, region, cell: bytes each */
#define SWIM_KV_MAX 8	     /* free key/value tags */
#define SWIM_KV_KEY_MAX 32   /* bytes of [A-Za-z0-9._-] */
#define SWIM_KV_VALUE_MAX 64 /* printable ASCII bytes */
/* UDP datagram budget before sealing: 1,400 bytes on the wire minus the
 * 41 bytes the sealing layer adds. */
#define SWIM_DATAGRAM_MAX 1359
/* Ed25519 public key and signature sizes. */
#define SWIM_KEY_BYTES 32
#define SWIM_SIG_BYTES 64
/* Longest record a node signs (swim_record_bytes()): alive with a 64-byte
 * name, an IPv6 address and full metadata. */
#define SWIM_RECORD_MAX 1024

struct swim;

enum swim_state {
	SWIM_ALIVE = 0,
	SWIM_SUSPECT = 1,
	SWIM_DEAD = 2,
	SWIM_LEFT = 3,
};

/** An IPv4 or IPv6 address and port; family 4 or 6. */
struct swim_addr {
	uint8_t family;
	uint8_t ip[16];
	uint16_t port;
};

struct swim_kv {
	char key[SWIM_KV_KEY_MAX + 1];
	char value[SWIM_KV_VALUE_MAX + 1];
};

/** Node metadata: place in the hierarchy plus free tags. */
struct swim_meta {
	char zone[SWIM_TAG_MAX + 1];
	char region[SWIM_TAG_MAX + 1];
	char cell[SWIM_TAG_MAX + 1];
	unsigned kv_count;
	struct swim_kv kv[SWIM_KV_MAX];
};

/**
 * Signs @msg (len bytes) with this node's Ed25519 identity into @sig. The
 * driver supplies it (libsodium in meshd): the core never holds a secret
 * key.
 */
typedef void swim_sign_fn(void *ctx, const uint8_t *msg, size_t len,
			  uint8_t sig[SWIM_SIG_BYTES]);

/** True when @sig is the signature of @msg by public key @key. */
typedef bool swim_verify_fn(void *ctx, const uint8_t *key, const uint8_t *msg,
			    size_t len, const uint8_t *sig);

/** Signing and checking of self-assertions, supplied by the driver. */
struct swim_crypto {
	swim_sign_fn *sign;
	swim_verify_fn *verify;
	void *ctx;
};

/**
 * Tunables. swim_config_default() fills every field with the defaults whose
 * reasons are given in swim_config.c; change a field only with a reason.
 */
struct swim_config {
	char name[SWIM_NAME_MAX + 1];
	struct swim_addr addr; /* advertised address */
	struct swim_meta meta;
	/* Higher than any earlier life: meshd starts at (boot epoch << 32),
	 * the epoch counted in the store before the node speaks, so raising
	 * it within a life never needs a write. */
	uint64_t incarnation;
	uint64_t seed; /* PRNG seed */
	/* Our identity: what we say about ourselves is signed by it, and
	 * a member is admitted only with a record its key signed. */
	uint8_t key[SWIM_KEY_BYTES];
	struct swim_crypto crypto;

	uint32_t probe_interval_ms;
	/* The probe timeout follows the measured round trip (SRTT +
	 * 4 RTTVAR, RFC 6298) between these bounds; probe_timeout_ms is
	 * also where it starts. Equal bounds give a fixed timeout. */
	uint32_t probe_timeout_ms;
	uint32_t probe_timeout_min_ms;
	uint32_t indirect_checks;
	uint32_t indirect_checks_lossy; /* helpers on a lossy network */
	/* At the probe timeout, ping the target directly once more beside
	 * the indirect pings. */
	bool probe_retry;
	double suspicion_mult;
	uint32_t suspicion_max_mult;
	uint32_t suspicion_confirmations;
	/* The suspicion timeout is stretched by 1 + loss_mult * (share of
	 * recent answered probes that missed the direct timeout) and by the
	 * local health score: a lossy or slow network waits longer before
	 * a death. 0 keeps it fixed. */
	double suspicion_loss_mult;
	/* Pings an unconfirmed suspect gets before it is declared dead
	 * (and every suspect when probes are being lost). */
	uint32_t last_calls;
	/* On a clean network (swim__network_clean()), each helper that
	 * nacked our indirect probe counts as a confirmation of the
	 * suspicion it starts: it tried the target itself and failed. */
	bool nack_confirms;
	uint32_t retransmit_mult;
	uint32_t gossip_interval_ms;
	uint32_t gossip_nodes;
	uint32_t awareness_max;
	uint32_t push_pull_interval_ms;
	uint32_t reconnect_interval_ms;
	uint32_t reclaim_ms;
	uint32_t join_timeout_ms;
	uint32_t join_backoff_max_ms;
	uint32_t datagram_max; /* plaintext bytes per datagram */
	uint32_t stream_max;   /* plaintext bytes per push-pull frame */
};

enum swim_out_kind {
	SWIM_OUT_DATAGRAM = 1, /* send as one UDP datagram */
	SWIM_OUT_STREAM = 2,   /* open a TCP stream, send one frame, feed every
				  frame that comes back to swim_recv_stream() */
};

/** Something to send. @data is borrowed until the next call into swim. */
struct swim_output {
	enum swim_out_kind kind;
	struct swim_addr to;
	const uint8_t *data;
	size_t len;
};

enum swim_event_kind {
	SWIM_EV_MEMBER_JOINED = 1, /* a member we did not know, alive */
	SWIM_EV_MEMBER_ALIVE,	   /* suspect/dead member is alive again */
	SWIM_EV_MEMBER_SUSPECT,
	SWIM_EV_MEMBER_DEAD,
	SWIM_EV_MEMBER_LEFT,
	SWIM_EV_MEMBER_UPDATED,	  /* new address or metadata */
	SWIM_EV_MEMBER_REMOVED,	  /* dead/left past the reclaim window */
	SWIM_EV_SELF_INCARNATION, /* we raised our incarnation */
	SWIM_EV_JOINED,		  /* first push-pull with a seed succeeded */
	SWIM_EV_APP_DIFFERS,	  /* member @name answered our ping with an
				     application digest unlike ours (not a
				     membership change) */
};

struct swim_event {
	enum swim_event_kind kind;
	char name[SWIM_NAME_MAX + 1];
	uint64_t incarnation;
	char from[SWIM_NAME_MAX + 1]; /* accuser for suspect/dead, else "" */
};

/** Read-only view of one member, borrowed until the next call into swim. */
struct swim_member_info {
	const char *name;
	struct swim_addr addr;
	uint64_t incarnation;
	enum swim_state state;
	const struct swim_meta *meta;
	uint64_t state_since_ms;
	bool is_self;
	const uint8_t *key; /* SWIM_KEY_BYTES: the member's identity */
};

/** Counters. Drops are inputs refused without changing anything. */
struct swim_stats {
	uint64_t sent_datagrams, sent_bytes;
	uint64_t recv_datagrams, recv_bytes;
	uint64_t sent_streams, recv_streams;
	uint64_t syncs_sent;	 /* periodic digests offered by datagram */
	uint64_t syncs_differed; /* received ones that started a push-pull */
	uint64_t syncs_deferred; /* differed, but a push-pull ran just now */
	uint64_t probes, probe_acks, probe_failures, indirect_probes;
	uint64_t nacks_sent, nacks_received, late_acks;
	uint64_t suspicions, refutations, confirmations, deaths_declared;
	uint64_t nack_confirmations; /* cfg.nack_confirms */
	uint64_t last_calls;   /* unconfirmed suspects pinged before death */
	uint64_t drop_decode;  /* not a valid Packet / PushPull */
	uint64_t drop_version; /* unknown protocol major version */
	uint64_t drop_misaddressed;  /* ping for another name */
	uint64_t drop_bad_update;    /* update with bad name/addr/meta */
	uint64_t drop_bad_signature; /* self-assertion not signed by its key */
	uint64_t drop_key_conflict;  /* record for a name held by another key */
	uint64_t
	    drop_unseen_incarnation; /* accusation beyond what was signed */
	uint64_t drop_relay_full;    /* ping-req while relay table is full */
	uint64_t drop_outbox_full;   /* output lost: driver did not drain */
	uint64_t drop_events;	     /* events lost: driver did not drain */
	uint64_t updates_applied;
};

/** Fills @cfg with the defaults (name, addr and seed empty). */
void swim_config_default(struct swim_config *cfg);

/**
 * swim_config_memberlist_lan() - Sets the timing fields of @cfg to
 * reproduce hashicorp/memberlist's DefaultLANConfig() in this core, for
 * side-by-side measurements (meshsim --profile memberlist, meshd
 * --profile memberlist): 1 s probes, fixed 500 ms timeout, suspicion
 * multiplier 4 with 2 confirmations, none of our adaptive additions.
 * Identity, address, metadata and limits are left as they are.
 * @cfg: a configuration, e.g. from swim_config_default()
 */
void swim_config_memberlist_lan(struct swim_config *cfg);

/**
 * Checks a config: name syntax, metadata limits, non-zero intervals.
 * Returns 0 or MESH_EINVAL/MESH_ERANGE; @why gets a static reason.
 */
int swim_config_check(const struct swim_config *cfg, const char **why);

/**
 * Creates a node view holding only itself, alive. @cfg is copied (it must
 * carry a signer and a verifier); @env is borrowed and must outlive the
 * swim. *@out is owned by the caller.
 * Returns 0, MESH_EINVAL (bad config) or MESH_ENOMEM.
 */
int swim_new(const struct swim_config *cfg, const struct mesh_env *env,
	     uint64_t now_ms, struct swim **out);

/** Frees everything the swim owns; NULL is fine. */
void swim_free(struct swim *s);

/**
 * Starts joining through @seeds (copied): a push-pull with each seed in turn,
 * backing off after each full round, until one answers (SWIM_EV_JOINED).
 * The seeds are kept for rejoining when every other member is gone.
 * Returns 0, MESH_EINVAL (n == 0 or > 64) or MESH_ENOMEM.
 */
int swim_join(struct swim *s, uint64_t now_ms, const struct swim_addr *seeds,
	      size_t n);

/**
 * Adds a member known from elsewhere (a static member list, or the
 * simulator starting from a converged mesh) as alive at @incarnation,
 * without gossiping it: every node is expected to learn it the same way.
 * The record is checked like one from the wire: @sig must be @key's
 * signature of swim_record_bytes(name, incarnation, false, addr, meta).
 * @meta may be NULL. Returns 0, MESH_EINVAL (bad name, address or
 * metadata), MESH_EAUTH (bad signature), MESH_EEXIST (name already known)
 * or MESH_ENOMEM.
 */
int swim_add_known(struct swim *s, uint64_t now_ms, const char *name,
		   const struct swim_addr *addr, uint64_t incarnation,
		   const struct swim_meta *meta, const uint8_t *key,
		   const uint8_t *sig);

/**
 * Writes into @buf (SWIM_RECORD_MAX bytes) the bytes a node signs to say
 * it is alive at @incarnation with @addr and @meta (@left false), or that
 * it leaves at @incarnation (@left true; @addr and @meta unused, may be
 * NULL). The layout is in docs/protocol.md. Returns the length.
 */
size_t swim_record_bytes(const char *name, uint64_t incarnation, bool left,
			 const struct swim_addr *addr,
			 const struct swim_meta *meta, uint8_t *buf);

/**
 * Replaces our own metadata (copied) and tells the mesh: raises our
 * incarnation and gossips the new alive record. Used by drain.
 * Returns 0, MESH_EINVAL (metadata over the limits), MESH_ESTATE (leaving)
 * or MESH_ENOMEM.
 */
int swim_set_meta(struct swim *s, uint64_t now_ms,
		  const struct swim_meta *meta);

/**
 * Leaves gracefully: announces LEFT at the current incarnation and stops
 * probing. Keep driving the swim until swim_pending_updates() is 0 (or a
 * short grace time passes) so the announcement gets out.
 */
void swim_leave(struct swim *s, uint64_t now_ms);

/** Runs timers due at @now_ms: probes, timeouts, gossip, push-pull, reaping. */
void swim_tick(struct swim *s, uint64_t now_ms);

/** The earliest time swim_tick() has work to do. */
uint64_t swim_next_deadline(const struct swim *s);

/**
 * Handles one received datagram (plaintext) from @from. Invalid input is
 * counted in the stats and changes nothing.
 * Returns 0, MESH_EDECODE, MESH_EVERSION or MESH_ETOOBIG.
 */
int swim_recv_datagram(struct swim *s, uint64_t now_ms,
		       const struct swim_addr *from, const uint8_t *buf,
		       size_t len);

/**
 * Handles one push-pull frame (plaintext) received on a stream from @from.
 * If the protocol wants to answer on the same stream, *@reply and
 * *@reply_len are set (borrowed until the next call); otherwise *@reply is
 * NULL and the driver closes the stream.
 * Returns 0, MESH_EDECODE, MESH_EVERSION, MESH_ETOOBIG or MESH_ENOMEM.
 */
int swim_recv_stream(struct swim *s, uint64_t now_ms,
		     const struct swim_addr *from, const uint8_t *buf,
		     size_t len, const uint8_t **reply, size_t *reply_len);

/**
 * Tells the swim that a stream it asked for (SWIM_OUT_STREAM to @to) could
 * not be opened or broke before an answer. While joining, the next seed is
 * then tried at once instead of after the join timeout.
 */
void swim_stream_failed(struct swim *s, uint64_t now_ms,
			const struct swim_addr *to);

/** Takes the next output; false when there is none. See struct swim_output. */
bool swim_poll_output(struct swim *s, struct swim_output *out);

/**
 * Takes the next event; false when there is none. Events wait in a queue
 * that grows as needed (one push-pull can add thousands of members); only
 * past a million waiting events, or when memory runs out, are they dropped
 * and counted in stats.drop_events. Events say that something changed; the
 * view (swim_member_at()) is the truth, so a consumer that sees drop_events
 * grow re-reads it.
 */
bool swim_poll_event(struct swim *s, struct swim_event *ev);

/**
 * Sets the application digest our acks carry (0: none). A prober whose own
 * digest is set and differs gets SWIM_EV_APP_DIFFERS naming us, so state
 * that every node keeps a copy of is compared on every probe at 5 bytes an
 * ack, and fetched only when it differs.
 */
void swim_set_app_digest(struct swim *s, uint32_t digest);

/** Number of members known, self included, in every state. */
size_t swim_member_count(const struct swim *s);

/** Member @i (0 <= i < count) in table order; self is member 0. */
void swim_member_at(const struct swim *s, size_t i,
		    struct swim_member_info *info);

/** Looks a member up by name. Returns 0 or MESH_ENOENT. */
int swim_member_find(const struct swim *s, const char *name,
		     struct swim_member_info *info);

/** Counts of members by state, self included. */
void swim_state_counts(const struct swim *s, size_t counts[4]);

/** What the adaptive timers stand at (swim_timing()). */
struct swim_timing {
	uint32_t srtt_ms, rttvar_ms; /* 0 before the first sample */
	uint32_t probe_timeout_ms;   /* before the health stretch */
	uint64_t period_ms;	     /* probe period, health included */
	double late_share;	     /* answered probes that came late */
	double suspicion_stretch;    /* factor on suspicion timeouts */
};

/**
 * swim_self_check() - Verifies the core's own bookkeeping against the view:
 * the digest kept up to date member by member, the state counts, the
 * suspect and gone lists, the name index. O(N); for tests, fuzzing and the
 * simulator.
 * @why: set to a static description of the first mismatch, or "ok"
 * Return: 0, or MESH_ESTATE on a mismatch (a bug in this core)
 */
int swim_self_check(const struct swim *s, const char **why);

/** Fills @t with the current round-trip estimate and timer stretches. */
void swim_timing(const struct swim *s, struct swim_timing *t);

/** Local health (Lifeguard awareness): 0 is healthy, up to awareness_max. */
unsigned swim_health(const struct swim *s);

/** Our current incarnation. */
uint64_t swim_incarnation(const struct swim *s);

/** Updates not yet retransmitted to their limit. */
size_t swim_pending_updates(const struct swim *s);

/** True once a join succeeded (or no join was asked for). */
bool swim_is_joined(const struct swim *s);

/** Counters since swim_new(). */
const struct swim_stats *swim_stats(const struct swim *s);

/** "alive", "suspect", "dead", "left". */
const char *swim_state_name(enum swim_state state);

/** Formats "1.2.3.4:7946" or "[::1]:7946" into @buf; returns @buf. */
char *swim_addr_format(const struct swim_addr *a, char *buf, size_t cap);

/** True when both address and port are equal. */
bool swim_addr_equal(const struct swim_addr *a, const struct swim_addr *b);

/** True when @name is 1..SWIM_NAME_MAX bytes of [A-Za-z0-9._-]. */
bool swim_name_is_valid(const char *name);

#endif
