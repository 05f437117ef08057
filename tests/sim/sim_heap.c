/*
 * sim_heap.c - binary min-heap of simulator events (see sim_heap.h).
 */
#include "sim_heap.h"

#include "mesh_err.h"

#include <stdlib.h>

static bool
sim__before(const struct sim_event *a, const struct sim_event *b)
{
	return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

void
sim_heap_destroy(struct sim_heap *h)
{
	free(h->v);
	h->v = NULL;
	h->n = h->cap = 0;
}

int
sim_heap_push(struct sim_heap *h, struct sim_event *ev)
{
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 1024;
		struct sim_event *v = realloc(h->v, cap * sizeof(*v));
		if (v == NULL)
			return MESH_ENOMEM;
		h->v = v;
		h->cap = cap;
	}
	ev->seq = h->next_seq++;
	size_t i = h->n++;
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!sim__before(ev, &h->v[parent]))
			break;
		h->v[i] = h->v[parent];
		i = parent;
	}
	h->v[i] = *ev;
	if (h->n > h->peak)
		h->peak = h->n;
	return 0;
}

bool
sim_heap_pop(struct sim_heap *h, struct sim_event *out)
{
	if (h->n == 0)
		return false;
	*out = h->v[0];
	struct sim_event last = h->v[--h->n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && sim__before(&h->v[c + 1], &h->v[c]))
			c++;
		if (!sim__before(&h->v[c], &last))
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n > 0)
		h->v[i] = last;
	return true;
}

uint64_t
sim_heap_next_at(const struct sim_heap *h)
{
	return h->n ? h->v[0].at : UINT64_MAX;
}
