/*
 * crdt_reg.c - registers: LWW ordered by HLC stamps, and the multi-value
 * register, which is a dot -> value store ("dvs") plus a causal context.
 *
 * The dvs is also what an OR-map uses for counter, LWW and MV fields, so its
 * join and mutation take the contexts as separate arguments.
 *
 * Mutations are split in two: a reserve step that does every allocation
 * and can fail without changing the meaning of anything, and a commit step
 * that cannot fail. A mutator reserves in the state and in the delta, then
 * commits both, so "on error nothing changes" holds for the pair.
 */
#include "crdt_impl.h"

#include "mesh_err.h"

#include <string.h>

void
crdt__dvs_destroy(const struct mesh_allocator *a, struct crdt__dvs *s)
{
	for (size_t i = 0; i < s->n; i++)
		mesh_free(a, s->v[i].val);
	mesh_free(a, s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

static void
crdt__dvs_clear(const struct mesh_allocator *a, struct crdt__dvs *s)
{
	for (size_t i = 0; i < s->n; i++)
		mesh_free(a, s->v[i].val);
	s->n = 0;
}

static int
crdt__dv_copy(const struct mesh_allocator *a, struct crdt__dv *dst,
	      const struct crdt__dv *src)
{
	*dst = *src;
	dst->val = NULL;
	if (src->len != 0 &&
	    (dst->val = crdt__dup(a, src->val, src->len)) == NULL)
		return MESH_ENOMEM;
	return 0;
}

/*
 * Keeps one dot per replica: the newest. A replica's newer write to a
 * register or counter always follows its own older one (it made both), so
 * the older is superseded even when the delta that retired it has not
 * arrived yet. Without this, a replica that got deltas out of order held
 * two running totals of one counter replica, and its context (which the
 * newer delta completed) hid the difference from anti-entropy.
 */
static void
crdt__dvs_latest(const struct mesh_allocator *a, struct crdt__dvs *s)
{
	size_t k = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (i + 1 < s->n &&
		    s->v[i + 1].dot.replica == s->v[i].dot.replica) {
			mesh_free(a, s->v[i].val);
			continue;
		}
		s->v[k++] = s->v[i];
	}
	s->n = k;
}

int
crdt__dvs_join(const struct mesh_allocator *a, struct crdt__dvs *s,
	       const struct crdt_cc *sc, const struct crdt__dvs *o,
	       const struct crdt_cc *oc)
{
	size_t on = o != NULL ? o->n : 0;
	size_t max = s->n + on;
	if (max == 0)
		return 0;
	struct crdt__dv *r = mesh_malloc(a, max * sizeof(*r));
	/* keep[i]: s->v[i] survives (its value moves to r). */
	bool *keep = s->n ? mesh_calloc(a, s->n, sizeof(*keep)) : NULL;
	if (r == NULL || (s->n != 0 && keep == NULL)) {
		mesh_free(a, r);
		mesh_free(a, keep);
		return MESH_ENOMEM;
	}
	size_t i = 0, j = 0, k = 0;
	while (i < s->n || j < on) {
		int c = j == on ? -1
			: i == s->n
			    ? 1
			    : crdt_dot_compare(&s->v[i].dot, &o->v[j].dot);
		if (c == 0) {
			keep[i] = true;
			r[k++] = s->v[i++];
			j++;
		} else if (c < 0) {
			if (!crdt_cc_contains(oc, &s->v[i].dot)) {
				keep[i] = true;
				r[k++] = s->v[i];
			}
			i++;
		} else {
			if (!crdt_cc_contains(sc, &o->v[j].dot)) {
				if (crdt__dv_copy(a, &r[k], &o->v[j]) != 0)
					goto fail;
				k++;
			}
			j++;
		}
	}
	for (i = 0; i < s->n; i++)
		if (!keep[i])
			mesh_free(a, s->v[i].val);
	mesh_free(a, keep);
	mesh_free(a, s->v);
	s->v = r;
	s->n = k;
	s->cap = max;
	crdt__dvs_latest(a, s);
	return 0;
fail:
	/* Values in r that came from o were copied; the rest belong to s. */
	for (size_t x = 0, y = 0; x < k; x++) {
		while (y < s->n &&
		       crdt_dot_compare(&s->v[y].dot, &r[x].dot) < 0)
			y++;
		if (!(y < s->n &&
		      crdt_dot_compare(&s->v[y].dot, &r[x].dot) == 0))
			mesh_free(a, r[x].val);
	}
	mesh_free(a, keep);
	mesh_free(a, r);
	return MESH_ENOMEM;
}

/* Makes crdt__dvs_commit() unable to fail for @nrm removed dots and one
 * added entry whose value is @len bytes; *@val gets the copy of @value. */
static int
crdt__dvs_reserve(const struct mesh_allocator *a, struct crdt__dvs *s,
		  struct crdt_cc *ctx, size_t nrm, const void *value,
		  size_t len, uint8_t **val)
{
	*val = NULL;
	if (mesh_grow(a, (void **)&s->v, &s->cap, s->n + 1, sizeof(*s->v)) != 0)
		return MESH_ENOMEM;
	if (crdt__cc_reserve(ctx, nrm + 1) != 0)
		return MESH_ENOMEM;
	if (len != 0 && (*val = crdt__dup(a, value, len)) == NULL)
		return MESH_ENOMEM;
	return 0;
}

/* The commit half: @add->val is owned by the store afterwards (or freed). */
static void
crdt__dvs_commit(const struct mesh_allocator *a, struct crdt__dvs *s,
		 struct crdt_cc *ctx, const struct crdt_dot *rm, size_t nrm,
		 const struct crdt__dv *add)
{
	size_t k = 0, r = 0;
	for (size_t i = 0; i < s->n; i++) {
		while (r < nrm && crdt_dot_compare(&rm[r], &s->v[i].dot) < 0)
			r++;
		if (r < nrm && crdt_dot_compare(&rm[r], &s->v[i].dot) == 0)
			mesh_free(a, s->v[i].val);
		else
			s->v[k++] = s->v[i];
	}
	s->n = k;
	if (add != NULL && !crdt_cc_contains(ctx, &add->dot)) {
		size_t pos = s->n;
		while (pos > 0 &&
		       crdt_dot_compare(&s->v[pos - 1].dot, &add->dot) > 0)
			pos--;
		memmove(&s->v[pos + 1], &s->v[pos],
			(s->n - pos) * sizeof(*s->v));
		s->v[pos] = *add;
		s->n++;
	} else if (add != NULL) {
		mesh_free(a, add->val);
	}
	/* Cannot fail: reserved. */
	(void)crdt__cc_add_many(ctx, rm, nrm);
	if (add != NULL)
		(void)crdt_cc_add(ctx, &add->dot);
}

/*
 * One mutation of a dvs state and of its delta: drop @rm, add @add.
 * Either both change or neither.
 */
int
crdt__dvs_mutate(const struct mesh_allocator *a, struct crdt__dvs *s,
		 struct crdt_cc *sc, struct crdt__dvs *d, struct crdt_cc *dc,
		 const struct crdt_dot *rm, size_t nrm,
		 const struct crdt__dv *add)
{
	uint8_t *sv = NULL, *dv = NULL;
	const void *value = add ? add->val : NULL;
	size_t len = add ? add->len : 0;
	if (crdt__dvs_reserve(a, s, sc, nrm, value, len, &sv) != 0)
		return MESH_ENOMEM;
	if (d != NULL &&
	    crdt__dvs_reserve(a, d, dc, nrm, value, len, &dv) != 0) {
		mesh_free(a, sv);
		return MESH_ENOMEM;
	}
	struct crdt__dv x;
	if (add != NULL) {
		x = *add;
		x.val = sv;
	}
	crdt__dvs_commit(a, s, sc, rm, nrm, add ? &x : NULL);
	if (d != NULL) {
		if (add != NULL)
			x.val = dv;
		crdt__dvs_commit(a, d, dc, rm, nrm, add ? &x : NULL);
	}
	return 0;
}

bool
crdt__dvs_equal(const struct crdt__dvs *a, const struct crdt__dvs *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const struct crdt__dv *x = &a->v[i], *y = &b->v[i];
		if (crdt_dot_compare(&x->dot, &y->dot) != 0 || x->p != y->p ||
		    x->n != y->n || crdt_hlc_compare(&x->stamp, &y->stamp) ||
		    crdt__bytes_cmp(x->val, x->len, y->val, y->len) != 0)
			return false;
	}
	return true;
}

