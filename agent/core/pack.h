/*
 * pack.h - packs: which node runs which workload, and the state machine
 * that runs them through a hook. Sans I/O, like everything in agent/core.
 *
 * The desired packs live in the system tenant (tenant.h, TENANT_SYSTEM)
 * as "pack/NAME" -> an encoded pack.Spec (proto/pack.proto). The driver
 * feeds every change of such a field into pack_set_spec() / pack_del(),
 * and every view change into pack_update(), which places all packs on the
 * ring (ring_assign_fit(): memory is a hard capacity, zone and region
 * constraints, bounded loads) in one deterministic order, so that nodes
 * with the same view and the same desired packs agree on every owner.
 *
 * For the packs this node owns, the core asks the driver to run the hook
 * (`EXEC start|stop|check NAME`, pack_poll_hook()) and takes the outcome
 * (pack_hook_done()): start when a pack arrives, check periodically, stop
 * when it leaves, retry failed starts with exponential backoff. Without a
 * hook an owned pack is only "placed". What it does with each pack it
 * publishes as "run/NAME" -> {this node: an encoded pack.Run}, through
 * events the driver writes into the system tenant (pack_poll_event());
 * the run states others publish come back through pack_report(), so any
 * node can count what runs where. Moves that involve this node are events
 * too, for the history the driver keeps.
 *
 * Threading: none. One caller at a time.
 */
#ifndef PACK_H
#define PACK_H

#include "mesh_log.h"
#include "ring.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PACK_NAME_MAX 128   /* bytes of a pack name, at least 1 */
#define PACK_LABELS_MAX 32  /* labels of one pack */
#define PACK_LABEL_MAX 256  /* bytes of a label key or value */
#define PACK_DETAIL_MAX 256 /* bytes of Run.detail kept and published */
#define PACK_PACKS_MAX 1000000
#define PACK_SPEC_PREFIX "pack/" /* system tenant keys */
#define PACK_RUN_PREFIX "run/"

/** Run states, as in pack.proto's State. */
enum pack_state {
	PACK_NONE = 0,
	PACK_PLACED = 1,
	PACK_STARTING = 2,
	PACK_RUNNING = 3,
	PACK_FAILED = 4,
	PACK_STOPPING = 5,
};

/** A desired pack, decoded (pack_spec_decode). Strings are borrowed. */
struct pack_spec {
	const char *tenant;
	uint32_t mem_mib;
	unsigned replicas; /* 1..RING_REPLICAS_MAX */
	const char *zone;  /* "" : anywhere */
	const char *region;
	size_t nlabels;
	const char *label_key[PACK_LABELS_MAX];
	const char *label_value[PACK_LABELS_MAX];
	uint64_t created_unix_ms;
};

/** Tunables; pack_config_default() gives the reasons. */
struct pack_config {
	char name[RING_NAME_MAX + 1]; /* this node */
	bool hook;		      /* a hook runs packs; else "placed" */
	uint32_t check_ms;	      /* period of `check` on a running pack */
	uint32_t retry_min_ms;	      /* first retry of a failed start */
	uint32_t retry_max_ms;	      /* backoff cap */
	bool bounded;		      /* bounded loads (ring_assign_fit) */
	uint32_t eps_milli;	      /* their ε */
	int64_t wall_offset_ms;	      /* wall clock = now_ms + this */
};

/** A hook run the core wants. */
enum pack_action { PACK_START = 1, PACK_STOP = 2, PACK_CHECK = 3 };

struct pack_hook {
	uint64_t id; /* echo it to pack_hook_done() */
	enum pack_action action;
	const char *name; /* borrowed until the next call */
};

/** What the driver must write or record (pack_poll_event). */
enum pack_event_kind {
	PACK_EV_RUN = 1,   /* put run/NAME[self] := data (an encoded Run) */
	PACK_EV_UNRUN = 2, /* remove run/NAME[node] (ours, or a dead one's) */
	PACK_EV_SWEEP = 3, /* read run/NAME again and pack_report() it all */
	PACK_EV_MOVE = 4,  /* append data (an encoded Move) to the history */
};

struct pack_event {
	enum pack_event_kind kind;
	enum pack_state state; /* RUN: the state published */
	const char *name;      /* the pack */
	const char *node;      /* UNRUN: whose entry */
	const uint8_t *data;   /* RUN, MOVE; borrowed until the next call */
	size_t len;
};

/** Counts for status. */
struct pack_counts {
	size_t desired;	    /* packs known */
	size_t placed;	    /* with every replica placed */
	size_t short_owned; /* with some owners, fewer than asked */
	size_t unplaceable; /* with no owner at all */
	size_t running;	    /* whose primary owner reports running */
	size_t starting, failed, no_hook; /* likewise (no_hook: "placed") */
	size_t mine;			  /* owned here */
	uint64_t mem_mib_here;		  /* memory of the packs owned here */
	uint64_t moves;			  /* owner changes since start */
	uint64_t updates;		  /* placements computed */
	uint64_t hooks_run, hooks_failed;
};

