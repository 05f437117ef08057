/*
 * crdt_codec.c - protobuf encoding of every CRDT (proto/crdt.proto).
 *
 * Encoding builds a protobuf-c message tree in an arena, borrowing byte
 * strings from the state, packs it, and drops the arena. protobuf-c writes
 * fields in number order and skips proto3 defaults, and our stores are
 * sorted and compacted, so equal states give equal bytes.
 *
 * Decoding treats the input as hostile:
 *   - input over CRDT_MAX_ENCODED is refused before parsing (MESH_ETOOBIG);
 *   - protobuf-c parses through an allocator with a budget of
 *     CRDT_DECODE_BUDGET_FACTOR bytes per input byte, so no length or count
 *     in the input can make us allocate more than that (MESH_ETOOBIG);
 *     truncated or malformed wire data fails there (MESH_EDECODE);
 *   - the parse tree is then checked against every invariant of a state:
 *     sorted and unique entries, compacted contexts, non-zero counters, no
 *     empty entries, every dot in the context, no dot twice anywhere, value
 *     sizes, kinds and which fields a kind may set (MESH_EDECODE);
 *   - nested OR-maps arrive as bytes and are parsed here, one level at a
 *     time, at most CRDT_MAX_DEPTH deep, so protobuf-c never recurses on
 *     our behalf.
 */
#include "crdt_impl.h"

#include "crdt.pb-c.h"
#include "mesh_budget.h"
#include "mesh_err.h"
#include "mesh_sort.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Arena for the encoder's message tree.                                    */

struct crdt__chunk {
	struct crdt__chunk *next;
	size_t used, cap;
	max_align_t data[];
};

struct crdt__arena {
	const struct mesh_allocator *a;
	struct crdt__chunk *head;
	bool failed;
};

static void *
crdt__arena_alloc(struct crdt__arena *ar, size_t size)
{
	size = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	if (size == 0)
		size = sizeof(max_align_t);
	struct crdt__chunk *c = ar->head;
	if (c == NULL || c->cap - c->used < size) {
		size_t cap = c == NULL ? 4096 : c->cap * 2;
		if (cap < size)
			cap = size;
		if (cap > SIZE_MAX - sizeof(*c) ||
		    (c = mesh_malloc(ar->a, sizeof(*c) + cap)) == NULL) {
			ar->failed = true;
			return NULL;
		}
		c->next = ar->head;
		c->used = 0;
		c->cap = cap;
		ar->head = c;
	}
	void *p = (uint8_t *)c->data + c->used;
	c->used += size;
	return p;
}

static void
crdt__arena_free(struct crdt__arena *ar)
{
	while (ar->head != NULL) {
		struct crdt__chunk *c = ar->head;
		ar->head = c->next;
		mesh_free(ar->a, c);
	}
}

/* n Dot messages plus the pointer array protobuf-c wants. */
static Crdt__Dot **
crdt__enc_dots(struct crdt__arena *ar, const struct crdt_dot *d, size_t n)
{
	if (n == 0)
		return NULL;
	Crdt__Dot **pp = crdt__arena_alloc(ar, n * sizeof(*pp));
	Crdt__Dot *v = crdt__arena_alloc(ar, n * sizeof(*v));
	if (pp == NULL || v == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		crdt__dot__init(&v[i]);
		v[i].replica = d[i].replica;
		v[i].counter = d[i].counter;
		pp[i] = &v[i];
	}
	return pp;
}

static Crdt__CausalContext *
crdt__enc_cc(struct crdt__arena *ar, const struct crdt_cc *cc)
{
	Crdt__CausalContext *m = crdt__arena_alloc(ar, sizeof(*m));
	if (m == NULL)
		return NULL;
	crdt__causal_context__init(m);
	m->n_vv = cc->nvv;
	m->vv = crdt__enc_dots(ar, cc->vv, cc->nvv);
	m->n_cloud = cc->ncloud;
	m->cloud = crdt__enc_dots(ar, cc->cloud, cc->ncloud);
	return m;
}

static Crdt__Hlc *
crdt__enc_hlc(struct crdt__arena *ar, const struct crdt_hlc *h)
{
	Crdt__Hlc *m = crdt__arena_alloc(ar, sizeof(*m));
	if (m == NULL)
		return NULL;
	crdt__hlc__init(m);
	m->wall_ms = h->wall_ms;
	m->logical = h->logical;
	m->replica = h->replica;
	return m;
}

