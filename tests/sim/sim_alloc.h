/*
 * sim_alloc.h - the simulator's allocator: size-class slabs carved from one
 * large reserved mapping, with counters per node.
 *
 * At N = 10,000 the simulator holds 10^8 member records of ~94 bytes. glibc
 * malloc rounds each to a 112-byte chunk (8-byte header, 16-byte steps);
 * slabs without headers hold them in 96 bytes, which is 1.6 GB less at
 * that size. Every node gets its own struct sim_alloc (the allocator its
 * struct mesh_env hands to the core), so live bytes and allocation counts
 * are known per node, and the n-th allocation of a node can be made to fail.
 *
 * Small blocks (up to SIM_ALLOC_SLAB_MAX bytes) come from the shared arena:
 * 1 MiB chunks, each serving one size class, and a free list per class.
 * Larger blocks go to malloc(). free() tells the two apart by address: the
 * arena is one contiguous reservation, so no header is needed.
 *
 * Single-threaded, like the rest of the simulator.
 */
#ifndef SIM_ALLOC_H
#define SIM_ALLOC_H

#include "mesh_alloc.h"

#include <stddef.h>
#include <stdint.h>

#define SIM_ALLOC_GRAIN 16
#define SIM_ALLOC_SLAB_MAX 512
#define SIM_ALLOC_CLASSES (SIM_ALLOC_SLAB_MAX / SIM_ALLOC_GRAIN)

struct sim__slab_class {
	void *free_list;
	uint8_t *bump, *end;
};

/** The shared arena. Create with sim_arena_init, release with
 * sim_arena_destroy; every node allocator using it must be done first. */
struct sim_arena {
	void *map; /* the mapping, for munmap */
	size_t map_len;
	uint8_t *base;	    /* first chunk-aligned address in it */
	size_t reserve;	    /* bytes usable from base */
	size_t carved;	    /* bytes handed to chunks so far */
	uint8_t *chunk_cls; /* per chunk: class + 1, 0 when not carved */
	struct sim__slab_class cls[SIM_ALLOC_CLASSES];
};

/** One node's view of the arena, with its counters. */
struct sim_alloc {
	struct mesh_allocator base; /* hand &base to the node's mesh_env */
	struct sim_arena *arena;
	uint64_t allocs;     /* successful alloc/realloc calls */
	uint64_t frees;	     /* free calls with a non-NULL pointer */
	uint64_t live_bytes; /* bytes held, slab class or usable size */
	uint64_t peak_bytes;
	uint64_t fail_at; /* 1-based allocation to fail; 0 = never */
};

/**
 * Reserves address space for the arena (no memory is committed until it
 * is touched). Returns 0 or MESH_ENOMEM when not even a small reservation
 * is possible; blocks then still work through malloc().
 */
int sim_arena_init(struct sim_arena *a);

/** Unmaps the arena; every block carved from it becomes invalid. */
void sim_arena_destroy(struct sim_arena *a);

/** Sets up @na as an allocator drawing on @a (borrowed). */
void sim_alloc_init(struct sim_alloc *na, struct sim_arena *a);

#endif