/** One pack as this node sees it (pack_info). Borrowed. */
struct pack_info {
	const char *name;
	uint32_t mem_mib;
	unsigned replicas;
	const char *zone, *region;
	unsigned nowners;
	const char *owners[RING_REPLICAS_MAX]; /* primary first */
	enum ring_fit fit;		       /* why fewer owners */
	const char *why;		       /* for people; "" when placed */
	enum pack_state reported;	       /* the primary's report */
	/* Local state when owned here (or stopping here). */
	bool here;
	enum pack_state state;
	uint64_t since_unix_ms;
	int last_exit; /* -1: no hook run yet */
	unsigned attempts;
	const char *detail;
};

struct pack;

/** Fills @cfg with defaults; the name is left empty. */
void pack_config_default(struct pack_config *cfg);

/**
 * Creates the pack core. @cfg is copied, @env borrowed. Returns 0,
 * MESH_EINVAL (bad name or intervals) or MESH_ENOMEM.
 */
int pack_new(const struct pack_config *cfg, const struct mesh_env *env,
	     struct pack **out);

/** Frees @pk; NULL is fine. */
void pack_free(struct pack *pk);

/** True when @name is a valid pack name: 1..128 bytes, no NUL, no '/'... */
bool pack_name_ok(const char *name);

/**
 * Decodes and checks an encoded pack.Spec. @out's strings point into
 * *@buf, which the caller frees with pack_spec_release(). Returns 0,
 * MESH_EDECODE or MESH_EINVAL (with *@why).
 */
int pack_spec_decode(const uint8_t *data, size_t len, struct pack_spec *out,
		     void **buf, const char **why);
void pack_spec_release(void *buf);

/**
 * Encodes @spec into a fresh buffer (*@out, freed with free()). Returns 0,
 * MESH_EINVAL (with *@why: bad values) or MESH_ENOMEM.
 */
int pack_spec_encode(const struct pack_spec *spec, uint8_t **out, size_t *len,
		     const char **why);

/**
 * Sets the desired pack @name from its encoded spec (adds or replaces).
 * Takes effect at the next pack_update(). Returns 0, MESH_EINVAL,
 * MESH_EDECODE, MESH_ERANGE (PACK_PACKS_MAX) or MESH_ENOMEM.
 */
int pack_set_spec(struct pack *pk, const char *name, const uint8_t *data,
		  size_t len);

/**
 * This node's hook started @name in an earlier life of the agent and did
 * not stop it (the driver keeps that record: a kill -9 of the agent leaves
 * its packs running). At the next pack_update(), a pack this node does not
 * own is stopped; one it owns is taken as running and checked at once.
 * Returns 0, MESH_EINVAL or MESH_ENOMEM.
 */
int pack_adopt(struct pack *pk, uint64_t now_ms, const char *name);

/** Forgets the desired pack @name. 0 or MESH_ENOENT. */
int pack_del(struct pack *pk, const char *name);

/**
 * Places every pack on @ring (borrowed for the call; NULL: nothing can be
 * placed) and starts or stops the packs whose ownership here changed.
 * Returns 0 or MESH_ENOMEM (then nothing changed).
 */
int pack_update(struct pack *pk, uint64_t now_ms, const struct ring *ring);

/**
 * A run state published by @node for pack @name (an encoded Run). Counts
 * the primary owner's; when this node is the primary, entries of owners
 * that are down are cleared. @node NULL forgets what was reported for
 * @name (the driver does so before it reports the whole entry again).
 */
void pack_report(struct pack *pk, const char *name, const char *node,
		 const uint8_t *data, size_t len);

/** The result of hook run @id: its exit status (or -1: it could not run,
 * was killed or timed out) and the last lines of its output. */
void pack_hook_done(struct pack *pk, uint64_t now_ms, uint64_t id, int status,
		    const char *detail);

/** Runs timers: checks, retries. */
void pack_tick(struct pack *pk, uint64_t now_ms);

/** When pack_tick() is due next (UINT64_MAX: nothing scheduled). */
uint64_t pack_next_deadline(const struct pack *pk);

/** Next hook run to start; false when none. */
bool pack_poll_hook(struct pack *pk, struct pack_hook *out);

/** Next event to write or record; false when none. */
bool pack_poll_event(struct pack *pk, struct pack_event *out);

/** Counts for status. */
void pack_counts(const struct pack *pk, struct pack_counts *out);

/** Number of packs known; pack_info_at() walks them in placement order. */
size_t pack_count(const struct pack *pk);

/**
 * Fills @out for pack @name / the @i-th pack. Borrowed until the next call
 * that changes @pk. Returns 0 or MESH_ENOENT.
 */
int pack_info(struct pack *pk, const char *name, struct pack_info *out);
int pack_info_at(struct pack *pk, size_t i, struct pack_info *out);

/** The name of a state, e.g. "running". */
const char *pack_state_name(enum pack_state s);

#endif
