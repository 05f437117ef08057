/*
 * crdt_counter.c - G-counter and PN-counter.
 *
 * One sorted table of (replica, p, n); join is the entry-wise maximum. A
 * G-counter is the same table with n always 0. The increment path looks its
 * replica up by binary search and touches one entry in the state and one in
 * the delta: no allocation once the replica has an entry in both, which is
 * what a steady-state writer sees (it reuses one cleared delta object).
 */
#include "crdt_impl.h"

#include "mesh_err.h"

#include <string.h>

static void
crdt__pn_init(struct crdt__pn *t, const struct mesh_allocator *a)
{
	memset(t, 0, sizeof(*t));
	t->a = a;
}

void
crdt__pn_destroy(struct crdt__pn *t)
{
	mesh_free(t->a, t->v);
	t->v = NULL;
	t->n = t->cap = 0;
}

static size_t
crdt__pn_lower(const struct crdt__pn *t, uint64_t replica)
{
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->v[mid].replica < replica)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The entry of @replica, inserted zeroed when missing; NULL on OOM. */
static struct crdt__pn_entry *
crdt__pn_slot(struct crdt__pn *t, uint64_t replica)
{
	size_t i = crdt__pn_lower(t, replica);
	if (i < t->n && t->v[i].replica == replica)
		return &t->v[i];
	if (mesh_grow(t->a, (void **)&t->v, &t->cap, t->n + 1, sizeof(*t->v)) !=
	    0)
		return NULL;
	memmove(&t->v[i + 1], &t->v[i], (t->n - i) * sizeof(*t->v));
	t->v[i] = (struct crdt__pn_entry){replica, 0, 0};
	t->n++;
	return &t->v[i];
}

static bool
crdt__pn_has(const struct crdt__pn *t, uint64_t replica)
{
	size_t i = crdt__pn_lower(t, replica);
	return i < t->n && t->v[i].replica == replica;
}

/* Adds (dp, dn) to @replica's entry in @t and joins the new entry into
 * @delta. Checks everything that can fail before changing anything. */
static int
crdt__pn_add(struct crdt__pn *t, uint64_t replica, uint64_t dp, uint64_t dn,
	     struct crdt__pn *delta)
{
	size_t i = crdt__pn_lower(t, replica);
	struct crdt__pn_entry *e = NULL;
	if (i < t->n && t->v[i].replica == replica)
		e = &t->v[i];
	uint64_t p = e ? e->p : 0, n = e ? e->n : 0;
	if (dp > UINT64_MAX - p || dn > UINT64_MAX - n)
		return MESH_ERANGE;
	if (dp == 0 && dn == 0)
		return 0;
	if (delta != NULL && !crdt__pn_has(delta, replica) &&
	    mesh_grow(delta->a, (void **)&delta->v, &delta->cap, delta->n + 1,
		      sizeof(*delta->v)) != 0)
		return MESH_ENOMEM;
	if (e == NULL && (e = crdt__pn_slot(t, replica)) == NULL)
		return MESH_ENOMEM;
	e->p = p + dp;
	e->n = n + dn;
	if (delta != NULL) {
		/* Cannot fail: room was reserved above. */
		struct crdt__pn_entry *d = crdt__pn_slot(delta, replica);
		if (e->p > d->p)
			d->p = e->p;
		if (e->n > d->n)
			d->n = e->n;
	}
	return 0;
}

static int
crdt__pn_join(struct crdt__pn *dst, const struct crdt__pn *src)
{
	/* Count the new replicas first so that one allocation suffices and a
	 * failure leaves @dst as it was. */
	size_t extra = 0, i = 0, j = 0;
	while (j < src->n) {
		if (i < dst->n && dst->v[i].replica < src->v[j].replica)
			i++;
		else if (i < dst->n && dst->v[i].replica == src->v[j].replica)
			i++, j++;
		else
			extra++, j++;
	}
	if (extra == 0) {
		for (i = 0, j = 0; j < src->n; j++) {
			while (dst->v[i].replica < src->v[j].replica)
				i++;
			if (src->v[j].p > dst->v[i].p)
				dst->v[i].p = src->v[j].p;
			if (src->v[j].n > dst->v[i].n)
				dst->v[i].n = src->v[j].n;
		}
		return 0;
	}
	if (mesh_grow(dst->a, (void **)&dst->v, &dst->cap, dst->n + extra,
		      sizeof(*dst->v)) != 0)
		return MESH_ENOMEM;
	/* Merge from the back, in place. */
	size_t k = dst->n + extra;
	i = dst->n;
	j = src->n;
	while (j > 0) {
		const struct crdt__pn_entry *s = &src->v[j - 1];
		if (i > 0 && dst->v[i - 1].replica > s->replica) {
			dst->v[--k] = dst->v[--i];
		} else if (i > 0 && dst->v[i - 1].replica == s->replica) {
			struct crdt__pn_entry e = dst->v[--i];
			if (s->p > e.p)
				e.p = s->p;
			if (s->n > e.n)
				e.n = s->n;
			dst->v[--k] = e;
			j--;
		} else {
			dst->v[--k] = *s;
			j--;
		}
	}
	dst->n += extra;
	return 0;
}