static Crdt__DotValue **
crdt__enc_dvs(struct crdt__arena *ar, const struct crdt__dvs *s,
	      enum crdt_kind kind)
{
	if (s->n == 0)
		return NULL;
	Crdt__DotValue **pp = crdt__arena_alloc(ar, s->n * sizeof(*pp));
	Crdt__DotValue *v = crdt__arena_alloc(ar, s->n * sizeof(*v));
	if (pp == NULL || v == NULL)
		return NULL;
	for (size_t i = 0; i < s->n; i++) {
		const struct crdt__dv *x = &s->v[i];
		crdt__dot_value__init(&v[i]);
		Crdt__Dot **d = crdt__enc_dots(ar, &x->dot, 1);
		v[i].dot = d ? d[0] : NULL;
		v[i].value.data = x->val;
		v[i].value.len = x->len;
		v[i].p = x->p;
		v[i].n = x->n;
		if (kind == CRDT_LWW)
			v[i].stamp = crdt__enc_hlc(ar, &x->stamp);
		pp[i] = &v[i];
	}
	return pp;
}

static Crdt__OrSetEntry **
crdt__enc_es(struct crdt__arena *ar, const struct crdt__es *s)
{
	if (s->n == 0)
		return NULL;
	Crdt__OrSetEntry **pp = crdt__arena_alloc(ar, s->n * sizeof(*pp));
	Crdt__OrSetEntry *v = crdt__arena_alloc(ar, s->n * sizeof(*v));
	if (pp == NULL || v == NULL)
		return NULL;
	for (size_t i = 0; i < s->n; i++) {
		const struct crdt__elem *e = &s->v[i];
		crdt__or_set_entry__init(&v[i]);
		v[i].element.data = e->data;
		v[i].element.len = e->len;
		v[i].n_dots = e->ndots;
		v[i].dots = crdt__enc_dots(ar, crdt__elem_dots(e), e->ndots);
		pp[i] = &v[i];
	}
	return pp;
}

static Crdt__OrMap *crdt__enc_ms(struct crdt__arena *ar,
				 const struct crdt__ms *s);

static Crdt__OrMapEntry **
crdt__enc_fields(struct crdt__arena *ar, const struct crdt__ms *s)
{
	if (s->n == 0)
		return NULL;
	Crdt__OrMapEntry **pp = crdt__arena_alloc(ar, s->n * sizeof(*pp));
	Crdt__OrMapEntry *v = crdt__arena_alloc(ar, s->n * sizeof(*v));
	if (pp == NULL || v == NULL)
		return NULL;
	for (size_t i = 0; i < s->n; i++) {
		const struct crdt__field *f = &s->v[i];
		crdt__or_map_entry__init(&v[i]);
		v[i].kind = (Crdt__Kind)f->kind;
		v[i].key.data = f->key;
		v[i].key.len = f->len;
		pp[i] = &v[i];
		if (f->kind == CRDT_ORSET) {
			v[i].n_elements = f->u.es.n;
			v[i].elements = crdt__enc_es(ar, &f->u.es);
		} else if (f->kind == CRDT_ORMAP) {
			Crdt__OrMap *sub = crdt__enc_ms(ar, &f->u.ms);
			if (sub == NULL)
				return NULL;
			size_t n = crdt__or_map__get_packed_size(sub);
			uint8_t *b = crdt__arena_alloc(ar, n);
			if (b == NULL)
				return NULL;
			crdt__or_map__pack(sub, b);
			v[i].map.data = b;
			v[i].map.len = n;
		} else {
			v[i].n_values = f->u.dvs.n;
			v[i].values = crdt__enc_dvs(ar, &f->u.dvs, f->kind);
		}
	}
	return pp;
}

static Crdt__OrMap *
crdt__enc_ms(struct crdt__arena *ar, const struct crdt__ms *s)
{
	Crdt__OrMap *m = crdt__arena_alloc(ar, sizeof(*m));
	if (m == NULL)
		return NULL;
	crdt__or_map__init(m);
	m->n_entries = s->n;
	m->entries = crdt__enc_fields(ar, s);
	return m;
}

/* Packs @m (built in @ar) into a buffer from @a. Frees the arena. */
static int
crdt__finish(struct crdt__arena *ar, const ProtobufCMessage *m, uint8_t **buf,
	     size_t *len)
{
	int rc = MESH_ENOMEM;
	*buf = NULL;
	*len = 0;
	if (m != NULL && !ar->failed) {
		size_t n = protobuf_c_message_get_packed_size(m);
		uint8_t *b = mesh_malloc(ar->a, n ? n : 1);
		if (b != NULL) {
			protobuf_c_message_pack(m, b);
			*buf = b;
			*len = n;
			rc = 0;
		}
	}
	crdt__arena_free(ar);
	return rc;
}

