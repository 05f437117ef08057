/*
 * place.c - the ring follows the membership view.
 *
 * Every node rebuilds its ring from its own view after each membership
 * change; nodes with equal views build equal rings (ring.c guarantees the
 * same owners for the same members in any order), so no coordinator is
 * needed. Suspects stay eligible on purpose: Lifeguard refutes most false
 * suspicions within a second, and moving packs back and forth for them
 * would cost more than a short wait for the dead verdict.
 */
#include "place.h"

#include "mesh_err.h"

#include <stdlib.h>
#include <string.h>

struct place {
	const struct mesh_env *env;
	struct ring *ring;
	struct ring_place opt;
	uint64_t *packs;
	size_t npacks;
};

int
place_new(const struct mesh_env *env, unsigned replicas, struct place **out)
{
	if (replicas == 0 || replicas > RING_REPLICAS_MAX)
		return MESH_EINVAL;
	struct place *p = mesh_calloc(env->alloc, 1, sizeof(*p));
	if (p == NULL)
		return MESH_ENOMEM;
	p->env = env;
	p->opt.replicas = replicas;
	*out = p;
	return 0;
}

void
place_free(struct place *p)
{
	if (p == NULL)
		return;
	ring_free(p->ring);
	mesh_free(p->env->alloc, p->packs);
	mesh_free(p->env->alloc, p);
}

static int
place__cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int
place_set_packs(struct place *p, const uint64_t *ids, size_t n)
{
	if (n > PLACE_PACKS_MAX)
		return MESH_ERANGE;
	uint64_t *copy = NULL;
	if (n > 0) {
		copy = mesh_malloc(p->env->alloc, n * sizeof(*copy));
		if (copy == NULL)
			return MESH_ENOMEM;
		memcpy(copy, ids, n * sizeof(*copy));
		qsort(copy, n, sizeof(*copy), place__cmp_u64);
		for (size_t i = 1; i < n; i++)
			if (copy[i] == copy[i - 1]) {
				mesh_free(p->env->alloc, copy);
				return MESH_EEXIST;
			}
	}
	mesh_free(p->env->alloc, p->packs);
	p->packs = copy;
	p->npacks = n;
	return 0;
}

static const char *
place__tag(const struct swim_meta *m, const char *key)
{
	for (unsigned i = 0; i < m->kv_count; i++)
		if (strcmp(m->kv[i].key, key) == 0)
			return m->kv[i].value;
	return NULL;
}

bool
place_meta_is_draining(const struct swim_meta *meta)
{
	const char *v = place__tag(meta, PLACE_TAG_DRAIN);
	return v != NULL && strcmp(v, "1") == 0;
}

static uint32_t
place__weight(const struct swim_meta *m)
{
	const char *v = place__tag(m, PLACE_TAG_CAPACITY);
	if (v == NULL)
		return 0;
	char *end;
	unsigned long w = strtoul(v, &end, 10);
	/* A bad tag counts as the default rather than excluding a node. */
	return *v != 0 && *end == 0 && w >= 1 && w <= RING_WEIGHT_MAX
		   ? (uint32_t)w
		   : 0;
}

static void
place__log_moves(struct place *p, const struct ring *old,
		 const struct ring_move *mv, size_t n)
{
	/* A large mesh change can move many packs; the log names the first
	 * few and counts the rest. */
	size_t shown = n < 20 ? n : 20;
	if (n > shown)
		MESH_LOG(p->env, MESH_LOG_INFO,
			 "place: %zu moves (first %zu listed)", n, shown);
	for (size_t i = 0; i < shown; i++) {
		const struct ring_node_info *from =
		    mv[i].from == RING_NONE ? NULL : ring_node(old, mv[i].from);
		const struct ring_node_info *to =
		    mv[i].to == RING_NONE ? NULL : ring_node(p->ring, mv[i].to);
		MESH_LOG(
		    p->env, MESH_LOG_INFO, "place: pack %llu moves %s -> %s",
		    (unsigned long long)mv[i].pack,
		    from ? from->name : "(none)", to ? to->name : "(none)");
	}
}

int
place_update(struct place *p, const struct swim *s, size_t *moves)
{
	size_t n = swim_member_count(s);
	struct ring_member *rm =
	    mesh_calloc(p->env->alloc, n ? n : 1, sizeof(*rm));
	if (rm == NULL)
		return MESH_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct swim_member_info mi;
		swim_member_at(s, i, &mi);
		rm[i].name = mi.name;
		rm[i].zone = mi.meta->zone;
		rm[i].region = mi.meta->region;
		rm[i].cell = mi.meta->cell;
		rm[i].weight = place__weight(mi.meta);
		rm[i].alive =
		    mi.state == SWIM_ALIVE || mi.state == SWIM_SUSPECT;
		rm[i].draining = place_meta_is_draining(mi.meta);
	}
	struct ring *fresh;
	int rc = ring_new(p->env, NULL, rm, n, &fresh);
	mesh_free(p->env->alloc, rm);
	if (rc != 0)
		return rc;
	struct ring *old = p->ring;
	p->ring = fresh;
	if (moves != NULL)
		*moves = 0;
	if (old == NULL || p->npacks == 0 ||
	    ring_digest(old) == ring_digest(fresh)) {
		ring_free(old);
		return 0;
	}
	size_t cap = RING_MOVES_MAX(p->npacks, p->opt.replicas), count = 0;
	struct ring_move *mv = mesh_malloc(p->env->alloc, cap * sizeof(*mv));
	rc = mv == NULL ? MESH_ENOMEM
			: ring_moves(old, fresh, p->packs, p->npacks, &p->opt,
				     mv, cap, &count);
	if (rc == 0) {
		place__log_moves(p, old, mv, count);
		if (moves != NULL)
			*moves = count;
	}
	mesh_free(p->env->alloc, mv);
	ring_free(old);
	return rc;
}

const struct ring *
place_ring(const struct place *p)
{
	return p->ring;
}

unsigned
place_replicas(const struct place *p)
{
	return p->opt.replicas;
}

size_t
place_pack_count(const struct place *p)
{
	return p->npacks;
}

int
place_owned(const struct place *p, const char *name, uint64_t *out,
	    size_t *count)
{
	*count = 0;
	if (p->ring == NULL)
		return MESH_ESTATE;
	int idx = ring_find(p->ring, name);
	if (idx < 0)
		return idx;
	if (p->npacks == 0)
		return 0;
	return ring_owned(p->ring, (uint32_t)idx, p->packs, p->npacks, &p->opt,
			  out, count);
}
