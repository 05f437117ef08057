/*
 * crdt_orset.c - the add-wins observed-remove set ("es": element -> dots,
 * plus a causal context), as in the delta-state paper's AWORSet.
 *
 * An element is present while it holds at least one dot. Adding retires the
 * element's old dots and gives it a fresh one; removing retires its dots.
 * Nothing is kept for a removed element: its dots live on only as members
 * of the causal context, which compacts into the version vector. A join
 * keeps a dot that both sides hold, or that one side holds and the other
 * has never seen; a dot one side has seen but no longer holds was removed.
 *
 * Most elements hold one dot, kept inline; more happen after concurrent
 * adds and go to a heap array.
 */
#include "crdt_impl.h"

#include "mesh_err.h"

#include <string.h>

const struct crdt_dot *
crdt__elem_dots(const struct crdt__elem *e)
{
	return e->ndots <= 1 ? &e->d.one : e->d.many;
}

static void
crdt__elem_destroy(const struct mesh_allocator *a, struct crdt__elem *e)
{
	mesh_free(a, e->data);
	if (e->ndots > 1)
		mesh_free(a, e->d.many);
}

void
crdt__es_destroy(const struct mesh_allocator *a, struct crdt__es *s)
{
	for (size_t i = 0; i < s->n; i++)
		crdt__elem_destroy(a, &s->v[i]);
	mesh_free(a, s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

/* Index of the first element >= (@elem, @len). */
static size_t
crdt__es_lower(const struct crdt__es *s, const void *elem, size_t len)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (crdt__bytes_cmp(s->v[mid].data, s->v[mid].len, elem, len) <
		    0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

long
crdt__es_find(const struct crdt__es *s, const void *elem, size_t len)
{
	size_t i = crdt__es_lower(s, elem, len);
	if (i < s->n &&
	    crdt__bytes_cmp(s->v[i].data, s->v[i].len, elem, len) == 0)
		return (long)i;
	return -1;
}

/* What crdt__es_commit() needs allocated beforehand. */
struct crdt__es_prep {
	uint8_t *data;	       /* copy of the element, when it is new */
	struct crdt_dot *dots; /* new dot array, when the old cannot hold */
};

/* Whether @d is among the sorted @rm. */
static bool
crdt__in_sorted(const struct crdt_dot *rm, size_t nrm, const struct crdt_dot *d)
{
	size_t lo = 0, hi = nrm;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = crdt_dot_compare(&rm[mid], d);
		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int
crdt__es_reserve(const struct mesh_allocator *a, struct crdt__es *s,
		 struct crdt_cc *ctx, const void *elem, size_t len,
		 const struct crdt_dot *rm, size_t nrm,
		 const struct crdt_dot *add, struct crdt__es_prep *p)
{
	p->data = NULL;
	p->dots = NULL;
	bool adding = add != NULL && !crdt_cc_contains(ctx, add);
	if (crdt__cc_reserve(ctx, nrm + 1) != 0)
		return MESH_ENOMEM;
	long idx = crdt__es_find(s, elem, len);
	if (idx < 0) {
		if (!adding)
			return 0;
		if (mesh_grow(a, (void **)&s->v, &s->cap, s->n + 1,
			      sizeof(*s->v)) != 0 ||
		    (p->data = crdt__dup(a, elem, len)) == NULL)
			return MESH_ENOMEM;
		return 0;
	}
	const struct crdt__elem *e = &s->v[idx];
	const struct crdt_dot *ds = crdt__elem_dots(e);
	size_t keep = adding;
	for (size_t i = 0; i < e->ndots; i++)
		keep += !crdt__in_sorted(rm, nrm, &ds[i]);
	/* Only a pure filter runs in place; anything that inserts gets a new
	 * array so that commit never writes ahead of what it reads. */
	if (keep > 1 && (e->ndots <= 1 || keep > e->ndots || adding)) {
		p->dots = mesh_malloc(a, keep * sizeof(*p->dots));
		if (p->dots == NULL)
			return MESH_ENOMEM;
	}
	return 0;
}

static void
crdt__es_commit(const struct mesh_allocator *a, struct crdt__es *s,
		struct crdt_cc *ctx, const void *elem, size_t len,
		const struct crdt_dot *rm, size_t nrm,
		const struct crdt_dot *add, struct crdt__es_prep *p)
{
	bool adding = add != NULL && !crdt_cc_contains(ctx, add);
	size_t idx = crdt__es_lower(s, elem, len);
	bool found =
	    idx < s->n &&
	    crdt__bytes_cmp(s->v[idx].data, s->v[idx].len, elem, len) == 0;
	if (!found) {
		if (adding) {
			memmove(&s->v[idx + 1], &s->v[idx],
				(s->n - idx) * sizeof(*s->v));
			s->v[idx] = (struct crdt__elem){.data = p->data,
							.len = len,
							.ndots = 1,
							.d.one = *add};
			s->n++;
			p->data = NULL;
		}
	} else {
		struct crdt__elem *e = &s->v[idx];
		struct crdt_dot one = e->d.one, out1;
		const struct crdt_dot *src = e->ndots <= 1 ? &one : e->d.many;
		struct crdt_dot *dst = p->dots != NULL ? p->dots
				       : e->ndots > 1  ? e->d.many
						       : &out1;
		size_t k = 0;
		bool placed = !adding;
		for (size_t i = 0; i < e->ndots; i++) {
			if (crdt__in_sorted(rm, nrm, &src[i]))
				continue;
			if (!placed && crdt_dot_compare(add, &src[i]) < 0) {
				dst[k++] = *add;
				placed = true;
			}
			dst[k++] = src[i];
		}
		if (!placed)
			dst[k++] = *add;
		/* In place (dst == src) only filters, so k <= i always. */
		if (k <= 1) {
			struct crdt_dot keep1 = k == 1 ? dst[0] : one;
			if (e->ndots > 1)
				mesh_free(a, e->d.many);
			if (k == 1) {
				e->d.one = keep1;
				e->ndots = 1;
			} else {
				mesh_free(a, e->data);
				memmove(&s->v[idx], &s->v[idx + 1],
					(s->n - idx - 1) * sizeof(*s->v));
				s->n--;
			}
		} else {
			if (dst == p->dots) {
				if (e->ndots > 1)
					mesh_free(a, e->d.many);
				e->d.many = p->dots;
				p->dots = NULL;
			}
			e->ndots = k;
		}
	}
	mesh_free(a, p->data);
	mesh_free(a, p->dots);
	(void)crdt__cc_add_many(ctx, rm, nrm);
	if (add != NULL)
		(void)crdt_cc_add(ctx, add);
}

int
crdt__es_mutate(const struct mesh_allocator *a, struct crdt__es *s,
		struct crdt_cc *sc, struct crdt__es *d, struct crdt_cc *dc,
		const void *elem, size_t len, const struct crdt_dot *rm,
		size_t nrm, const struct crdt_dot *add)
{
	struct crdt__es_prep ps, pd = {NULL, NULL};
	if (crdt__es_reserve(a, s, sc, elem, len, rm, nrm, add, &ps) != 0 ||
	    (d != NULL &&
	     crdt__es_reserve(a, d, dc, elem, len, rm, nrm, add, &pd) != 0)) {
		mesh_free(a, ps.data);
		mesh_free(a, ps.dots);
		mesh_free(a, pd.data);
		mesh_free(a, pd.dots);
		return MESH_ENOMEM;
	}
	/* The delta first: @elem may be borrowed from the state, which may
	 * free it. */
	if (d != NULL)
		crdt__es_commit(a, d, dc, elem, len, rm, nrm, add, &pd);
	crdt__es_commit(a, s, sc, elem, len, rm, nrm, add, &ps);
	return 0;
}

/* Join bookkeeping for one result element. */
struct crdt__es_origin {
	size_t from; /* index in the old state, or SIZE_MAX if copied */
	bool reused; /* its heap dot array moved over from the old state */
};

int
crdt__es_join(const struct mesh_allocator *a, struct crdt__es *s,
	      const struct crdt_cc *sc, const struct crdt__es *o,
	      const struct crdt_cc *oc)
{
	size_t on = o != NULL ? o->n : 0;
	size_t max = s->n + on;
	if (max == 0)
		return 0;
	struct crdt__elem *r = mesh_malloc(a, max * sizeof(*r));
	struct crdt__es_origin *org = mesh_malloc(a, max * sizeof(*org));
	struct crdt_dot *tmp = NULL;
	size_t tmpcap = 0, k = 0;
	if (r == NULL || org == NULL)
		goto fail;
	size_t i = 0, j = 0;
	while (i < s->n || j < on) {
		const struct crdt__elem *x = i < s->n ? &s->v[i] : NULL;
		const struct crdt__elem *y = j < on ? &o->v[j] : NULL;
		int c = y == NULL ? -1
			: x == NULL
			    ? 1
			    : crdt__bytes_cmp(x->data, x->len, y->data, y->len);
		const struct crdt_dot *xd = c <= 0 ? crdt__elem_dots(x) : NULL;
		const struct crdt_dot *yd = c >= 0 ? crdt__elem_dots(y) : NULL;
		size_t xn = c <= 0 ? x->ndots : 0, yn = c >= 0 ? y->ndots : 0;
		if (mesh_grow(a, (void **)&tmp, &tmpcap, xn + yn,
			      sizeof(*tmp)) != 0)
			goto fail;
		/* Merge the two sorted dot lists with the join rule. */
		size_t n = 0, p = 0, q = 0;
		while (p < xn || q < yn) {
			int dc = q == yn   ? -1
				 : p == xn ? 1
					   : crdt_dot_compare(&xd[p], &yd[q]);
			if (dc == 0) {
				tmp[n++] = xd[p++];
				q++;
			} else if (dc < 0) {
				if (!crdt_cc_contains(oc, &xd[p]))
					tmp[n++] = xd[p];
				p++;
			} else {
				if (!crdt_cc_contains(sc, &yd[q]))
					tmp[n++] = yd[q];
				q++;
			}
		}
		/* One dot per replica per element, the newest: a replica's
		 * re-add retires its own older dot (see crdt__dvs_latest). */
		size_t m = 0;
		for (size_t z = 0; z < n; z++)
			if (z + 1 == n || tmp[z + 1].replica != tmp[z].replica)
				tmp[m++] = tmp[z];
		n = m;
		if (c <= 0)
			i++;
		if (c >= 0)
			j++;
		if (n == 0)
			continue;
		struct crdt__elem *e = &r[k];
		struct crdt__es_origin *g = &org[k];
		g->reused = false;
		if (c <= 0) {
			g->from = i - 1;
			e->data = x->data;
			e->len = x->len;
		} else {
			g->from = SIZE_MAX;
			e->len = y->len;
			if ((e->data = crdt__dup(a, y->data, y->len)) == NULL)
				goto fail;
		}
		e->ndots = n;
		if (n == 1) {
			e->d.one = tmp[0];
		} else if (c <= 0 && x->ndots == n &&
			   memcmp(x->d.many, tmp, n * sizeof(*tmp)) == 0) {
			e->d.many = x->d.many;
			g->reused = true;
		} else {
			e->d.many = mesh_malloc(a, n * sizeof(*tmp));
			if (e->d.many == NULL) {
				e->ndots = 1; /* nothing to free below */
				k++;
				goto fail;
			}
			memcpy(e->d.many, tmp, n * sizeof(*tmp));
		}
		k++;
	}
	/* Commit: free what of the old state did not move over. */
	for (size_t x = 0; x < k; x++) {
		if (org[x].from == SIZE_MAX)
			continue;
		s->v[org[x].from].data = NULL;
		if (org[x].reused)
			s->v[org[x].from].ndots = 0;
	}
	for (size_t x = 0; x < s->n; x++)
		crdt__elem_destroy(a, &s->v[x]);
	mesh_free(a, s->v);
	mesh_free(a, org);
	mesh_free(a, tmp);
	s->v = r;
	s->n = k;
	s->cap = max;
	return 0;
fail:
	for (size_t x = 0; x < k; x++) {
		if (org[x].from == SIZE_MAX)
			mesh_free(a, r[x].data);
		if (r[x].ndots > 1 && !org[x].reused)
			mesh_free(a, r[x].d.many);
	}
	mesh_free(a, r);
	mesh_free(a, org);
	mesh_free(a, tmp);
	return MESH_ENOMEM;
}

bool
crdt__es_equal(const struct crdt__es *a, const struct crdt__es *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const struct crdt__elem *x = &a->v[i], *y = &b->v[i];
		if (crdt__bytes_cmp(x->data, x->len, y->data, y->len) != 0 ||
		    x->ndots != y->ndots ||
		    memcmp(crdt__elem_dots(x), crdt__elem_dots(y),
			   x->ndots * sizeof(struct crdt_dot)) != 0)
			return false;
	}
	return true;
}

size_t
crdt__es_size(const struct crdt__es *s)
{
	size_t n = s->cap * sizeof(*s->v);
	for (size_t i = 0; i < s->n; i++) {
		n += s->v[i].len ? s->v[i].len : 1;
		if (s->v[i].ndots > 1)
			n += s->v[i].ndots * sizeof(struct crdt_dot);
	}
	return n;
}

/* ------------------------------------------------------------------------ */

struct crdt_orset *
crdt_orset_new(const struct mesh_allocator *a)
{
	struct crdt_orset *s = mesh_calloc(a, 1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->a = a;
	crdt__cc_init(&s->cc, a);
	return s;
}

void
crdt_orset_free(struct crdt_orset *s)
{
	if (s == NULL)
		return;
	crdt__es_destroy(s->a, &s->s);
	crdt__cc_destroy(&s->cc);
	mesh_free(s->a, s);
}

void
crdt_orset_clear(struct crdt_orset *s)
{
	for (size_t i = 0; i < s->s.n; i++)
		crdt__elem_destroy(s->a, &s->s.v[i]);
	s->s.n = 0;
	crdt_cc_clear(&s->cc);
}

/* Copies the dots of @elem in @s into @buf (or a new array when more than
 * @bufn); *@out and *@n describe them. */
static int
crdt__es_dots_of(const struct mesh_allocator *a, const struct crdt__es *s,
		 const void *elem, size_t len, struct crdt_dot *buf,
		 size_t bufn, struct crdt_dot **out, size_t *n)
{
	long idx = crdt__es_find(s, elem, len);
	*out = buf;
	*n = 0;
	if (idx < 0)
		return 0;
	const struct crdt__elem *e = &s->v[idx];
	if (e->ndots > bufn &&
	    (*out = mesh_malloc(a, e->ndots * sizeof(**out))) == NULL)
		return MESH_ENOMEM;
	memcpy(*out, crdt__elem_dots(e), e->ndots * sizeof(**out));
	*n = e->ndots;
	return 0;
}

int
crdt_orset_add(struct crdt_orset *s, uint64_t replica, const void *elem,
	       size_t len, struct crdt_orset *delta)
{
	if (len > CRDT_MAX_VALUE)
		return MESH_ETOOBIG;
	struct crdt_dot buf[4], *rm;
	size_t nrm;
	if (crdt__es_dots_of(s->a, &s->s, elem, len, buf, 4, &rm, &nrm) != 0)
		return MESH_ENOMEM;
	struct crdt_dot d = crdt_cc_next_dot(&s->cc, replica);
	int rc =
	    crdt__es_mutate(s->a, &s->s, &s->cc, delta ? &delta->s : NULL,
			    delta ? &delta->cc : NULL, elem, len, rm, nrm, &d);
	if (rm != buf)
		mesh_free(s->a, rm);
	return rc;
}

int
crdt_orset_remove(struct crdt_orset *s, const void *elem, size_t len,
		  struct crdt_orset *delta)
{
	struct crdt_dot buf[4], *rm;
	size_t nrm;
	if (crdt__es_dots_of(s->a, &s->s, elem, len, buf, 4, &rm, &nrm) != 0)
		return MESH_ENOMEM;
	int rc = 0;
	if (nrm != 0)
		rc = crdt__es_mutate(
		    s->a, &s->s, &s->cc, delta ? &delta->s : NULL,
		    delta ? &delta->cc : NULL, elem, len, rm, nrm, NULL);
	if (rm != buf)
		mesh_free(s->a, rm);
	return rc;
}

bool
crdt_orset_contains(const struct crdt_orset *s, const void *elem, size_t len)
{
	return crdt__es_find(&s->s, elem, len) >= 0;
}

size_t
crdt_orset_count(const struct crdt_orset *s)
{
	return s->s.n;
}

int
crdt_orset_element(const struct crdt_orset *s, size_t i, const void **elem,
		   size_t *len)
{
	if (i >= s->s.n)
		return MESH_ENOENT;
	*elem = s->s.v[i].data;
	*len = s->s.v[i].len;
	return 0;
}

int
crdt_orset_join(struct crdt_orset *dst, const struct crdt_orset *src)
{
	struct crdt_cc cc;
	crdt__cc_init(&cc, dst->a);
	if (crdt_cc_join(&cc, &dst->cc) != 0 ||
	    crdt_cc_join(&cc, &src->cc) != 0 ||
	    crdt__es_join(dst->a, &dst->s, &dst->cc, &src->s, &src->cc) != 0) {
		crdt__cc_destroy(&cc);
		return MESH_ENOMEM;
	}
	crdt__cc_destroy(&dst->cc);
	dst->cc = cc;
	return 0;
}

bool
crdt_orset_equal(const struct crdt_orset *a, const struct crdt_orset *b)
{
	return crdt__es_equal(&a->s, &b->s) && crdt_cc_equal(&a->cc, &b->cc);
}

size_t
crdt_orset_size(const struct crdt_orset *s)
{
	return sizeof(*s) + crdt__es_size(&s->s) + crdt_cc_size(&s->cc) -
	       sizeof(s->cc);
}
