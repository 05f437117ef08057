/*
 * crdt_ormap.c - the OR-map of embedded CRDTs ("ms": (kind, key) -> store,
 * plus one causal context shared by every store in the tree).
 *
 * This is the delta-state paper's ORMap over dot stores. Each field's value
 * is itself a dot store: counters, LWW and MV are dot -> value stores, an
 * OR-set is element -> dots, a nested map is (kind, key) -> store. Because
 * every store shares the map's context, one rule joins them all: keep a dot
 * both sides hold or that the other side has never seen. A field is present
 * while its store holds a dot, and removing a field retires the dots it
 * held, so a concurrent update (which made new dots) survives a remove.
 *
 * Counters cannot be plain G-counter tables inside a map: a replica's entry
 * must be able to vanish on remove and restart from 0 afterwards, and a max
 * join would resurrect the old entry. So each replica's contribution is a
 * dot carrying its running totals (p, n); an increment replaces the
 * replica's old dot with a new one. That is why, when a replica increments
 * concurrently with a remove, its whole running total survives (the dot
 * carries it), while contributions the remove observed are gone.
 *
 * Fields are named by (kind, key) so that two replicas creating the same key
 * with different types make two fields rather than a type conflict.
 *
 * Joins are computed into a copy and swapped in, so that an allocation
 * failure leaves the destination as it was; this costs O(size of the
 * destination) per join (docs/crdt.md, "Limits").
 */
#include "crdt_impl.h"

#include "mesh_err.h"
#include "mesh_sort.h"

#include <stdlib.h>
#include <string.h>

static int
crdt__field_cmp(const struct crdt__field *f, enum crdt_kind kind,
		const void *key, size_t len)
{
	if (f->kind != kind)
		return f->kind < kind ? -1 : 1;
	return crdt__bytes_cmp(f->key, f->len, key, len);
}