int
crdt_cc_encode(const struct crdt_cc *cc, uint8_t **buf, size_t *len)
{
	struct crdt__arena ar = {cc->a, NULL, false};
	Crdt__CausalContext *m = crdt__enc_cc(&ar, cc);
	return crdt__finish(&ar, m ? &m->base : NULL, buf, len);
}

int
crdt_gcounter_encode(const struct crdt_gcounter *c, uint8_t **buf, size_t *len)
{
	struct crdt__arena ar = {c->t.a, NULL, false};
	Crdt__GCounter *m = crdt__arena_alloc(&ar, sizeof(*m));
	if (m != NULL) {
		crdt__gcounter__init(m);
		Crdt__Dot *v = crdt__arena_alloc(&ar, c->t.n * sizeof(*v));
		m->entries =
		    crdt__arena_alloc(&ar, c->t.n * sizeof(*m->entries));
		for (size_t i = 0; v && m->entries && i < c->t.n; i++) {
			crdt__dot__init(&v[i]);
			v[i].replica = c->t.v[i].replica;
			v[i].counter = c->t.v[i].p;
			m->entries[i] = &v[i];
		}
		m->n_entries = c->t.n;
	}
	return crdt__finish(&ar, m ? &m->base : NULL, buf, len);
}

int
crdt_pncounter_encode(const struct crdt_pncounter *c, uint8_t **buf,
		      size_t *len)
{
	struct crdt__arena ar = {c->t.a, NULL, false};
	Crdt__PnCounter *m = crdt__arena_alloc(&ar, sizeof(*m));
	if (m != NULL) {
		crdt__pn_counter__init(m);
		Crdt__PnEntry *v = crdt__arena_alloc(&ar, c->t.n * sizeof(*v));
		m->entries =
		    crdt__arena_alloc(&ar, c->t.n * sizeof(*m->entries));
		for (size_t i = 0; v && m->entries && i < c->t.n; i++) {
			crdt__pn_entry__init(&v[i]);
			v[i].replica = c->t.v[i].replica;
			v[i].p = c->t.v[i].p;
			v[i].n = c->t.v[i].n;
			m->entries[i] = &v[i];
		}
		m->n_entries = c->t.n;
	}
	return crdt__finish(&ar, m ? &m->base : NULL, buf, len);
}

int
crdt_lww_encode(const struct crdt_lww *r, uint8_t **buf, size_t *len)
{
	struct crdt__arena ar = {r->a, NULL, false};
	Crdt__LwwRegister *m = crdt__arena_alloc(&ar, sizeof(*m));
	if (m != NULL) {
		crdt__lww_register__init(m);
		if (r->set) {
			m->stamp = crdt__enc_hlc(&ar, &r->stamp);
			m->value.data = r->val;
			m->value.len = r->len;
		}
	}
	return crdt__finish(&ar, m ? &m->base : NULL, buf, len);
}

int
crdt_mvreg_encode(const struct crdt_mvreg *r, uint8_t **buf, size_t *len)
{
	struct crdt__arena ar = {r->a, NULL, false};
	Crdt__MvRegister *m = crdt__arena_alloc(&ar, sizeof(*m));
	if (m != NULL) {
		crdt__mv_register__init(m);
		m->n_entries = r->s.n;
		m->entries = crdt__enc_dvs(&ar, &r->s, CRDT_MV);
		m->ctx = crdt__enc_cc(&ar, &r->cc);
	}
	return crdt__finish(&ar, m ? &m->base : NULL, buf, len);
}

int
crdt_orset_encode(const struct crdt_orset *s, uint8_t **buf, size_t *len)
{
	struct crdt__arena ar = {s->a, NULL, false};
	Crdt__OrSet *m = crdt__arena_alloc(&ar, sizeof(*m));
	if (m != NULL) {
		crdt__or_set__init(m);
		m->n_entries = s->s.n;
		m->entries = crdt__enc_es(&ar, &s->s);
		m->ctx = crdt__enc_cc(&ar, &s->cc);
	}
	return crdt__finish(&ar, m ? &m->base : NULL, buf, len);
}

int
crdt_ormap_encode(const struct crdt_ormap *mp, uint8_t **buf, size_t *len)
{
	struct crdt__arena ar = {mp->a, NULL, false};
	Crdt__OrMap *m = crdt__enc_ms(&ar, &mp->s);
	if (m != NULL)
		m->ctx = crdt__enc_cc(&ar, &mp->cc);
	return crdt__finish(&ar, m ? &m->base : NULL, buf, len);
}