size_t
crdt__dvs_size(const struct crdt__dvs *s)
{
	size_t n = s->cap * sizeof(*s->v);
	for (size_t i = 0; i < s->n; i++)
		n += s->v[i].len;
	return n;
}

/* ------------------------------------------------------------------------ */
/* LWW register.                                                            */

struct crdt_lww *
crdt_lww_new(const struct mesh_allocator *a)
{
	struct crdt_lww *r = mesh_calloc(a, 1, sizeof(*r));
	if (r != NULL)
		r->a = a;
	return r;
}

void
crdt_lww_free(struct crdt_lww *r)
{
	if (r == NULL)
		return;
	mesh_free(r->a, r->val);
	mesh_free(r->a, r);
}

void
crdt_lww_clear(struct crdt_lww *r)
{
	r->set = false;
	r->len = 0;
	memset(&r->stamp, 0, sizeof(r->stamp));
}

static int
crdt__lww_room(struct crdt_lww *r, size_t len)
{
	if (len <= r->cap)
		return 0;
	uint8_t *p = mesh_realloc(r->a, r->val, len);
	if (p == NULL)
		return MESH_ENOMEM;
	r->val = p;
	r->cap = len;
	return 0;
}

/* Whether (@s, @v) beats what @r holds. Ties on the stamp (only possible
 * when a clock is misused) go to the greater bytes so join stays
 * commutative. */
