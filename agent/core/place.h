/*
 * place.h - placement that follows membership: turns the swim's view into
 * a ring (agent/core/ring.h) whenever the view changes, and answers which
 * node owns which pack. Sans I/O, like everything in agent/core.
 *
 * From the view: a member is eligible when alive or suspect (a suspicion
 * alone does not move packs: it may be refuted in a second); the tag
 * "capacity" (1..10000, default 100) is its weight; the tag "drain" = "1"
 * makes it draining: it gets nothing new and its packs move away.
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
#define PLACE_PACKS_MAX 1000000

struct place;

/**
 * Creates an empty placement that gives every pack @replicas owners
 * (1..RING_REPLICAS_MAX). @env is borrowed. Returns 0, MESH_EINVAL or
 * MESH_ENOMEM.
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

/**
 * Rebuilds the ring from @s's current view. When packs change owners, logs
 * each move and sets *@moves (may be NULL) to their number.
 * Returns 0 or the errors of ring_new() / ring_moves().
 */
int place_update(struct place *p, const struct swim *s, size_t *moves);

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