int
crdt_ormap_field_encode(const struct crdt_ormap *mp, enum crdt_kind kind,
			const void *key, size_t len, uint8_t **buf,
			size_t *blen)
{
	*buf = NULL;
	*blen = 0;
	if (kind < CRDT_GCOUNTER || kind > CRDT_ORMAP || len > CRDT_MAX_VALUE)
		return MESH_EINVAL;
	/* A one-field view of the map's store: borrowed, never freed. */
	for (size_t i = 0; i < mp->s.n; i++) {
		const struct crdt__field *f = &mp->s.v[i];
		if (f->kind != kind ||
		    crdt__bytes_cmp(f->key, f->len, key, len) != 0)
			continue;
		struct crdt__ms one = {(struct crdt__field *)f, 1, 1};
		struct crdt__arena ar = {mp->a, NULL, false};
		Crdt__OrMap *m = crdt__enc_ms(&ar, &one);
		return crdt__finish(&ar, m ? &m->base : NULL, buf, blen);
	}
	return MESH_ENOENT;
}

/* ------------------------------------------------------------------------ */
/* Decoding.                                                                */

/* protobuf-c allocator that counts live bytes against a budget. */
struct crdt__budget {
	ProtobufCAllocator pc;
	struct mesh_budget m;
};

static void
crdt__budget_init(struct crdt__budget *b, const struct mesh_allocator *a,
		  size_t len)
{
	mesh_budget_init(&b->m, a,
			 len * CRDT_DECODE_BUDGET_FACTOR + (64u << 10));
	b->pc.alloc = mesh_budget_alloc;
	b->pc.free = mesh_budget_free;
	b->pc.allocator_data = &b->m;
}

/* Checks the size, unpacks. On failure *@rc says why. */
static ProtobufCMessage *
crdt__unpack(struct crdt__budget *b, const ProtobufCMessageDescriptor *desc,
	     const uint8_t *buf, size_t len, int *rc)
{
	if (buf == NULL && len != 0) {
		*rc = MESH_EINVAL;
		return NULL;
	}
	if (len > CRDT_MAX_ENCODED) {
		*rc = MESH_ETOOBIG;
		return NULL;
	}
	static const uint8_t none[1];
	ProtobufCMessage *m =
	    protobuf_c_message_unpack(desc, &b->pc, len, len ? buf : none);
	if (m == NULL)
		*rc = b->m.oom	  ? MESH_ENOMEM
		      : b->m.over ? MESH_ETOOBIG
				  : MESH_EDECODE;
	else
		*rc = 0;
	return m;
}

/* Every dot a decoded store holds, to find one used twice. */
struct crdt__seen {
	const struct mesh_allocator *a;
	struct crdt_dot *v;
	size_t n, cap;
};

static int
crdt__seen_add(struct crdt__seen *s, const struct crdt_dot *d)
{
	if (mesh_grow(s->a, (void **)&s->v, &s->cap, s->n + 1, sizeof(*s->v)) !=
	    0)
		return MESH_ENOMEM;
	s->v[s->n++] = *d;
	return 0;
}

static int
crdt__dot_qcmp(const void *a, const void *b)
{
	return crdt_dot_compare(a, b);
}

static int
crdt__seen_check(struct crdt__seen *s)
{
	if (s->n < 2)
		return 0;
	mesh_sort(s->v, s->n, sizeof(*s->v), crdt__dot_qcmp);
	for (size_t i = 1; i < s->n; i++)
		if (crdt_dot_compare(&s->v[i - 1], &s->v[i]) == 0)
			return MESH_EDECODE;
	return 0;
}

static int
crdt__dec_cc(const Crdt__CausalContext *m, struct crdt_cc *cc)
{
	if (m == NULL)
		return 0;
	if ((m->n_vv != 0 &&
	     (cc->vv = mesh_calloc(cc->a, m->n_vv, sizeof(*cc->vv))) == NULL) ||
	    (m->n_cloud != 0 &&
	     (cc->cloud = mesh_calloc(cc->a, m->n_cloud, sizeof(*cc->cloud))) ==
		 NULL))
		return MESH_ENOMEM;
	cc->cap_vv = m->n_vv;
	cc->cap_cloud = m->n_cloud;
	for (size_t i = 0; i < m->n_vv; i++) {
		const Crdt__Dot *d = m->vv[i];
		if (d->counter == 0 ||
		    (i > 0 && d->replica <= cc->vv[i - 1].replica))
			return MESH_EDECODE;
		cc->vv[cc->nvv++] = (struct crdt_dot){d->replica, d->counter};
	}
	for (size_t i = 0; i < m->n_cloud; i++) {
		struct crdt_dot d = {m->cloud[i]->replica,
				     m->cloud[i]->counter};
		/* Compacted: strictly above vv + 1 (which also rules out 0). */
		uint64_t top = crdt_cc_vv(cc, d.replica);
		if (d.counter <= top || d.counter - top < 2 ||
		    (i > 0 && crdt_dot_compare(&cc->cloud[i - 1], &d) >= 0))
			return MESH_EDECODE;
		cc->cloud[cc->ncloud++] = d;
	}
	return 0;
}