static size_t
crdt__ms_lower(const struct crdt__ms *s, enum crdt_kind kind, const void *key,
	       size_t len)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (crdt__field_cmp(&s->v[mid], kind, key, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct crdt__field *
crdt__ms_find(const struct crdt__ms *s, enum crdt_kind kind, const void *key,
	      size_t len)
{
	size_t i = crdt__ms_lower(s, kind, key, len);
	if (i < s->n && crdt__field_cmp(&s->v[i], kind, key, len) == 0)
		return &s->v[i];
	return NULL;
}

void
crdt__field_destroy(const struct mesh_allocator *a, struct crdt__field *f)
{
	mesh_free(a, f->key);
	f->key = NULL;
	switch (f->kind) {
	case CRDT_ORSET:
		crdt__es_destroy(a, &f->u.es);
		break;
	case CRDT_ORMAP:
		crdt__ms_destroy(a, &f->u.ms);
		break;
	default:
		crdt__dvs_destroy(a, &f->u.dvs);
		break;
	}
}

void
crdt__ms_destroy(const struct mesh_allocator *a, struct crdt__ms *s)
{
	for (size_t i = 0; i < s->n; i++)
		crdt__field_destroy(a, &s->v[i]);
	mesh_free(a, s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

bool
crdt__field_is_empty(const struct crdt__field *f)
{
	switch (f->kind) {
	case CRDT_ORSET:
		return f->u.es.n == 0;
	case CRDT_ORMAP:
		return f->u.ms.n == 0;
	default:
		return f->u.dvs.n == 0;
	}
}

static bool
crdt__kind_ok(enum crdt_kind kind)
{
	return kind >= CRDT_GCOUNTER && kind <= CRDT_ORMAP;
}

/* Inserts an empty field at @pos; NULL on OOM. */
static struct crdt__field *
crdt__ms_insert(const struct mesh_allocator *a, struct crdt__ms *s, size_t pos,
		enum crdt_kind kind, const void *key, size_t len)
{
	uint8_t *k = crdt__dup(a, key, len);
	if (k == NULL || mesh_grow(a, (void **)&s->v, &s->cap, s->n + 1,
				   sizeof(*s->v)) != 0) {
		mesh_free(a, k);
		return NULL;
	}
	memmove(&s->v[pos + 1], &s->v[pos], (s->n - pos) * sizeof(*s->v));
	memset(&s->v[pos], 0, sizeof(s->v[pos]));
	s->v[pos].kind = kind;
	s->v[pos].key = k;
	s->v[pos].len = len;
	s->n++;
	return &s->v[pos];
}

/* Joins one field's store: f := join of (f, sc) and (o, oc); @o NULL is
 * bottom. May leave @f partly joined on MESH_ENOMEM (callers work on a
 * copy). */
static int crdt__field_join(const struct mesh_allocator *a,
			    struct crdt__field *f, const struct crdt_cc *sc,
			    const struct crdt__field *o,
			    const struct crdt_cc *oc);

/* s := join of (s, sc) and (o, oc), in place. On MESH_ENOMEM @s is a
 * well-formed tree (destroyable) but partly joined. */
static int
crdt__ms_join_raw(const struct mesh_allocator *a, struct crdt__ms *s,
		  const struct crdt_cc *sc, const struct crdt__ms *o,
		  const struct crdt_cc *oc)
{
	size_t on = o != NULL ? o->n : 0;
	size_t max = s->n + on;
	if (max == 0)
		return 0;
	struct crdt__field *r = mesh_malloc(a, max * sizeof(*r));
	if (r == NULL)
		return MESH_ENOMEM;
	size_t i = 0, j = 0, k = 0;
	int rc = 0;
	while (rc == 0 && (i < s->n || j < on)) {
		int c = j == on	    ? -1
			: i == s->n ? 1
				    : crdt__field_cmp(&s->v[i], o->v[j].kind,
						      o->v[j].key, o->v[j].len);
		if (c <= 0) {
			r[k] = s->v[i++];
			rc = crdt__field_join(a, &r[k], sc,
					      c == 0 ? &o->v[j] : NULL, oc);
			if (c == 0)
				j++;
		} else {
			const struct crdt__field *y = &o->v[j++];
			memset(&r[k], 0, sizeof(r[k]));
			r[k].kind = y->kind;
			r[k].len = y->len;
			if ((r[k].key = crdt__dup(a, y->key, y->len)) == NULL) {
				rc = MESH_ENOMEM;
				break;
			}
			rc = crdt__field_join(a, &r[k], sc, y, oc);
		}
		if (crdt__field_is_empty(&r[k]))
			crdt__field_destroy(a, &r[k]);
		else
			k++;
	}
	/* On failure keep the fields not yet visited, so @s stays whole. */
	while (i < s->n)
		r[k++] = s->v[i++];
	mesh_free(a, s->v);
	s->v = r;
	s->n = k;
	s->cap = max;
	return rc;
}

static int
crdt__field_join(const struct mesh_allocator *a, struct crdt__field *f,
		 const struct crdt_cc *sc, const struct crdt__field *o,
		 const struct crdt_cc *oc)
{
	switch (f->kind) {
	case CRDT_ORSET:
		return crdt__es_join(a, &f->u.es, sc, o ? &o->u.es : NULL, oc);
	case CRDT_ORMAP:
		return crdt__ms_join_raw(a, &f->u.ms, sc, o ? &o->u.ms : NULL,
					 oc);
	default:
		return crdt__dvs_join(a, &f->u.dvs, sc, o ? &o->u.dvs : NULL,
				      oc);
	}
}

static bool
crdt__ms_equal(const struct crdt__ms *a, const struct crdt__ms *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const struct crdt__field *x = &a->v[i], *y = &b->v[i];
		if (crdt__field_cmp(x, y->kind, y->key, y->len) != 0)
			return false;
		bool eq;
		switch (x->kind) {
		case CRDT_ORSET:
			eq = crdt__es_equal(&x->u.es, &y->u.es);
			break;
		case CRDT_ORMAP:
			eq = crdt__ms_equal(&x->u.ms, &y->u.ms);
			break;
		default:
			eq = crdt__dvs_equal(&x->u.dvs, &y->u.dvs);
			break;
		}
		if (!eq)
			return false;
	}
	return true;
}

static size_t
crdt__ms_size(const struct crdt__ms *s)
{
	size_t n = s->cap * sizeof(*s->v);
	for (size_t i = 0; i < s->n; i++) {
		const struct crdt__field *f = &s->v[i];
		n += f->len ? f->len : 1;
		switch (f->kind) {
		case CRDT_ORSET:
			n += crdt__es_size(&f->u.es);
			break;
		case CRDT_ORMAP:
			n += crdt__ms_size(&f->u.ms);
			break;
		default:
			n += crdt__dvs_size(&f->u.dvs);
			break;
		}
	}
	return n;
}

/* ------------------------------------------------------------------------ */
/* Paths.                                                                   */

static int
crdt__path_check(const struct crdt_key *path, size_t depth, enum crdt_kind kind)
{
	if (path == NULL || depth == 0 || depth > CRDT_MAX_DEPTH + 1 ||
	    !crdt__kind_ok(kind))
		return MESH_EINVAL;
	for (size_t i = 0; i < depth; i++)
		if (path[i].len > CRDT_MAX_VALUE ||
		    (path[i].len != 0 && path[i].data == NULL))
			return MESH_EINVAL;
	return 0;
}

/* The field at @path, or NULL. */
static struct crdt__field *
crdt__ms_lookup(const struct crdt__ms *root, const struct crdt_key *path,
		size_t depth, enum crdt_kind kind)
{
	if (crdt__path_check(path, depth, kind) != 0)
		return NULL;
	const struct crdt__ms *s = root;
	for (size_t l = 0; l < depth; l++) {
		enum crdt_kind k = l + 1 == depth ? kind : CRDT_ORMAP;
		struct crdt__field *f =
		    crdt__ms_find(s, k, path[l].data, path[l].len);
		if (f == NULL || l + 1 == depth)
			return f;
		s = &f->u.ms;
	}
	return NULL;
}

/* The field at @path, created (empty, with empty maps on the way) when
 * missing. NULL on OOM; crdt__ms_prune() then removes what was made. */
static struct crdt__field *
crdt__ms_make(const struct mesh_allocator *a, struct crdt__ms *root,
	      const struct crdt_key *path, size_t depth, enum crdt_kind kind)
{
	struct crdt__ms *s = root;
	for (size_t l = 0; l < depth; l++) {
		enum crdt_kind k = l + 1 == depth ? kind : CRDT_ORMAP;
		size_t pos = crdt__ms_lower(s, k, path[l].data, path[l].len);
		struct crdt__field *f;
		if (pos < s->n && crdt__field_cmp(&s->v[pos], k, path[l].data,
						  path[l].len) == 0)
			f = &s->v[pos];
		else if ((f = crdt__ms_insert(a, s, pos, k, path[l].data,
					      path[l].len)) == NULL)
			return NULL;
		if (l + 1 == depth)
			return f;
		s = &f->u.ms;
	}
	return NULL;
}

/* Removes empty fields along @path, bottom up: a state holds none. */
static void
crdt__ms_prune(const struct mesh_allocator *a, struct crdt__ms *s,
	       const struct crdt_key *path, size_t depth, enum crdt_kind kind)
{
	if (depth == 0)
		return;
	enum crdt_kind k = depth == 1 ? kind : CRDT_ORMAP;
	size_t pos = crdt__ms_lower(s, k, path[0].data, path[0].len);
	if (pos >= s->n ||
	    crdt__field_cmp(&s->v[pos], k, path[0].data, path[0].len) != 0)
		return;
	struct crdt__field *f = &s->v[pos];
	if (depth > 1)
		crdt__ms_prune(a, &f->u.ms, path + 1, depth - 1, kind);
	if (crdt__field_is_empty(f)) {
		crdt__field_destroy(a, f);
		memmove(&s->v[pos], &s->v[pos + 1],
			(s->n - pos - 1) * sizeof(*s->v));
		s->n--;
	}
}

static int
crdt__dot_qcmp(const void *a, const void *b)
{
	return crdt_dot_compare(a, b);
}

struct crdt__dotbuf {
	struct crdt_dot *v;
	size_t n, cap;
};

static int
crdt__dotbuf_push(const struct mesh_allocator *a, struct crdt__dotbuf *b,
		  const struct crdt_dot *d, size_t n)
{
	if (mesh_grow(a, (void **)&b->v, &b->cap, b->n + n, sizeof(*b->v)) != 0)
		return MESH_ENOMEM;
	memcpy(&b->v[b->n], d, n * sizeof(*d));
	b->n += n;
	return 0;
}

/* Appends every dot held under @f to @b (unsorted). */
static int
crdt__field_dots(const struct mesh_allocator *a, const struct crdt__field *f,
		 struct crdt__dotbuf *b)
{
	switch (f->kind) {
	case CRDT_ORSET:
		for (size_t i = 0; i < f->u.es.n; i++)
			if (crdt__dotbuf_push(a, b,
					      crdt__elem_dots(&f->u.es.v[i]),
					      f->u.es.v[i].ndots) != 0)
				return MESH_ENOMEM;
		return 0;
	case CRDT_ORMAP:
		for (size_t i = 0; i < f->u.ms.n; i++)
			if (crdt__field_dots(a, &f->u.ms.v[i], b) != 0)
				return MESH_ENOMEM;
		return 0;
	default:
		for (size_t i = 0; i < f->u.dvs.n; i++)
			if (crdt__dotbuf_push(a, b, &f->u.dvs.v[i].dot, 1) != 0)
				return MESH_ENOMEM;
		return 0;
	}
}

static bool
crdt__dot_in(const struct crdt_dot *rm, size_t nrm, const struct crdt_dot *d)
{
	return nrm != 0 &&
	       bsearch(d, rm, nrm, sizeof(*rm), crdt__dot_qcmp) != NULL;
}

/* Drops every dot of sorted @rm from the tree under @f, in place (no
 * allocation), removing elements and fields left empty. */
static void
crdt__field_drop(const struct mesh_allocator *a, struct crdt__field *f,
		 const struct crdt_dot *rm, size_t nrm)
{
	size_t k = 0;
	switch (f->kind) {
	case CRDT_ORSET:
		for (size_t i = 0; i < f->u.es.n; i++) {
			struct crdt__elem *e = &f->u.es.v[i];
			struct crdt_dot *ds =
			    e->ndots <= 1 ? &e->d.one : e->d.many;
			size_t m = 0;
			for (size_t x = 0; x < e->ndots; x++)
				if (!crdt__dot_in(rm, nrm, &ds[x]))
					ds[m++] = ds[x];
			if (m == 0) {
				if (e->ndots > 1)
					mesh_free(a, e->d.many);
				mesh_free(a, e->data);
				continue;
			}
			if (m == 1 && e->ndots > 1) {
				struct crdt_dot one = ds[0];
				mesh_free(a, e->d.many);
				e->d.one = one;
			}
			e->ndots = m;
			f->u.es.v[k++] = *e;
		}
		f->u.es.n = k;
		break;
	case CRDT_ORMAP:
		for (size_t i = 0; i < f->u.ms.n; i++) {
			crdt__field_drop(a, &f->u.ms.v[i], rm, nrm);
			if (crdt__field_is_empty(&f->u.ms.v[i]))
				crdt__field_destroy(a, &f->u.ms.v[i]);
			else
				f->u.ms.v[k++] = f->u.ms.v[i];
		}
		f->u.ms.n = k;
		break;
	default:
		for (size_t i = 0; i < f->u.dvs.n; i++) {
			if (crdt__dot_in(rm, nrm, &f->u.dvs.v[i].dot))
				mesh_free(a, f->u.dvs.v[i].val);
			else
				f->u.dvs.v[k++] = f->u.dvs.v[i];
		}
		f->u.dvs.n = k;
		break;
	}
}

/* ------------------------------------------------------------------------ */

struct crdt_ormap *
crdt_ormap_new(const struct mesh_allocator *a)
{
	struct crdt_ormap *m = mesh_calloc(a, 1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->a = a;
	crdt__cc_init(&m->cc, a);
	return m;
}

void
crdt_ormap_free(struct crdt_ormap *m)
{
	if (m == NULL)
		return;
	crdt__ms_destroy(m->a, &m->s);
	crdt__cc_destroy(&m->cc);
	mesh_free(m->a, m);
}

void
crdt_ormap_clear(struct crdt_ormap *m)
{
	crdt__ms_destroy(m->a, &m->s);
	crdt_cc_clear(&m->cc);
}

/*
 * One mutation of a dvs field (counter, LWW, MV) in @m and @delta: the
 * field's dots in [@rm_from, @rm_to) are retired and @add is written.
 */
static int
crdt__ormap_dvs_op(struct crdt_ormap *m, const struct crdt_key *path,
		   size_t depth, enum crdt_kind kind, struct crdt__field *f,
		   size_t rm_from, size_t rm_to, const struct crdt__dv *add,
		   struct crdt_ormap *delta)
{
	const struct mesh_allocator *a = m->a;
	struct crdt_dot stackrm[8], *rm = stackrm;
	size_t nrm = rm_to - rm_from;
	int rc = MESH_ENOMEM;
	if (nrm > 8 && (rm = mesh_malloc(a, nrm * sizeof(*rm))) == NULL)
		goto out;
	for (size_t i = 0; i < nrm; i++)
		rm[i] = f->u.dvs.v[rm_from + i].dot;
	struct crdt__field *fd = NULL;
	if (delta != NULL &&
	    (fd = crdt__ms_make(a, &delta->s, path, depth, kind)) == NULL)
		goto out;
	rc = crdt__dvs_mutate(a, &f->u.dvs, &m->cc, fd ? &fd->u.dvs : NULL,
			      delta ? &delta->cc : NULL, rm, nrm, add);
out:
	if (rm != stackrm)
		mesh_free(a, rm);
	crdt__ms_prune(a, &m->s, path, depth, kind);
	if (delta != NULL)
		crdt__ms_prune(a, &delta->s, path, depth, kind);
	return rc;
}

int
crdt_ormap_counter_add(struct crdt_ormap *m, uint64_t replica,
		       const struct crdt_key *path, size_t depth,
		       enum crdt_kind kind, int64_t n, struct crdt_ormap *delta)
{
	if (kind != CRDT_GCOUNTER)
		kind = CRDT_PNCOUNTER;
	int rc = crdt__path_check(path, depth, kind);
	if (rc != 0)
		return rc;
	if (kind == CRDT_GCOUNTER && n < 0)
		return MESH_EINVAL;
	if (n == 0)
		return 0;
	struct crdt__field *f = crdt__ms_make(m->a, &m->s, path, depth, kind);
	if (f == NULL) {
		crdt__ms_prune(m->a, &m->s, path, depth, kind);
		return MESH_ENOMEM;
	}
	/* The replica's dots sit together in the dot-sorted store. */
	size_t lo = 0, hi;
	while (lo < f->u.dvs.n && f->u.dvs.v[lo].dot.replica < replica)
		lo++;
	uint64_t p = 0, q = 0;
	for (hi = lo; hi < f->u.dvs.n && f->u.dvs.v[hi].dot.replica == replica;
	     hi++) {
		p += f->u.dvs.v[hi].p;
		q += f->u.dvs.v[hi].n;
	}
	uint64_t dp = n > 0 ? (uint64_t)n : 0;
	uint64_t dn = n < 0 ? -(uint64_t)n : 0;
	if (dp > UINT64_MAX - p || dn > UINT64_MAX - q) {
		crdt__ms_prune(m->a, &m->s, path, depth, kind);
		return MESH_ERANGE;
	}
	struct crdt__dv add = {
	    .dot = crdt_cc_next_dot(&m->cc, replica), .p = p + dp, .n = q + dn};
	return crdt__ormap_dvs_op(m, path, depth, kind, f, lo, hi, &add, delta);
}

int
crdt_ormap_lww_set(struct crdt_ormap *m, struct crdt_hlc_clock *clock,
		   uint64_t now_ms, const struct crdt_key *path, size_t depth,
		   const void *value, size_t len, struct crdt_ormap *delta)
{
	int rc = crdt__path_check(path, depth, CRDT_LWW);
	if (rc != 0)
		return rc;
	if (len > CRDT_MAX_VALUE)
		return MESH_ETOOBIG;
	struct crdt__field *f =
	    crdt__ms_make(m->a, &m->s, path, depth, CRDT_LWW);
	if (f == NULL) {
		crdt__ms_prune(m->a, &m->s, path, depth, CRDT_LWW);
		return MESH_ENOMEM;
	}
	struct crdt_hlc_clock c = *clock;
	for (size_t i = 0; i < f->u.dvs.n; i++)
		if (crdt__hlc_observe(&c, now_ms, &f->u.dvs.v[i].stamp) != 0)
			rc = MESH_ERANGE;
	struct crdt__dv add = {
	    .dot = crdt_cc_next_dot(&m->cc, clock->last.replica),
	    .val = (uint8_t *)value,
	    .len = len};
	if (rc == 0)
		rc = crdt_hlc_now(&c, now_ms, &add.stamp);
	if (rc != 0) {
		crdt__ms_prune(m->a, &m->s, path, depth, CRDT_LWW);
		return rc;
	}
	rc = crdt__ormap_dvs_op(m, path, depth, CRDT_LWW, f, 0, f->u.dvs.n,
				&add, delta);
	if (rc == 0)
		*clock = c;
	return rc;
}

int
crdt_ormap_mv_set(struct crdt_ormap *m, uint64_t replica,
		  const struct crdt_key *path, size_t depth, const void *value,
		  size_t len, struct crdt_ormap *delta)
{
	int rc = crdt__path_check(path, depth, CRDT_MV);
	if (rc != 0)
		return rc;
	if (len > CRDT_MAX_VALUE)
		return MESH_ETOOBIG;
	struct crdt__field *f =
	    crdt__ms_make(m->a, &m->s, path, depth, CRDT_MV);
	if (f == NULL) {
		crdt__ms_prune(m->a, &m->s, path, depth, CRDT_MV);
		return MESH_ENOMEM;
	}
	struct crdt__dv add = {.dot = crdt_cc_next_dot(&m->cc, replica),
			       .val = (uint8_t *)value,
			       .len = len};
	return crdt__ormap_dvs_op(m, path, depth, CRDT_MV, f, 0, f->u.dvs.n,
				  &add, delta);
}

/* Add (@add not NULL) or remove @elem in the OR-set field at @path. */
static int
crdt__ormap_es_op(struct crdt_ormap *m, const struct crdt_key *path,
		  size_t depth, const void *elem, size_t len,
		  const uint64_t *replica, struct crdt_ormap *delta)
{
	const struct mesh_allocator *a = m->a;
	struct crdt__field *f, *fd = NULL;
	struct crdt_dot stackrm[4], *rm = stackrm;
	size_t nrm = 0;
	int rc = MESH_ENOMEM;
	if (replica != NULL)
		f = crdt__ms_make(a, &m->s, path, depth, CRDT_ORSET);
	else
		f = crdt__ms_lookup(&m->s, path, depth, CRDT_ORSET);
	if (f == NULL) {
		rc = replica != NULL ? MESH_ENOMEM : 0;
		goto out;
	}
	long idx = crdt__es_find(&f->u.es, elem, len);
	if (idx >= 0) {
		const struct crdt__elem *e = &f->u.es.v[idx];
		nrm = e->ndots;
		if (nrm > 4 && (rm = mesh_malloc(a, nrm * sizeof(*rm))) == NULL)
			goto out;
		memcpy(rm, crdt__elem_dots(e), nrm * sizeof(*rm));
	} else if (replica == NULL) {
		rc = 0;
		goto out;
	}
	if (delta != NULL &&
	    (fd = crdt__ms_make(a, &delta->s, path, depth, CRDT_ORSET)) == NULL)
		goto out;
	struct crdt_dot d;
	if (replica != NULL)
		d = crdt_cc_next_dot(&m->cc, *replica);
	rc = crdt__es_mutate(a, &f->u.es, &m->cc, fd ? &fd->u.es : NULL,
			     delta ? &delta->cc : NULL, elem, len, rm, nrm,
			     replica ? &d : NULL);
out:
	if (rm != stackrm)
		mesh_free(a, rm);
	crdt__ms_prune(a, &m->s, path, depth, CRDT_ORSET);
	if (delta != NULL)
		crdt__ms_prune(a, &delta->s, path, depth, CRDT_ORSET);
	return rc;
}

int
crdt_ormap_orset_add(struct crdt_ormap *m, uint64_t replica,
		     const struct crdt_key *path, size_t depth,
		     const void *elem, size_t len, struct crdt_ormap *delta)
{
	int rc = crdt__path_check(path, depth, CRDT_ORSET);
	if (rc != 0)
		return rc;
	if (len > CRDT_MAX_VALUE)
		return MESH_ETOOBIG;
	return crdt__ormap_es_op(m, path, depth, elem, len, &replica, delta);
}

int
crdt_ormap_orset_remove(struct crdt_ormap *m, const struct crdt_key *path,
			size_t depth, const void *elem, size_t len,
			struct crdt_ormap *delta)
{
	int rc = crdt__path_check(path, depth, CRDT_ORSET);
	if (rc != 0)
		return rc;
	return crdt__ormap_es_op(m, path, depth, elem, len, NULL, delta);
}

int
crdt_ormap_remove(struct crdt_ormap *m, const struct crdt_key *path,
		  size_t depth, enum crdt_kind kind, struct crdt_ormap *delta)
{
	int rc = crdt__path_check(path, depth, kind);
	if (rc != 0)
		return rc;
	struct crdt__field *f = crdt__ms_lookup(&m->s, path, depth, kind);
	if (f == NULL)
		return 0;
	struct crdt__dotbuf b = {NULL, 0, 0};
	rc = MESH_ENOMEM;
	if (crdt__field_dots(m->a, f, &b) != 0)
		goto out;
	if (b.n > 1)
		mesh_sort(b.v, b.n, sizeof(*b.v), crdt__dot_qcmp);
	if (crdt__cc_reserve(&m->cc, b.n) != 0 ||
	    (delta != NULL && crdt__cc_reserve(&delta->cc, b.n) != 0))
		goto out;
	/* Nothing below can fail. The delta holds the field's dots only if
	 * it recorded the mutations that made them. */
	if (delta != NULL) {
		struct crdt__field *fd =
		    crdt__ms_lookup(&delta->s, path, depth, kind);
		if (fd != NULL) {
			crdt__field_drop(m->a, fd, b.v, b.n);
			crdt__ms_prune(m->a, &delta->s, path, depth, kind);
		}
		(void)crdt__cc_add_many(&delta->cc, b.v, b.n);
	}
	crdt__field_drop(m->a, f, b.v, b.n);
	crdt__ms_prune(m->a, &m->s, path, depth, kind);
	(void)crdt__cc_add_many(&m->cc, b.v, b.n);
	rc = 0;
out:
	mesh_free(m->a, b.v);
	return rc;
}

bool
crdt_ormap_has(const struct crdt_ormap *m, const struct crdt_key *path,
	       size_t depth, enum crdt_kind kind)
{
	return crdt__ms_lookup(&m->s, path, depth, kind) != NULL;
}

int
crdt_ormap_counter_value(const struct crdt_ormap *m,
			 const struct crdt_key *path, size_t depth,
			 enum crdt_kind kind, int64_t *value)
{
	if (kind != CRDT_GCOUNTER)
		kind = CRDT_PNCOUNTER;
	const struct crdt__field *f = crdt__ms_lookup(&m->s, path, depth, kind);
	if (f == NULL)
		return MESH_ENOENT;
	uint64_t sum = 0;
	for (size_t i = 0; i < f->u.dvs.n; i++)
		sum += f->u.dvs.v[i].p - f->u.dvs.v[i].n;
	*value =
	    sum <= INT64_MAX ? (int64_t)sum : -(int64_t)(UINT64_MAX - sum) - 1;
	return 0;
}

int
crdt_ormap_lww_get(const struct crdt_ormap *m, const struct crdt_key *path,
		   size_t depth, const void **value, size_t *len)
{
	const struct crdt__field *f =
	    crdt__ms_lookup(&m->s, path, depth, CRDT_LWW);
	if (f == NULL)
		return MESH_ENOENT;
	const struct crdt__dv *best = &f->u.dvs.v[0];
	for (size_t i = 1; i < f->u.dvs.n; i++) {
		const struct crdt__dv *x = &f->u.dvs.v[i];
		int c = crdt_hlc_compare(&x->stamp, &best->stamp);
		if (c > 0 ||
		    (c == 0 &&
		     crdt__bytes_cmp(x->val, x->len, best->val, best->len) > 0))
			best = x;
	}
	*value = best->val;
	*len = best->len;
	return 0;
}

int
crdt_ormap_mv_value(const struct crdt_ormap *m, const struct crdt_key *path,
		    size_t depth, size_t i, const void **value, size_t *len)
{
	const struct crdt__field *f =
	    crdt__ms_lookup(&m->s, path, depth, CRDT_MV);
	if (f == NULL || i >= f->u.dvs.n)
		return MESH_ENOENT;
	*value = f->u.dvs.v[i].val;
	*len = f->u.dvs.v[i].len;
	return 0;
}

bool
crdt_ormap_orset_contains(const struct crdt_ormap *m,
			  const struct crdt_key *path, size_t depth,
			  const void *elem, size_t len)
{
	const struct crdt__field *f =
	    crdt__ms_lookup(&m->s, path, depth, CRDT_ORSET);
	return f != NULL && crdt__es_find(&f->u.es, elem, len) >= 0;
}

size_t
crdt_ormap_orset_count(const struct crdt_ormap *m, const struct crdt_key *path,
		       size_t depth)
{
	const struct crdt__field *f =
	    crdt__ms_lookup(&m->s, path, depth, CRDT_ORSET);
	return f != NULL ? f->u.es.n : 0;
}

int
crdt_ormap_orset_element(const struct crdt_ormap *m,
			 const struct crdt_key *path, size_t depth, size_t i,
			 const void **elem, size_t *len)
{
	const struct crdt__field *f =
	    crdt__ms_lookup(&m->s, path, depth, CRDT_ORSET);
	if (f == NULL || i >= f->u.es.n)
		return MESH_ENOENT;
	*elem = f->u.es.v[i].data;
	*len = f->u.es.v[i].len;
	return 0;
}

static const struct crdt__ms *
crdt__ms_at(const struct crdt_ormap *m, const struct crdt_key *path,
	    size_t depth)
{
	if (depth == 0)
		return &m->s;
	const struct crdt__field *f =
	    crdt__ms_lookup(&m->s, path, depth, CRDT_ORMAP);
	return f != NULL ? &f->u.ms : NULL;
}

size_t
crdt_ormap_count(const struct crdt_ormap *m, const struct crdt_key *path,
		 size_t depth)
{
	const struct crdt__ms *s = crdt__ms_at(m, path, depth);
	return s != NULL ? s->n : 0;
}

int
crdt_ormap_field(const struct crdt_ormap *m, const struct crdt_key *path,
		 size_t depth, size_t i, enum crdt_kind *kind, const void **key,
		 size_t *len)
{
	const struct crdt__ms *s = crdt__ms_at(m, path, depth);
	if (s == NULL || i >= s->n)
		return MESH_ENOENT;
	*kind = s->v[i].kind;
	*key = s->v[i].key;
	*len = s->v[i].len;
	return 0;
}

int
crdt_ormap_join(struct crdt_ormap *dst, const struct crdt_ormap *src)
{
	const struct mesh_allocator *a = dst->a;
	struct crdt_cc empty, cc;
	struct crdt__ms s = {NULL, 0, 0};
	crdt__cc_init(&empty, a);
	crdt__cc_init(&cc, a);
	/* Copy dst (a join with bottom), join src into the copy, swap. */
	if (crdt_cc_join(&cc, &dst->cc) != 0 ||
	    crdt_cc_join(&cc, &src->cc) != 0 ||
	    crdt__ms_join_raw(a, &s, &empty, &dst->s, &empty) != 0 ||
	    crdt__ms_join_raw(a, &s, &dst->cc, &src->s, &src->cc) != 0) {
		crdt__ms_destroy(a, &s);
		crdt__cc_destroy(&cc);
		return MESH_ENOMEM;
	}
	crdt__ms_destroy(a, &dst->s);
	crdt__cc_destroy(&dst->cc);
	dst->s = s;
	dst->cc = cc;
	return 0;
}

bool
crdt_ormap_equal(const struct crdt_ormap *a, const struct crdt_ormap *b)
{
	return crdt__ms_equal(&a->s, &b->s) && crdt_cc_equal(&a->cc, &b->cc);
}

size_t
crdt_ormap_size(const struct crdt_ormap *m)
{
	return sizeof(*m) + crdt__ms_size(&m->s) + crdt_cc_size(&m->cc) -
	       sizeof(m->cc);
}

const struct crdt_cc *
crdt_ormap_context(const struct crdt_ormap *m)
{
	return &m->cc;
}

int
crdt_ormap_add_event(struct crdt_ormap *m, const struct crdt_dot *dot,
		     struct crdt_ormap *delta)
{
	if (dot->counter == 0)
		return MESH_EINVAL;
	if (crdt__cc_reserve(&m->cc, 1) != 0 ||
	    (delta != NULL && crdt__cc_reserve(&delta->cc, 1) != 0))
		return MESH_ENOMEM;
	/* Reserved above: neither add can fail now. */
	(void)crdt_cc_add(&m->cc, dot);
	if (delta != NULL)
		(void)crdt_cc_add(&delta->cc, dot);
	return 0;
}

int
crdt_ormap_narrow_context(struct crdt_ormap *m, const struct crdt_dot *extra,
			  size_t n)
{
	struct crdt__dotbuf b = {NULL, 0, 0};
	struct crdt_cc cc;
	crdt__cc_init(&cc, m->a);
	int rc = MESH_ENOMEM;
	for (size_t i = 0; i < m->s.n; i++)
		if (crdt__field_dots(m->a, &m->s.v[i], &b) != 0)
			goto out;
	if ((n > 0 && crdt__dotbuf_push(m->a, &b, extra, n) != 0) ||
	    crdt__cc_add_many(&cc, b.v, b.n) != 0)
		goto out;
	crdt__cc_destroy(&m->cc);
	m->cc = cc;
	crdt__cc_init(&cc, m->a);
	rc = 0;
out:
	crdt__cc_destroy(&cc);
	mesh_free(m->a, b.v);
	return rc;
}

int
crdt_ormap_only_dot(const struct crdt_ormap *m, struct crdt_dot *dot,
		    size_t *field)
{
	struct crdt__dotbuf b = {NULL, 0, 0};
	int rc = 0;
	size_t at = 0;
	for (size_t i = 0; i < m->s.n && rc == 0 && b.n <= 1; i++) {
		size_t before = b.n;
		if (crdt__field_dots(m->a, &m->s.v[i], &b) != 0)
			rc = MESH_ENOMEM;
		else if (b.n > before)
			at = i;
	}
	if (rc == 0 && b.n != 1)
		rc = MESH_ENOENT;
	if (rc == 0) {
		*dot = b.v[0];
		*field = at;
	}
	mesh_free(m->a, b.v);
	return rc;
}
