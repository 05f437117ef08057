/*
 * dissem.c - piggyback queue (SWIM section 4.1, memberlist's
 * TransmitLimitedQueue in spirit).
 *
 * Deviation from a priority queue sorted on every pack: transmit counts are
 * small integers, so a list per count gives "least-sent first" with O(1)
 * picks and moves. Within one count, older items go first (FIFO).
 */
#include "dissem.h"

#include "mesh_err.h"

#include <string.h>

/* Items that did not fit one datagram before dissem_pack() stops looking. */
#define DISSEM__MISSES_MAX 16

struct dissem_item {
	struct dissem_item *prev, *next;
	struct dissem_item **slot;
	uint32_t transmits;
	size_t len;
	uint8_t bytes[];
};

void
dissem_init(struct dissem *d, const struct mesh_env *env)
{
	memset(d, 0, sizeof(*d));
	d->env = env;
}

static void
dissem__unlink(struct dissem *d, struct dissem_item *it)
{
	uint32_t b = it->transmits;
	if (it->prev != NULL)
		it->prev->next = it->next;
	else
		d->head[b] = it->next;
	if (it->next != NULL)
		it->next->prev = it->prev;
	else
		d->tail[b] = it->prev;
	it->prev = it->next = NULL;
}

static void
dissem__append(struct dissem *d, struct dissem_item *it)
{
	uint32_t b = it->transmits;
	it->next = NULL;
	it->prev = d->tail[b];
	if (d->tail[b] != NULL)
		d->tail[b]->next = it;
	else
		d->head[b] = it;
	d->tail[b] = it;
}

static void
dissem__retire(struct dissem *d, struct dissem_item *it)
{
	dissem__unlink(d, it);
	if (it->slot != NULL)
		*it->slot = NULL;
	d->count--;
	mesh_free(d->env->alloc, it);
}

void
dissem_destroy(struct dissem *d)
{
	for (int b = 0; b < DISSEM_MAX_TRANSMITS; b++)
		while (d->head[b] != NULL)
			dissem__retire(d, d->head[b]);
}

int
dissem_push(struct dissem *d, struct dissem_item **slot, const uint8_t *bytes,
	    size_t len)
{
	struct dissem_item *it = mesh_malloc(d->env->alloc, sizeof(*it) + len);
	if (it == NULL)
		return MESH_ENOMEM;
	dissem_drop(d, slot);
	memset(it, 0, sizeof(*it));
	it->slot = slot;
	it->len = len;
	memcpy(it->bytes, bytes, len);
	dissem__append(d, it);
	d->count++;
	*slot = it;
	return 0;
}

void
dissem_drop(struct dissem *d, struct dissem_item **slot)
{
	if (*slot != NULL)
		dissem__retire(d, *slot);
}

size_t
dissem_field_size(uint32_t field, size_t len)
{
	size_t n = len + 2;
	for (uint64_t v = (uint64_t)field << 3; v >= 0x80; v >>= 7)
		n++;
	for (uint64_t v = len; v >= 0x80; v >>= 7)
		n++;
	return n;
}

static size_t
dissem__varint(uint64_t v, uint8_t *out)
{
	size_t n = 0;
	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

size_t
dissem_put_field(uint32_t field, const uint8_t *bytes, size_t len, uint8_t *buf)
{
	size_t n = dissem__varint((uint64_t)field << 3 | 2, buf);
	n += dissem__varint(len, buf + n);
	memcpy(buf + n, bytes, len);
	return n + len;
}

static size_t
dissem__put(uint32_t field, const struct dissem_item *it, uint8_t *buf)
{
	return dissem_put_field(field, it->bytes, it->len, buf);
}

size_t
dissem_pack(struct dissem *d, uint32_t field, uint32_t limit,
	    struct dissem_item *first, uint8_t *buf, size_t cap)
{
	/* A datagram of 1,359 bytes holds at most ~120 of the smallest
	 * updates; the picks are moved after packing, not while walking. */
	struct dissem_item *picked[256];
	size_t npicked = 0, used = 0;
	if (limit == 0)
		limit = 1;
	if (limit > DISSEM_MAX_TRANSMITS)
		limit = DISSEM_MAX_TRANSMITS;
	if (first != NULL) {
		size_t need = dissem_field_size(field, first->len);
		if (need <= cap) {
			used += dissem__put(field, first, buf);
			picked[npicked++] = first;
		}
	}
	/* Items too big for what is left are passed over, but only so many:
	 * in a full queue (a join storm queues one update per newcomer) a
	 * walk to the end of every bucket made packing O(queue) per
	 * datagram. */
	size_t misses = 0;
	for (uint32_t b = 0; b < DISSEM_MAX_TRANSMITS && npicked < 256 &&
			     misses < DISSEM__MISSES_MAX;
	     b++) {
		for (struct dissem_item *it = d->head[b];
		     it != NULL && npicked < 256 && misses < DISSEM__MISSES_MAX;
		     it = it->next) {
			if (it == first)
				continue;
			size_t need = dissem_field_size(field, it->len);
			if (used + need > cap) {
				misses++;
				continue;
			}
			used += dissem__put(field, it, buf + used);
			picked[npicked++] = it;
		}
	}
	for (size_t i = 0; i < npicked; i++) {
		struct dissem_item *it = picked[i];
		dissem__unlink(d, it);
		it->transmits++;
		if (it->transmits >= limit) {
			if (it->slot != NULL)
				*it->slot = NULL;
			d->count--;
			mesh_free(d->env->alloc, it);
			continue;
		}
		dissem__append(d, it);
	}
	return used;
}

size_t
dissem_count(const struct dissem *d)
{
	return d->count;
}
