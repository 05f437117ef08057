/*
 * swim_impl.h - internals of the membership core, shared by its files and
 * by unit tests that look inside. Not a public API.
 */
#ifndef SWIM_IMPL_H
#define SWIM_IMPL_H

#include "dissem.h"
#include "mesh_rand.h"
#include "swim.h"

/* Outputs a call can queue before the driver drains them: a tick sends at
 * most a ping, 3 ping-reqs, 3 gossip datagrams, relay nacks and a stream. */
#define SWIM_OUTBOX 32
/* Events wait in an array that grows while the driver is away (a
 * push-pull can add thousands of members in one call) up to this many,
 * and is given back once drained if it grew past SWIM_EVENTS_KEEP. */
#define SWIM_EVENTS_MAX (1u << 20)
#define SWIM_EVENTS_KEEP 64
#define SWIM_NOT_GONE UINT32_MAX
/* Ping-reqs we relay at once; more are refused and counted. */
#define SWIM_RELAYS 32
#define SWIM_MAX_SEEDS 64
/* Accusers remembered per suspicion (Lifeguard's k is at most this). */
#define SWIM_MAX_ACCUSERS 9
/* Rounds through the seeds at the join timeout before the wait doubles. */
#define SWIM_JOIN_QUICK_ROUNDS 5
/* On a lossy network a last call is taken to fail at least this often
 * (8 calls, then, for p < 1e-4 that all fail by chance). */
#define SWIM_LOSSY_FLOOR 0.3
/* Late share above which a network is lossy: two late answers among
 * the last ~16, not one (a single late answer lifts the share to 1/16;
 * jitter does that now and then). At 10% loss the share is about 0.19. */
#define SWIM_LOSSY_SHARE 0.1
/* A network is clean after this many answered probes in a row came in
 * time: at 10% loss each way (19% of round trips late) that happens by
 * chance with p = 0.1%, where a moving average over 16 probes still read
 * 5% or less for one node in twenty (and that node, taking its network for
 * clean, declared a live node dead after a healed partition). A fresh
 * node is not clean either. Only on a clean network does a confirmed
 * suspicion go without last calls. */
#define SWIM_CLEAN_RUN 32
/* The most last calls loss can ask for. */
#define SWIM_LAST_CALLS_MAX 16
/* Least time between two push-pulls opened because a Sync differed. */
#define SWIM_SYNC_STREAM_GAP_MS 1000
/* Bump arena for decoding one datagram without touching the heap. */
#define SWIM_ARENA_BYTES 8192

/* Only suspects carry one: most members never do, and the simulator keeps
 * N views of N members each. */
struct swim__suspicion {
	uint64_t start_ms;
	uint64_t min_ms, max_ms;
	size_t list_idx; /* position in swim.suspects */
	uint32_t k;	 /* confirmations that reach min */
	uint32_t confirmations;
	uint32_t naccusers;
	uint64_t accusers[SWIM_MAX_ACCUSERS]; /* name hashes */
	/* Last calls: pings we sent the suspect ourselves at expiry, and
	 * when the next may go (one probe timeout after the previous). */
	uint32_t last_calls;
	uint64_t next_call_ms;
};

/* One allocation per member, name included: about 200 bytes, half of it
 * the member's signed record (key and signature). */
struct swim_member {
	struct swim_member *hash_next;
	uint64_t name_hash;
	struct swim__suspicion *susp; /* non-NULL exactly when suspect */
	struct dissem_item *bcast;
	struct swim_meta *meta; /* NULL when empty */
	uint64_t meta_hash;
	uint64_t state_ms;
	uint64_t incarnation; /* the newest one we hold signed */
	struct swim_addr addr;
	uint32_t idx; /* position in swim.members */
	/* The member's key and its signature of the record we hold: of its
	 * alive record, or of its leave once it left. Passed on unchanged. */
	uint8_t key[SWIM_KEY_BYTES];
	uint8_t sig[SWIM_SIG_BYTES];
	uint64_t digest_h; /* its share of swim.digest */
	uint32_t gone_idx; /* position in swim.gone, or SWIM_NOT_GONE */
	uint8_t state;	   /* enum swim_state */
	/* Another node's view says it is dead at the incarnation we see
	 * alive: probe it next; our own failed probe then confirms it. */
	uint8_t hearsay_dead;
	char name[];
};

enum swim__probe_phase {
	SWIM_PROBE_IDLE = 0,
	SWIM_PROBE_DIRECT,
	SWIM_PROBE_INDIRECT,
};

struct swim__relay {
	bool used;
	bool nacked;
	uint32_t seq;	     /* our ping to the target */
	uint32_t origin_seq; /* the requester's probe */
	struct swim_addr origin;
	uint64_t sent_ms; /* our ping left: a round-trip sample */
	uint64_t nack_at;
	uint64_t expire_at;
};

