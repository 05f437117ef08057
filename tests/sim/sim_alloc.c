/*
 * sim_alloc.c - slab arena with per-node counters (see sim_alloc.h).
 *
 * Freed slab blocks go back to their class's free list and are reused by
 * whichever node asks next; nothing is returned to the system before the
 * arena is destroyed. That is what the simulator wants: a crashed node's
 * memory serves the restarted one without new page faults.
 */
#include "sim_alloc.h"

#include "mesh_err.h"

#include <malloc.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define SIM_ALLOC_CHUNK_SHIFT 20
#define SIM_ALLOC_CHUNK ((size_t)1 << SIM_ALLOC_CHUNK_SHIFT)

int
sim_arena_init(struct sim_arena *a)
{
	memset(a, 0, sizeof(*a));
	/* 64 GiB of address space, halved until the kernel agrees. With
	 * MAP_NORESERVE nothing is committed before it is touched. */
	for (size_t want = (size_t)64 << 30; want >= SIM_ALLOC_CHUNK * 16;
	     want /= 2) {
		void *p =
		    mmap(NULL, want, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			continue;
		/* Chunks are aligned so a pointer finds its chunk by a shift.
		 */
		uintptr_t u = (uintptr_t)p;
		uintptr_t al = (u + SIM_ALLOC_CHUNK - 1) &
			       ~(uintptr_t)(SIM_ALLOC_CHUNK - 1);
		size_t usable =
		    (want - (size_t)(al - u)) & ~(SIM_ALLOC_CHUNK - 1);
		a->chunk_cls = calloc(usable >> SIM_ALLOC_CHUNK_SHIFT, 1);
		if (a->chunk_cls == NULL) {
			munmap(p, want);
			return MESH_ENOMEM;
		}
		a->map = p;
		a->map_len = want;
		a->base = (uint8_t *)al;
		a->reserve = usable;
		return 0;
	}
	return MESH_ENOMEM;
}

void
sim_arena_destroy(struct sim_arena *a)
{
	if (a->map != NULL)
		munmap(a->map, a->map_len);
	free(a->chunk_cls);
	memset(a, 0, sizeof(*a));
}

static bool
sim__in_arena(const struct sim_arena *a, const void *p)
{
	const uint8_t *b = p;
	return a->base != NULL && b >= a->base && b < a->base + a->reserve;
}

static size_t
sim__class_size(unsigned c)
{
	return (size_t)(c + 1) * SIM_ALLOC_GRAIN;
}

/* A block of class @c, or NULL when the reservation is used up. */
static void *
sim__slab_get(struct sim_arena *a, unsigned c)
{
	struct sim__slab_class *k = &a->cls[c];
	size_t sz = sim__class_size(c);
	if (k->free_list != NULL) {
		void *p = k->free_list;
		memcpy(&k->free_list, p, sizeof(void *));
		return p;
	}
	if (k->bump == NULL || (size_t)(k->end - k->bump) < sz) {
		if (a->carved + SIM_ALLOC_CHUNK > a->reserve)
			return NULL;
		uint8_t *chunk = a->base + a->carved;
		a->chunk_cls[a->carved >> SIM_ALLOC_CHUNK_SHIFT] =
		    (uint8_t)(c + 1);
		a->carved += SIM_ALLOC_CHUNK;
		k->bump = chunk;
		k->end = chunk + SIM_ALLOC_CHUNK;
	}
	void *p = k->bump;
	k->bump += sz;
	return p;
}

static size_t
sim__block_size(const struct sim_arena *a, void *p)
{
	if (sim__in_arena(a, p)) {
		size_t chunk =
		    (size_t)((uint8_t *)p - a->base) >> SIM_ALLOC_CHUNK_SHIFT;
		return sim__class_size(a->chunk_cls[chunk] - 1u);
	}
	return malloc_usable_size(p);
}

static void
sim__account(struct sim_alloc *na, size_t add, size_t sub)
{
	na->live_bytes = na->live_bytes + add - sub;
	if (na->live_bytes > na->peak_bytes)
		na->peak_bytes = na->live_bytes;
}

static bool
sim__should_fail(struct sim_alloc *na)
{
	return na->fail_at != 0 && na->allocs + 1 == na->fail_at;
}

static void *
sim__alloc(void *ctx, size_t size)
{
	struct sim_alloc *na = ctx;
	if (sim__should_fail(na)) {
		na->fail_at = 0;
		return NULL;
	}
	void *p = NULL;
	if (size <= SIM_ALLOC_SLAB_MAX)
		p = sim__slab_get(na->arena,
				  (unsigned)((size - 1) / SIM_ALLOC_GRAIN));
	if (p == NULL)
		p = malloc(size);
	if (p == NULL)
		return NULL;
	na->allocs++;
	sim__account(na, sim__block_size(na->arena, p), 0);
	return p;
}

static void
sim__free(void *ctx, void *p)
{
	struct sim_alloc *na = ctx;
	if (p == NULL)
		return;
	na->frees++;
	size_t sz = sim__block_size(na->arena, p);
	sim__account(na, 0, sz);
	struct sim_arena *a = na->arena;
	if (sim__in_arena(a, p)) {
		struct sim__slab_class *k = &a->cls[sz / SIM_ALLOC_GRAIN - 1];
		memcpy(p, &k->free_list, sizeof(void *));
		k->free_list = p;
		return;
	}
	free(p);
}

static void *
sim__realloc(void *ctx, void *p, size_t size)
{
	struct sim_alloc *na = ctx;
	if (p == NULL)
		return sim__alloc(ctx, size);
	size_t old = sim__block_size(na->arena, p);
	if (sim__in_arena(na->arena, p)) {
		if (size <= old)
			return p;
		void *q = sim__alloc(ctx, size);
		if (q == NULL)
			return NULL;
		memcpy(q, p, old);
		sim__free(ctx, p);
		return q;
	}
	if (sim__should_fail(na)) {
		na->fail_at = 0;
		return NULL;
	}
	void *q = realloc(p, size);
	if (q == NULL)
		return NULL;
	na->allocs++;
	sim__account(na, malloc_usable_size(q), old);
	return q;
}

void
sim_alloc_init(struct sim_alloc *na, struct sim_arena *a)
{
	memset(na, 0, sizeof(*na));
	na->base.alloc_fn = sim__alloc;
	na->base.realloc_fn = sim__realloc;
	na->base.free_fn = sim__free;
	na->base.ctx = na;
	na->arena = a;
}
