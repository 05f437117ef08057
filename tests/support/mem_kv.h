/*
 * mem_kv.h - an in-memory struct tenant_kv for the simulator and the unit
 * tests: the same answers as the LMDB store (agent/store/store_kv.c), no
 * disk, and hooks to make commits fail.
 *
 * A skip list ordered like LMDB (memcmp, then the shorter key first): get,
 * insert and delete take O(log n) expected steps in any insertion order,
 * and scan walks the bottom level. Tower heights come from a PRNG inside the
 * map with a fixed seed, so a run is the same every time and draws nothing
 * from the caller's randomness. Every node is one allocation through the
 * injected allocator holding links, key and value.
 *
 * A commit first allocates a node for every put, then links and unlinks
 * without allocating, so an allocation failure leaves the map as it was and
 * returns MESH_ENOSPC (memory is this store's disk; tenant_kv.h gives
 * ENOSPC exactly that meaning: nothing applied, still readable).
 *
 * Inside a batch a commit applies at once, so reads see it, and appends to
 * an undo log: for each key it changed, the node it linked in and the node
 * it took out, which stays allocated until batch_end(). Dropping the batch
 * walks the log backwards, unlinking and freeing what was added and linking
 * back what was taken out, and restores the tower-height PRNG, so the map
 * is exactly as before, and that step allocates nothing, so it cannot fail.
 * The log's room is made before a commit applies anything, so a commit
 * that cannot allocate still changes nothing. The log keeps its capacity
 * from one batch to the next, so a steady load allocates only nodes.
 * Not thread-safe; "durable" means until mem_kv_destroy().
 */
#ifndef MEM_KV_H
#define MEM_KV_H

#include "mesh_alloc.h"
#include "tenant_kv.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* With one node in four promoted per level, 16 levels index 4^16 keys. */
#define MEM_KV_LEVELS 16

struct mem_kv__node;
struct mem_kv__undo;

struct mem_kv {
	const struct mesh_allocator *alloc; /* borrowed */
	struct mem_kv__node *head[MEM_KV_LEVELS];
	uint64_t rng; /* tower heights */
	size_t count; /* keys stored */
	/* The open batch. */
	bool in_batch;
	uint64_t batch_rng;	   /* @rng at batch_begin() */
	struct mem_kv__undo *undo; /* the batch's changes, oldest first */
	size_t undo_len;
	size_t undo_cap;
	/* Test hooks and counters; read and set them freely. */
	size_t bytes; /* sum of key and value bytes stored */
	/*
	 * Durable commits: commit() outside a batch and batch_end(true)
	 * that returned 0 (a batch counts once, however many commits).
	 */
	uint64_t commits;
	unsigned int fail_commits; /* > 0: the next commit fails (ENOSPC) */
	/* > 0: the next batch_end(true) fails (ENOSPC), dropping the batch */
	unsigned int fail_batch_ends;
};

/**
 * Sets up an empty map in caller storage @m. @a is borrowed and must outlive
 * the map; NULL means mesh_alloc_default(). Returns 0.
 */
int mem_kv_init(struct mem_kv *m, const struct mesh_allocator *a);

/**
 * Frees every key and value of @m, dropping an open batch first; @m can be
 * initialised again.
 */
void mem_kv_destroy(struct mem_kv *m);

/**
 * Fills *@out with functions backed by @m, which is borrowed and must
 * outlive every use of *@out. get() lends a pointer into the node, valid
 * until the next commit. commit() returns 0, MESH_EINVAL (an empty or
 * oversize key, or a NULL value with a length; nothing applied) or
 * MESH_ENOSPC (fail_commits was > 0, which it decrements, or an allocation
 * failed; nothing applied). batch_begin() returns 0 or MESH_ESTATE;
 * batch_end() returns 0, MESH_ESTATE, or MESH_ENOSPC when keeping and
 * fail_batch_ends was > 0, which it decrements (the batch is dropped).
 */
void mem_kv_bind(struct mem_kv *m, struct tenant_kv *out);

#endif