static bool
crdt__lww_beats(const struct crdt_lww *r, const struct crdt_hlc *s,
		const uint8_t *v, size_t len)
{
	if (!r->set)
		return true;
	int c = crdt_hlc_compare(s, &r->stamp);
	if (c != 0)
		return c > 0;
	return crdt__bytes_cmp(v, len, r->val, r->len) > 0;
}

static void
crdt__lww_put(struct crdt_lww *r, const struct crdt_hlc *s, const void *v,
	      size_t len)
{
	r->set = true;
	r->stamp = *s;
	if (len != 0)
		memmove(r->val, v, len);
	r->len = len;
}

int
crdt_lww_set(struct crdt_lww *r, struct crdt_hlc_clock *clock, uint64_t now_ms,
	     const void *value, size_t len, struct crdt_lww *delta)
{
	if (len > CRDT_MAX_VALUE)
		return MESH_ETOOBIG;
	struct crdt_hlc_clock c = *clock;
	struct crdt_hlc stamp;
	/* Order this write after the one we hold, whatever our wall clock
	 * says: that is what makes causally later writes win. */
	if (r->set && crdt__hlc_observe(&c, now_ms, &r->stamp) != 0)
		return MESH_ERANGE;
	if (crdt_hlc_now(&c, now_ms, &stamp) != 0)
		return MESH_ERANGE;
	if (crdt__lww_room(r, len) != 0 ||
	    (delta != NULL && crdt__lww_room(delta, len) != 0))
		return MESH_ENOMEM;
	*clock = c;
	crdt__lww_put(r, &stamp, value, len);
	if (delta != NULL && crdt__lww_beats(delta, &stamp, value, len))
		crdt__lww_put(delta, &stamp, value, len);
	return 0;
}

bool
crdt_lww_get(const struct crdt_lww *r, const void **value, size_t *len,
	     struct crdt_hlc *stamp)
{
	if (!r->set)
		return false;
	if (value != NULL)
		*value = r->val;
	if (len != NULL)
		*len = r->len;
	if (stamp != NULL)
		*stamp = r->stamp;
	return true;
}

int
crdt_lww_join(struct crdt_lww *dst, const struct crdt_lww *src)
{
	if (!src->set || !crdt__lww_beats(dst, &src->stamp, src->val, src->len))
		return 0;
	if (crdt__lww_room(dst, src->len) != 0)
		return MESH_ENOMEM;
	crdt__lww_put(dst, &src->stamp, src->val, src->len);
	return 0;
}

