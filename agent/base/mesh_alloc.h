/*
 * mesh_alloc.h - the replaceable allocator.
 *
 * crdt/ and agent/core/ never call malloc() directly: they allocate through
 * a struct mesh_allocator handed to them, so the simulator and the tests can
 * count allocations per node and make the n-th one fail.
 */
#ifndef MESH_ALLOC_H
#define MESH_ALLOC_H

#include <stddef.h>

/** Allocation callbacks; semantics are those of malloc/realloc/free. */
struct mesh_allocator {
	void *(*alloc_fn)(void *ctx, size_t size);
	void *(*realloc_fn)(void *ctx, void *ptr, size_t size);
	void (*free_fn)(void *ctx, void *ptr);
	void *ctx;
};

/** The process allocator (malloc/realloc/free). Static storage; never NULL. */
const struct mesh_allocator *mesh_alloc_default(void);

/** Allocates @size bytes through @a; NULL when out of memory or @size is 0. */
void *mesh_malloc(const struct mesh_allocator *a, size_t size);

/**
 * Allocates @n * @size zeroed bytes through @a. NULL when out of memory or
 * when the product overflows.
 */
void *mesh_calloc(const struct mesh_allocator *a, size_t n, size_t size);

/** Resizes @ptr; on failure returns NULL and leaves @ptr untouched. */
void *mesh_realloc(const struct mesh_allocator *a, void *ptr, size_t size);

/** Frees @ptr (NULL is fine). */
void mesh_free(const struct mesh_allocator *a, void *ptr);

/**
 * Makes the array *@v (of *@cap elements of @size bytes) hold at least
 * @need, doubling its capacity (at least 4). Returns 0 or MESH_ENOMEM (then
 * *@v and *@cap are untouched).
 */
int mesh_grow(const struct mesh_allocator *a, void **v, size_t *cap,
	      size_t need, size_t size);

#endif