static bool
crdt__pn_equal(const struct crdt__pn *a, const struct crdt__pn *b)
{
	return a->n == b->n &&
	       (a->n == 0 || memcmp(a->v, b->v, a->n * sizeof(*a->v)) == 0);
}

/* ------------------------------------------------------------------------ */

struct crdt_gcounter *
crdt_gcounter_new(const struct mesh_allocator *a)
{
	struct crdt_gcounter *c = mesh_malloc(a, sizeof(*c));
	if (c != NULL)
		crdt__pn_init(&c->t, a);
	return c;
}

void
crdt_gcounter_free(struct crdt_gcounter *c)
{
	if (c == NULL)
		return;
	crdt__pn_destroy(&c->t);
	mesh_free(c->t.a, c);
}

void
crdt_gcounter_clear(struct crdt_gcounter *c)
{
	c->t.n = 0;
}

int
crdt_gcounter_inc(struct crdt_gcounter *c, uint64_t replica, uint64_t n,
		  struct crdt_gcounter *delta)
{
	return crdt__pn_add(&c->t, replica, n, 0,
			    delta != NULL ? &delta->t : NULL);
}

uint64_t
crdt_gcounter_value(const struct crdt_gcounter *c)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < c->t.n; i++)
		sum += c->t.v[i].p;
	return sum;
}

int
crdt_gcounter_join(struct crdt_gcounter *dst, const struct crdt_gcounter *src)
{
	return crdt__pn_join(&dst->t, &src->t);
}

bool
crdt_gcounter_equal(const struct crdt_gcounter *a,
		    const struct crdt_gcounter *b)
{
	return crdt__pn_equal(&a->t, &b->t);
}

size_t
crdt_gcounter_size(const struct crdt_gcounter *c)
{
	return sizeof(*c) + c->t.cap * sizeof(*c->t.v);
}

struct crdt_pncounter *
crdt_pncounter_new(const struct mesh_allocator *a)
{
	struct crdt_pncounter *c = mesh_malloc(a, sizeof(*c));
	if (c != NULL)
		crdt__pn_init(&c->t, a);
	return c;
}

void
crdt_pncounter_free(struct crdt_pncounter *c)
{
	if (c == NULL)
		return;
	crdt__pn_destroy(&c->t);
	mesh_free(c->t.a, c);
}

void
crdt_pncounter_clear(struct crdt_pncounter *c)
{
	c->t.n = 0;
}

int
crdt_pncounter_add(struct crdt_pncounter *c, uint64_t replica, int64_t n,
		   struct crdt_pncounter *delta)
{
	/* -(uint64_t)n is the magnitude of a negative n, INT64_MIN included. */
	uint64_t dp = n >= 0 ? (uint64_t)n : 0;
	uint64_t dn = n < 0 ? -(uint64_t)n : 0;
	return crdt__pn_add(&c->t, replica, dp, dn,
			    delta != NULL ? &delta->t : NULL);
}

int64_t
crdt_pncounter_value(const struct crdt_pncounter *c)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < c->t.n; i++)
		sum += c->t.v[i].p - c->t.v[i].n;
	/* Two's complement view of the wrapped sum, without UB. */
	return sum <= INT64_MAX ? (int64_t)sum
				: -(int64_t)(UINT64_MAX - sum) - 1;
}

int
crdt_pncounter_join(struct crdt_pncounter *dst,
		    const struct crdt_pncounter *src)
{
	return crdt__pn_join(&dst->t, &src->t);
}

bool
crdt_pncounter_equal(const struct crdt_pncounter *a,
		     const struct crdt_pncounter *b)
{
	return crdt__pn_equal(&a->t, &b->t);
}

size_t
crdt_pncounter_size(const struct crdt_pncounter *c)
{
	return sizeof(*c) + c->t.cap * sizeof(*c->t.v);
}