struct swim__out {
	enum swim_out_kind kind;
	struct swim_addr to;
	uint8_t *data;
	size_t len;
};

struct swim {
	struct swim_config cfg;
	const struct mesh_env *env;
	struct mesh_rand rng;
	struct swim_stats stats;

	struct swim_member *self;
	struct swim_member **members; /* self first */
	size_t nmembers, members_cap;
	struct swim_member **buckets;
	size_t nbuckets;  /* power of two */
	size_t counts[4]; /* by state, self included */
	struct swim_member **suspects;
	size_t nsuspects, suspects_cap;
	struct swim_member **gone; /* dead or left */
	size_t ngone, gone_cap;
	uint64_t digest; /* sum of the members' digest_h */

	struct swim_member **probe_list; /* everyone but self, shuffled */
	size_t probe_len, probe_cap, probe_pos;

	struct dissem dissem;

	/* The probe in flight. */
	enum swim__probe_phase phase;
	struct swim_member *target;
	uint32_t seq;
	uint32_t probe_seq;
	uint64_t probe_inc; /* the target's incarnation when probed */
	uint64_t probe_timeout_at, period_end;
	uint32_t expected_nacks, nacks;
	uint64_t next_probe_ms;
	unsigned health;
	/* The second direct ping of the probe in flight (0: none), and when
	 * each ping left, for round-trip samples. */
	uint32_t retry_seq;
	uint64_t probe_sent_ms, retry_sent_ms;
	/* Round-trip estimate (RFC 6298) in ms, scaled as in TCP: srtt8 is
	 * 8 SRTT, rttvar4 is 4 RTTVAR; no sample yet while srtt8 == 0. */
	uint32_t srtt8, rttvar4;
	/* Exponentially weighted share (1/16 per sample) of answered probes
	 * whose answer missed the direct timeout: ~0 on a clean network,
	 * about 1 - (1 - loss)^2 over the answered ones on a lossy one. */
	double late_share;
	uint32_t late_samples;
	uint32_t in_time_run;	/* answered probes in time since a late one */
	uint32_t since_refuted; /* answered probes since a suspect was
				   refuted (SWIM_CLEAN_RUN at start) */

	struct swim__relay relays[SWIM_RELAYS];

	uint64_t next_gossip_ms;
	uint64_t next_push_pull_ms;
	/* A Sync that differs from our view opens a push-pull no sooner than
	 * this: a datagram must not buy a full view exchange each time. */
	uint64_t next_sync_stream_ms;
	uint64_t next_reconnect_ms;

	bool leaving;
	bool joined;
	/* The datagram being handled accused us (we refuted or retold). */
	bool self_accused;
	uint32_t app_digest; /* swim_set_app_digest(); 0: none */
	struct swim_addr seeds[SWIM_MAX_SEEDS];
	size_t nseeds, join_idx;
	uint64_t next_join_ms;
	uint32_t join_backoff_ms;
	uint32_t join_rounds;

	struct swim__out outbox[SWIM_OUTBOX];
	size_t out_head, out_count;
	uint8_t *dgram_mem;		    /* SWIM_OUTBOX * datagram_max */
	uint8_t *borrowed[SWIM_OUTBOX + 1]; /* heap buffers handed out */
	size_t nborrowed;

	struct swim_event *events; /* [ev_head, ev_len) wait */
	size_t ev_head, ev_len, ev_cap;

	uint8_t arena[SWIM_ARENA_BYTES];
	size_t arena_used;
};

/** Checks metadata limits; @why gets a static reason. */
int swim__meta_check(const struct swim_meta *m, const char **why);

/** How much this node stretches suspicion timeouts now: 1 on a clean
 * network at full health, more with late answers and a worse score. */
double swim__suspicion_stretch(const struct swim *s);

/** Current suspicion timeout of @m (ms after its start), stretched. */
uint64_t swim__suspicion_timeout(const struct swim *s,
				 const struct swim_member *m);

/** Order-free digest of the whole view (push-pull). */
uint64_t swim__digest(const struct swim *s);

/** True once SWIM_CLEAN_RUN answered probes in a row came in time: a
 * failed probe is then strong evidence. */
bool swim__network_clean(const struct swim *s);

/** True when more than SWIM_LOSSY_SHARE of recent answers came late, or a
 * suspect was refuted within the last SWIM_CLEAN_RUN answered probes:
 * evidence that packets get lost here (one late answer is jitter, not
 * loss). A fresh node is neither clean nor lossy. */
bool swim__network_lossy(const struct swim *s);

/** Current probe timeout: the round-trip estimate within its bounds. */
uint32_t swim__rto(const struct swim *s);

/** Retransmit limit for the current cluster size. */
uint32_t swim__retransmit_limit(const struct swim *s);

#endif