/* A store's dot: non-zero, seen by the context, recorded in @seen. */
static int
crdt__dec_dot(const Crdt__Dot *m, const struct crdt_cc *cc,
	      struct crdt__seen *seen, struct crdt_dot *out)
{
	if (m == NULL || m->counter == 0)
		return MESH_EDECODE;
	*out = (struct crdt_dot){m->replica, m->counter};
	if (!crdt_cc_contains(cc, out))
		return MESH_EDECODE;
	return crdt__seen_add(seen, out);
}

static int
crdt__dec_dvs(const struct mesh_allocator *a, Crdt__DotValue *const *v,
	      size_t n, enum crdt_kind kind, const struct crdt_cc *cc,
	      struct crdt__seen *seen, struct crdt__dvs *out)
{
	if (n == 0)
		return 0;
	if ((out->v = mesh_calloc(a, n, sizeof(*out->v))) == NULL)
		return MESH_ENOMEM;
	out->cap = n;
	for (size_t i = 0; i < n; i++) {
		const Crdt__DotValue *m = v[i];
		struct crdt__dv x;
		memset(&x, 0, sizeof(x));
		int rc = crdt__dec_dot(m->dot, cc, seen, &x.dot);
		if (rc != 0)
			return rc;
		/* Sorted, and one dot per replica (crdt__dvs_latest). */
		if (i > 0 &&
		    (crdt_dot_compare(&out->v[i - 1].dot, &x.dot) >= 0 ||
		     out->v[i - 1].dot.replica == x.dot.replica))
			return MESH_EDECODE;
		bool counter = kind == CRDT_GCOUNTER || kind == CRDT_PNCOUNTER;
		if (m->value.len > CRDT_MAX_VALUE ||
		    (counter && m->value.len != 0) ||
		    (!counter && (m->p != 0 || m->n != 0)) ||
		    (counter && m->p == 0 && m->n == 0) ||
		    (kind == CRDT_GCOUNTER && m->n != 0) ||
		    ((kind == CRDT_LWW) != (m->stamp != NULL)))
			return MESH_EDECODE;
		x.p = m->p;
		x.n = m->n;
		if (m->stamp != NULL)
			x.stamp = (struct crdt_hlc){m->stamp->wall_ms,
						    m->stamp->logical,
						    m->stamp->replica};
		if (m->value.len != 0) {
			x.len = m->value.len;
			if ((x.val = crdt__dup(a, m->value.data, x.len)) ==
			    NULL)
				return MESH_ENOMEM;
		}
		out->v[out->n++] = x;
	}
	return 0;
}

static int
crdt__dec_es(const struct mesh_allocator *a, Crdt__OrSetEntry *const *v,
	     size_t n, const struct crdt_cc *cc, struct crdt__seen *seen,
	     struct crdt__es *out)
{
	if (n == 0)
		return 0;
	if ((out->v = mesh_calloc(a, n, sizeof(*out->v))) == NULL)
		return MESH_ENOMEM;
	out->cap = n;
	for (size_t i = 0; i < n; i++) {
		const Crdt__OrSetEntry *m = v[i];
		if (m->element.len > CRDT_MAX_VALUE || m->n_dots == 0)
			return MESH_EDECODE;
		if (i > 0 &&
		    crdt__bytes_cmp(out->v[i - 1].data, out->v[i - 1].len,
				    m->element.data, m->element.len) >= 0)
			return MESH_EDECODE;
		struct crdt__elem *e = &out->v[out->n];
		e->len = m->element.len;
		if ((e->data = crdt__dup(a, m->element.data, e->len)) == NULL)
			return MESH_ENOMEM;
		if (m->n_dots > 1 &&
		    (e->d.many = mesh_calloc(a, m->n_dots,
					     sizeof(*e->d.many))) == NULL) {
			mesh_free(a, e->data);
			return MESH_ENOMEM;
		}
		e->ndots = m->n_dots;
		out->n++; /* from here on destroy owns it */
		struct crdt_dot *ds = e->ndots > 1 ? e->d.many : &e->d.one;
		for (size_t j = 0; j < m->n_dots; j++) {
			int rc = crdt__dec_dot(m->dots[j], cc, seen, &ds[j]);
			if (rc != 0)
				return rc;
			if (j > 0 &&
			    (crdt_dot_compare(&ds[j - 1], &ds[j]) >= 0 ||
			     ds[j - 1].replica == ds[j].replica))
				return MESH_EDECODE;
		}
	}
	return 0;
}

