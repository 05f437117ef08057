/*
 * mesh_budget.h - an allocator with a byte budget, for parsers of hostile
 * input. protobuf-c takes mesh_budget_alloc() and mesh_budget_free() as
 * its allocator callbacks (allocator_data = the budget), so a message of
 * N bytes cannot make the parser allocate much more than the limit its
 * caller derived from N. Every block carries a small header with its size.
 */
#ifndef MESH_BUDGET_H
#define MESH_BUDGET_H

#include "mesh_alloc.h"

#include <stdbool.h>
#include <stddef.h>

struct mesh_budget {
	const struct mesh_allocator *a; /* borrowed */
	size_t live;			/* bytes handed out and not freed */
	size_t limit;
	bool over; /* an allocation was refused for the budget */
	bool oom;  /* an allocation failed in @a */
};

/** Sets up @b over @a with @limit bytes. */
void mesh_budget_init(struct mesh_budget *b, const struct mesh_allocator *a,
		      size_t limit);

/**
 * Allocates @size bytes from the budget @budget (a struct mesh_budget *);
 * NULL, with over or oom set, when the budget or @a refuses.
 */
void *mesh_budget_alloc(void *budget, size_t size);

/** Gives back a block of mesh_budget_alloc(); NULL is fine. */
void mesh_budget_free(void *budget, void *p);

#endif
