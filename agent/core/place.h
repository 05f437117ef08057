/*
 * place.h - placement that follows membership: turns the swim's view into
 * a ring (agent/core/ring.h) whenever the view changes, and answers which
 * node owns which pack. Sans I/O, like everything in agent/core.
 *
 * From the view: a member is eligible when alive or suspect (a suspicion
 * alone does not move packs: it may be refuted in a second) and not damped
 * (below); the tag "capacity" (1..10000, default 100) is its weight; the
 * tag "drain" = "1" makes it draining: it gets nothing new and its packs
 * move away.
 *
 * A member that keeps leaving and coming back is damped (route-flap
 * damping, RFC 2439): each departure from alive raises its score, the score
 * halves every half-life, and while it is above the suppress threshold the
 * member is kept out of the ring even when alive, until the score has
 * decayed below the reuse threshold. See place.c for the numbers.
 *
 * Pack ids are unsigned 64-bit numbers; the set of packs is given by the
 * driver (meshd --packs FILE) until desired state is replicated.
 */
#ifndef PLACE_H
#define PLACE_H

#include "ring.h"
#include "swim.h"

#define PLACE_TAG_DRAIN "drain"
#define PLACE_TAG_CAPACITY "capacity"
#define PLACE_TAG_MEM                                                          \
	"mem" /* MiB for packs (ring_member.mem); none: no limit */
#define PLACE_PACKS_MAX 1000000

struct place;

/**
 * Flap damping tunables; place_flap_default() gives the defaults, whose
 * reasons are in place.c. Scores are in the same unit as @penalty.
 */
struct place_flap {
	uint32_t penalty;      /* added on each departure from alive, > 0 */
	uint32_t suppress;     /* score at which a member is damped */
	uint32_t reuse;	       /* score below which it is readmitted, > 0 */
	uint32_t max_score;    /* cap, >= suppress: bounds the damped time */
	uint32_t half_life_ms; /* score halves in this time; 0: damping off */
};

/**
 * Creates an empty placement that gives every pack @replicas owners
 * (1..RING_REPLICAS_MAX), with flap damping as place_flap_default().
 * @env is borrowed. Returns 0, MESH_EINVAL or MESH_ENOMEM.
 */
int place_new(const struct mesh_env *env, unsigned replicas,
	      struct place **out);

/** Frees @p; NULL is fine. */
void place_free(struct place *p);

/**
 * Sets the packs to place (copied). Returns 0, MESH_ERANGE (more than
 * PLACE_PACKS_MAX), MESH_EEXIST (an id twice) or MESH_ENOMEM.
 */
int place_set_packs(struct place *p, const uint64_t *ids, size_t n);

/** Fills @cfg with the default flap damping. Never fails. */
void place_flap_default(struct place_flap *cfg);

/**
 * Sets flap damping (@cfg copied); it takes effect at the next
 * place_update(). Scores already kept stay, except that turning damping off
 * forgets them all (turning it on again starts from no history).
 * Returns 0 or MESH_EINVAL (@cfg NULL, or with half_life_ms > 0: penalty or
 * reuse 0, reuse >= suppress or suppress > max_score); on error nothing
 * changes.
 */
int place_set_flap(struct place *p, const struct place_flap *cfg);

/**
 * Rebuilds the ring from @s's current view at @now_ms (monotonic; a time
 * before an earlier call counts as no time passed). A member that went
 * down (dead or left; a suspicion is not enough) since the previous call
 * gets a flap penalty; a damped member is in the ring but not eligible.
 * When packs
 * change owners, logs each move and sets *@moves (may be NULL) to their
 * number. Call it again at place_next_deadline() to readmit damped
 * members. Returns 0, MESH_ENOMEM or the errors of ring_new(): then the
 * ring and the flap scores are unchanged; or the errors of ring_moves():
 * then the new ring and scores are in place and only the moves are lost.
 */
int place_update(struct place *p, const struct swim *s, uint64_t now_ms,
		 size_t *moves);

/**
 * The flap score of @name decayed to @now_ms, rounded (0 when it was never
 * seen flapping, is the self member or damping is off) into *@score, and
 * into *@damped whether the last place_update() damped it. Either output
 * may be NULL.
 */
void place_flap_info(const struct place *p, const char *name, uint64_t now_ms,
		     uint32_t *score, bool *damped);

/**
 * When the first damped member's score falls below reuse, so that a
 * place_update() then readmits it; UINT64_MAX when none is damped.
 */
uint64_t place_next_deadline(const struct place *p);

/** A damping decision of ours, for the driver to tell the mesh. */
struct place_damp {
	const char *name;  /* borrowed until the next call */
	uint64_t until_ms; /* monotonic, this node's clock */
};

/**
 * Damping is shared: a member is out of the ring while any node's decision
 * about it holds, the member itself included (it cannot score itself), so
 * that every node builds the same ring once decisions have spread. Our own
 * decisions come out here after place_update(); the driver publishes them
 * (meshd: the system tenant) and feeds every node's to place_damp_until()
 * (in its own monotonic clock), then calls place_update() again. Returns
 * true and fills @out while there are some.
 */
bool place_poll_damp(struct place *p, struct place_damp *out);

/**
 * Some node damps @name until @until_ms (monotonic), as heard at @now_ms.
 * The latest of all decisions counts, but none beyond now plus the longest
 * damping our own config allows. Ignored while damping is off here.
 * Returns 0, MESH_EINVAL (bad name) or MESH_ENOMEM.
 */
int place_damp_until(struct place *p, const char *name, uint64_t until_ms,
		     uint64_t now_ms);

/** Number of members of the view damped at the last place_update(). */
size_t place_damped_count(const struct place *p);

/** The current ring, or NULL before the first place_update(). */
const struct ring *place_ring(const struct place *p);

/** Replicas per pack. */
unsigned place_replicas(const struct place *p);

/**
 * Writes the packs node @name owns into @out (caller storage for every
 * pack: place_pack_count()), *@count their number.
 * Returns 0, MESH_ENOENT (not in the ring), MESH_ESTATE (no ring yet).
 */
int place_owned(const struct place *p, const char *name, uint64_t *out,
		size_t *count);

/** Number of packs set. */
size_t place_pack_count(const struct place *p);

/** True when @meta carries drain=1. */
bool place_meta_is_draining(const struct swim_meta *meta);

#endif