static int crdt__dec_ms(const struct mesh_allocator *a, struct crdt__budget *b,
			const Crdt__OrMap *m, const struct crdt_cc *cc,
			struct crdt__seen *seen, unsigned depth,
			struct crdt__ms *out);

static int
crdt__dec_field(const struct mesh_allocator *a, struct crdt__budget *b,
		const Crdt__OrMapEntry *m, const struct crdt_cc *cc,
		struct crdt__seen *seen, unsigned depth, struct crdt__field *f)
{
	switch (f->kind) {
	case CRDT_ORSET:
		if (m->n_values != 0 || m->map.len != 0 || m->n_elements == 0)
			return MESH_EDECODE;
		return crdt__dec_es(a, m->elements, m->n_elements, cc, seen,
				    &f->u.es);
	case CRDT_ORMAP: {
		if (m->n_values != 0 || m->n_elements != 0 || m->map.len == 0 ||
		    depth >= CRDT_MAX_DEPTH)
			return MESH_EDECODE;
		int rc;
		Crdt__OrMap *sub = (Crdt__OrMap *)crdt__unpack(
		    b, &crdt__or_map__descriptor, m->map.data, m->map.len, &rc);
		if (sub == NULL)
			return rc;
		if (sub->ctx != NULL || sub->n_entries == 0)
			rc = MESH_EDECODE;
		else
			rc = crdt__dec_ms(a, b, sub, cc, seen, depth + 1,
					  &f->u.ms);
		protobuf_c_message_free_unpacked(&sub->base, &b->pc);
		return rc;
	}
	default:
		if (m->n_elements != 0 || m->map.len != 0 || m->n_values == 0)
			return MESH_EDECODE;
		return crdt__dec_dvs(a, m->values, m->n_values, f->kind, cc,
				     seen, &f->u.dvs);
	}
}