bool
crdt_lww_equal(const struct crdt_lww *a, const struct crdt_lww *b)
{
	if (a->set != b->set)
		return false;
	if (!a->set)
		return true;
	return crdt_hlc_compare(&a->stamp, &b->stamp) == 0 &&
	       crdt__bytes_cmp(a->val, a->len, b->val, b->len) == 0;
}

size_t
crdt_lww_size(const struct crdt_lww *r)
{
	return sizeof(*r) + r->cap;
}

/* ------------------------------------------------------------------------ */
/* MV register.                                                             */

struct crdt_mvreg *
crdt_mvreg_new(const struct mesh_allocator *a)
{
	struct crdt_mvreg *r = mesh_calloc(a, 1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->a = a;
	crdt__cc_init(&r->cc, a);
	return r;
}

void
crdt_mvreg_free(struct crdt_mvreg *r)
{
	if (r == NULL)
		return;
	crdt__dvs_destroy(r->a, &r->s);
	crdt__cc_destroy(&r->cc);
	mesh_free(r->a, r);
}

void
crdt_mvreg_clear(struct crdt_mvreg *r)
{
	crdt__dvs_clear(r->a, &r->s);
	crdt_cc_clear(&r->cc);
}

int
crdt_mvreg_set(struct crdt_mvreg *r, uint64_t replica, const void *value,
	       size_t len, struct crdt_mvreg *delta)
{
	if (len > CRDT_MAX_VALUE)
		return MESH_ETOOBIG;
	struct crdt_dot stackrm[8], *rm = stackrm;
	if (r->s.n > 8 &&
	    (rm = mesh_malloc(r->a, r->s.n * sizeof(*rm))) == NULL)
		return MESH_ENOMEM;
	size_t nrm = r->s.n;
	for (size_t i = 0; i < nrm; i++)
		rm[i] = r->s.v[i].dot;
	struct crdt__dv add = {.dot = crdt_cc_next_dot(&r->cc, replica),
			       .val = (uint8_t *)value,
			       .len = len};
	int rc = crdt__dvs_mutate(r->a, &r->s, &r->cc, delta ? &delta->s : NULL,
				  delta ? &delta->cc : NULL, rm, nrm, &add);
	if (rm != stackrm)
		mesh_free(r->a, rm);
	return rc;
}

size_t
crdt_mvreg_count(const struct crdt_mvreg *r)
{
	return r->s.n;
}

int
crdt_mvreg_value(const struct crdt_mvreg *r, size_t i, const void **value,
		 size_t *len)
{
	if (i >= r->s.n)
		return MESH_ENOENT;
	*value = r->s.v[i].val;
	*len = r->s.v[i].len;
	return 0;
}

int
crdt_mvreg_join(struct crdt_mvreg *dst, const struct crdt_mvreg *src)
{
	/* Join the contexts into a copy first: the store join needs the old
	 * ones, and either step may fail. */
	struct crdt_cc cc;
	crdt__cc_init(&cc, dst->a);
	if (crdt_cc_join(&cc, &dst->cc) != 0 || crdt_cc_join(&cc, &src->cc)) {
		crdt__cc_destroy(&cc);
		return MESH_ENOMEM;
	}
	if (crdt__dvs_join(dst->a, &dst->s, &dst->cc, &src->s, &src->cc) != 0) {
		crdt__cc_destroy(&cc);
		return MESH_ENOMEM;
	}
	crdt__cc_destroy(&dst->cc);
	dst->cc = cc;
	return 0;
}

bool
crdt_mvreg_equal(const struct crdt_mvreg *a, const struct crdt_mvreg *b)
{
	return crdt__dvs_equal(&a->s, &b->s) && crdt_cc_equal(&a->cc, &b->cc);
}

size_t
crdt_mvreg_size(const struct crdt_mvreg *r)
{
	return sizeof(*r) + crdt__dvs_size(&r->s) + crdt_cc_size(&r->cc) -
	       sizeof(r->cc);
}
