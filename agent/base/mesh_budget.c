#include "mesh_budget.h"

#include <stdint.h>
#include <string.h>

/* Header in front of each block, keeping max_align_t alignment. */
union mesh__budget_hdr {
	size_t size;
	max_align_t align;
};

void
mesh_budget_init(struct mesh_budget *b, const struct mesh_allocator *a,
		 size_t limit)
{
	memset(b, 0, sizeof(*b));
	b->a = a;
	b->limit = limit;
}

void *
mesh_budget_alloc(void *budget, size_t size)
{
	struct mesh_budget *b = budget;
	if (size > b->limit - b->live ||
	    size > SIZE_MAX - sizeof(union mesh__budget_hdr)) {
		b->over = true;
		return NULL;
	}
	union mesh__budget_hdr *h = mesh_malloc(b->a, sizeof(*h) + size);
	if (h == NULL) {
		b->oom = true;
		return NULL;
	}
	h->size = size;
	b->live += size;
	return h + 1;
}

void
mesh_budget_free(void *budget, void *p)
{
	struct mesh_budget *b = budget;
	if (p == NULL)
		return;
	union mesh__budget_hdr *h = (union mesh__budget_hdr *)p - 1;
	b->live -= h->size;
	mesh_free(b->a, h);
}