static int
crdt__dec_ms(const struct mesh_allocator *a, struct crdt__budget *b,
	     const Crdt__OrMap *m, const struct crdt_cc *cc,
	     struct crdt__seen *seen, unsigned depth, struct crdt__ms *out)
{
	if (m->n_entries == 0)
		return 0;
	if ((out->v = mesh_calloc(a, m->n_entries, sizeof(*out->v))) == NULL)
		return MESH_ENOMEM;
	out->cap = m->n_entries;
	for (size_t i = 0; i < m->n_entries; i++) {
		const Crdt__OrMapEntry *e = m->entries[i];
		enum crdt_kind kind = (enum crdt_kind)e->kind;
		if (e->kind < CRDT__KIND__KIND_GCOUNTER ||
		    e->kind > CRDT__KIND__KIND_ORMAP ||
		    e->key.len > CRDT_MAX_VALUE)
			return MESH_EDECODE;
		if (i > 0) {
			const struct crdt__field *p = &out->v[i - 1];
			if (p->kind > kind ||
			    (p->kind == kind &&
			     crdt__bytes_cmp(p->key, p->len, e->key.data,
					     e->key.len) >= 0))
				return MESH_EDECODE;
		}
		struct crdt__field *f = &out->v[out->n];
		f->kind = kind;
		f->len = e->key.len;
		if ((f->key = crdt__dup(a, e->key.data, f->len)) == NULL)
			return MESH_ENOMEM;
		out->n++;
		int rc = crdt__dec_field(a, b, e, cc, seen, depth, f);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* The common frame of the causal decoders. */
struct crdt__dec {
	struct crdt__budget b;
	struct crdt__seen seen;
	ProtobufCMessage *msg;
};

static int
crdt__dec_begin(struct crdt__dec *d, const struct mesh_allocator *a,
		const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
		size_t len)
{
	int rc;
	crdt__budget_init(&d->b, a, len);
	memset(&d->seen, 0, sizeof(d->seen));
	d->seen.a = a;
	d->msg = crdt__unpack(&d->b, desc, buf, len, &rc);
	return rc;
}

static int
crdt__dec_end(struct crdt__dec *d, int rc)
{
	if (rc == 0)
		rc = crdt__seen_check(&d->seen);
	if (d->msg != NULL)
		protobuf_c_message_free_unpacked(d->msg, &d->b.pc);
	mesh_free(d->seen.a, d->seen.v);
	return rc;
}

int
crdt_cc_decode(const struct mesh_allocator *a, const uint8_t *buf, size_t len,
	       struct crdt_cc **out)
{
	struct crdt__dec d;
	*out = NULL;
	int rc =
	    crdt__dec_begin(&d, a, &crdt__causal_context__descriptor, buf, len);
	struct crdt_cc *cc = NULL;
	if (rc == 0 && (cc = crdt_cc_new(a)) == NULL)
		rc = MESH_ENOMEM;
	if (rc == 0)
		rc = crdt__dec_cc((Crdt__CausalContext *)d.msg, cc);
	rc = crdt__dec_end(&d, rc);
	if (rc != 0)
		crdt_cc_free(cc);
	else
		*out = cc;
	return rc;
}

static int
crdt__dec_pn(const struct mesh_allocator *a, const uint8_t *buf, size_t len,
	     bool g, struct crdt__pn *t)
{
	struct crdt__dec d;
	int rc = crdt__dec_begin(&d, a,
				 g ? &crdt__gcounter__descriptor
				   : &crdt__pn_counter__descriptor,
				 buf, len);
	if (rc != 0)
		return crdt__dec_end(&d, rc);
	size_t n = g ? ((Crdt__GCounter *)d.msg)->n_entries
		     : ((Crdt__PnCounter *)d.msg)->n_entries;
	if (n != 0 && (t->v = mesh_calloc(a, n, sizeof(*t->v))) == NULL)
		return crdt__dec_end(&d, MESH_ENOMEM);
	t->cap = n;
	for (size_t i = 0; i < n; i++) {
		struct crdt__pn_entry e = {0, 0, 0};
		if (g) {
			const Crdt__Dot *m =
			    ((Crdt__GCounter *)d.msg)->entries[i];
			e.replica = m->replica;
			e.p = m->counter;
		} else {
			const Crdt__PnEntry *m =
			    ((Crdt__PnCounter *)d.msg)->entries[i];
			e = (struct crdt__pn_entry){m->replica, m->p, m->n};
		}
		if ((e.p == 0 && e.n == 0) ||
		    (i > 0 && t->v[i - 1].replica >= e.replica))
			return crdt__dec_end(&d, MESH_EDECODE);
		t->v[t->n++] = e;
	}
	return crdt__dec_end(&d, 0);
}

int
crdt_gcounter_decode(const struct mesh_allocator *a, const uint8_t *buf,
		     size_t len, struct crdt_gcounter **out)
{
	*out = crdt_gcounter_new(a);
	if (*out == NULL)
		return MESH_ENOMEM;
	int rc = crdt__dec_pn(a, buf, len, true, &(*out)->t);
	if (rc != 0) {
		crdt_gcounter_free(*out);
		*out = NULL;
	}
	return rc;
}

int
crdt_pncounter_decode(const struct mesh_allocator *a, const uint8_t *buf,
		      size_t len, struct crdt_pncounter **out)
{
	*out = crdt_pncounter_new(a);
	if (*out == NULL)
		return MESH_ENOMEM;
	int rc = crdt__dec_pn(a, buf, len, false, &(*out)->t);
	if (rc != 0) {
		crdt_pncounter_free(*out);
		*out = NULL;
	}
	return rc;
}

int
crdt_lww_decode(const struct mesh_allocator *a, const uint8_t *buf, size_t len,
		struct crdt_lww **out)
{
	struct crdt__dec d;
	struct crdt_lww *r = NULL;
	*out = NULL;
	int rc =
	    crdt__dec_begin(&d, a, &crdt__lww_register__descriptor, buf, len);
	if (rc == 0 && (r = crdt_lww_new(a)) == NULL)
		rc = MESH_ENOMEM;
	if (rc == 0) {
		const Crdt__LwwRegister *m = (Crdt__LwwRegister *)d.msg;
		if (m->value.len > CRDT_MAX_VALUE ||
		    (m->stamp == NULL && m->value.len != 0))
			rc = MESH_EDECODE;
		else if (m->stamp != NULL) {
			if (m->value.len != 0 &&
			    (r->val = crdt__dup(a, m->value.data,
						m->value.len)) == NULL)
				rc = MESH_ENOMEM;
			r->len = r->cap = m->value.len;
			r->set = true;
			r->stamp = (struct crdt_hlc){m->stamp->wall_ms,
						     m->stamp->logical,
						     m->stamp->replica};
		}
	}
	rc = crdt__dec_end(&d, rc);
	if (rc != 0)
		crdt_lww_free(r);
	else
		*out = r;
	return rc;
}

int
crdt_mvreg_decode(const struct mesh_allocator *a, const uint8_t *buf,
		  size_t len, struct crdt_mvreg **out)
{
	struct crdt__dec d;
	struct crdt_mvreg *r = NULL;
	*out = NULL;
	int rc =
	    crdt__dec_begin(&d, a, &crdt__mv_register__descriptor, buf, len);
	if (rc == 0 && (r = crdt_mvreg_new(a)) == NULL)
		rc = MESH_ENOMEM;
	if (rc == 0) {
		const Crdt__MvRegister *m = (Crdt__MvRegister *)d.msg;
		rc = crdt__dec_cc(m->ctx, &r->cc);
		if (rc == 0)
			rc = crdt__dec_dvs(a, m->entries, m->n_entries, CRDT_MV,
					   &r->cc, &d.seen, &r->s);
	}
	rc = crdt__dec_end(&d, rc);
	if (rc != 0)
		crdt_mvreg_free(r);
	else
		*out = r;
	return rc;
}

int
crdt_orset_decode(const struct mesh_allocator *a, const uint8_t *buf,
		  size_t len, struct crdt_orset **out)
{
	struct crdt__dec d;
	struct crdt_orset *s = NULL;
	*out = NULL;
	int rc = crdt__dec_begin(&d, a, &crdt__or_set__descriptor, buf, len);
	if (rc == 0 && (s = crdt_orset_new(a)) == NULL)
		rc = MESH_ENOMEM;
	if (rc == 0) {
		const Crdt__OrSet *m = (Crdt__OrSet *)d.msg;
		rc = crdt__dec_cc(m->ctx, &s->cc);
		if (rc == 0)
			rc = crdt__dec_es(a, m->entries, m->n_entries, &s->cc,
					  &d.seen, &s->s);
	}
	rc = crdt__dec_end(&d, rc);
	if (rc != 0)
		crdt_orset_free(s);
	else
		*out = s;
	return rc;
}

int
crdt_ormap_decode(const struct mesh_allocator *a, const uint8_t *buf,
		  size_t len, struct crdt_ormap **out)
{
	struct crdt__dec d;
	struct crdt_ormap *mp = NULL;
	*out = NULL;
	int rc = crdt__dec_begin(&d, a, &crdt__or_map__descriptor, buf, len);
	if (rc == 0 && (mp = crdt_ormap_new(a)) == NULL)
		rc = MESH_ENOMEM;
	if (rc == 0) {
		const Crdt__OrMap *m = (Crdt__OrMap *)d.msg;
		rc = crdt__dec_cc(m->ctx, &mp->cc);
		if (rc == 0)
			rc = crdt__dec_ms(a, &d.b, m, &mp->cc, &d.seen, 0,
					  &mp->s);
	}
	rc = crdt__dec_end(&d, rc);
	if (rc != 0)
		crdt_ormap_free(mp);
	else
		*out = mp;
	return rc;
}

int
crdt_ormap_decode_parts(const struct mesh_allocator *a,
			const uint8_t *const *fields, const size_t *lens,
			size_t n, const uint8_t *cc, size_t cc_len,
			struct crdt_ormap **out)
{
	/* Protobuf merges concatenated messages: repeated entries append and
	 * the context comes in as field 2 (tag 0x12, length-delimited). So the
	 * parts glued together are one crdt.OrMap, checked in full. */
	*out = NULL;
	size_t total = 1 + 10 + cc_len;
	for (size_t i = 0; i < n; i++) {
		if (lens[i] > CRDT_MAX_ENCODED)
			return MESH_ETOOBIG;
		total += lens[i];
	}
	if (total > CRDT_MAX_ENCODED)
		return MESH_ETOOBIG;
	uint8_t *b = mesh_malloc(a, total);
	if (b == NULL)
		return MESH_ENOMEM;
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		if (lens[i] > 0)
			memcpy(b + off, fields[i], lens[i]);
		off += lens[i];
	}
	if (cc_len > 0) {
		b[off++] = 0x12;
		size_t v = cc_len;
		while (v >= 0x80) {
			b[off++] = (uint8_t)(v | 0x80);
			v >>= 7;
		}
		b[off++] = (uint8_t)v;
		memcpy(b + off, cc, cc_len);
		off += cc_len;
	}
	int rc = crdt_ormap_decode(a, b, off, out);
	mesh_free(a, b);
	return rc;
}
