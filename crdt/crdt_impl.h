/*
 * crdt_impl.h - representations shared between the files of crdt/, and by
 * tests that check invariants. Not a public API.
 *
 * Causal types (MV-register, OR-set, OR-map) are a dot store plus a causal
 * context, as in the delta-state paper. The stores are kept apart from their
 * context so that an OR-map can embed them and have them share its own:
 *   dvs  dot -> value:   MV-register; inside a map also counters and LWW
 *   es   element -> dots: OR-set
 *   ms   (kind, key) -> store: OR-map
 * Invariant of every state: each dot in the store is in the context, and no
 * dot appears twice in the store.
 */
#ifndef CRDT_IMPL_H
#define CRDT_IMPL_H

#include "crdt.h"

struct crdt_cc {
	const struct mesh_allocator *a;
	/* (replica, n): dots 1..n of replica seen. Sorted by replica, n > 0. */
	struct crdt_dot *vv;
	size_t nvv, cap_vv;
	/* Sorted; each counter > vv(replica) + 1 (else it would be compacted).
	 */
	struct crdt_dot *cloud;
	size_t ncloud, cap_cloud;
};

/* Counter entry; a G-counter is a PN-counter whose n stays 0. */
struct crdt__pn_entry {
	uint64_t replica;
	uint64_t p;
	uint64_t n;
};

struct crdt__pn {
	const struct mesh_allocator *a;
	struct crdt__pn_entry *v; /* sorted by replica; p + n > 0 */
	size_t n, cap;
};

struct crdt_gcounter {
	struct crdt__pn t;
};

struct crdt_pncounter {
	struct crdt__pn t;
};

struct crdt_lww {
	const struct mesh_allocator *a;
	bool set;
	struct crdt_hlc stamp;
	uint8_t *val;
	size_t len, cap;
};

/* One dot-keyed value. Which payload fields mean something depends on the
 * store's kind: MV uses val; counters p and n; LWW stamp and val. */
struct crdt__dv {
	struct crdt_dot dot;
	struct crdt_hlc stamp;
	uint64_t p, n;
	uint8_t *val; /* owned; NULL when len is 0 */
	size_t len;
};

struct crdt__dvs {
	struct crdt__dv *v; /* sorted by dot */
	size_t n, cap;
};

struct crdt__elem {
	uint8_t *data; /* owned; never NULL (1 byte for the empty string) */
	size_t len;
	size_t ndots; /* >= 1 in a state */
	union {
		struct crdt_dot one;   /* ndots == 1 */
		struct crdt_dot *many; /* ndots > 1, sorted */
	} d;
};

struct crdt__es {
	struct crdt__elem *v; /* sorted by (bytes, length) */
	size_t n, cap;
};

struct crdt__field;

struct crdt__ms {
	struct crdt__field *v; /* sorted by (kind, key) */
	size_t n, cap;
};

struct crdt__field {
	enum crdt_kind kind;
	uint8_t *key; /* owned; never NULL */
	size_t len;
	union {
		struct crdt__dvs dvs; /* counters, LWW, MV */
		struct crdt__es es;   /* OR-set */
		struct crdt__ms ms;   /* OR-map */
	} u;
};

struct crdt_mvreg {
	const struct mesh_allocator *a;
	struct crdt__dvs s;
	struct crdt_cc cc;
};

struct crdt_orset {
	const struct mesh_allocator *a;
	struct crdt__es s;
	struct crdt_cc cc;
};

struct crdt_ormap {
	const struct mesh_allocator *a;
	struct crdt__ms s;
	struct crdt_cc cc;
};

/* Byte-string order: memcmp, then shorter first. */
int crdt__bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b,
		    size_t blen);

/* A copy of @len bytes (at least one byte is allocated); NULL on OOM. */
uint8_t *crdt__dup(const struct mesh_allocator *a, const void *p, size_t len);

void crdt__cc_init(struct crdt_cc *cc, const struct mesh_allocator *a);
void crdt__cc_destroy(struct crdt_cc *cc);
/* Adds every dot of @dots (any order). 0 or MESH_ENOMEM (then @cc may hold
 * a prefix of them, which is still a valid context). */
int crdt__cc_add_many(struct crdt_cc *cc, const struct crdt_dot *dots,
		      size_t n);
/* Reserves room so that adding @n more dots cannot fail. */
int crdt__cc_reserve(struct crdt_cc *cc, size_t n);

/* HLC: like crdt_hlc_update() without the offset check. */
int crdt__hlc_observe(struct crdt_hlc_clock *c, uint64_t now_ms,
		      const struct crdt_hlc *remote);

/* Counter table (crdt_counter.c). */
void crdt__pn_destroy(struct crdt__pn *t);

/* dvs (crdt_reg.c). */
void crdt__dvs_destroy(const struct mesh_allocator *a, struct crdt__dvs *s);
/* s := the join of (s, sc) and (o, oc); contexts are the pre-join ones.
 * @o may be NULL (bottom). On MESH_ENOMEM @s is unchanged. */
int crdt__dvs_join(const struct mesh_allocator *a, struct crdt__dvs *s,
		   const struct crdt_cc *sc, const struct crdt__dvs *o,
		   const struct crdt_cc *oc);
/* One mutation applied to a state (s, sc) and, when @d is not NULL, to its
 * delta (d, dc): drops the entries whose dot is in @rm (sorted), inserts
 * @add (value copied) unless the context has seen its dot, then adds @rm and
 * @add's dot to the context. Both change or neither (MESH_ENOMEM). */
int crdt__dvs_mutate(const struct mesh_allocator *a, struct crdt__dvs *s,
		     struct crdt_cc *sc, struct crdt__dvs *d,
		     struct crdt_cc *dc, const struct crdt_dot *rm, size_t nrm,
		     const struct crdt__dv *add);
bool crdt__dvs_equal(const struct crdt__dvs *a, const struct crdt__dvs *b);
size_t crdt__dvs_size(const struct crdt__dvs *s);

/* es (crdt_orset.c). */
void crdt__es_destroy(const struct mesh_allocator *a, struct crdt__es *s);
int crdt__es_join(const struct mesh_allocator *a, struct crdt__es *s,
		  const struct crdt_cc *sc, const struct crdt__es *o,
		  const struct crdt_cc *oc);
/* As crdt__dvs_mutate for element @elem: drops @rm from its dots, adds @add
 * (NULL: none) unless seen, drops the element when no dot is left. @elem
 * may be borrowed from @s. */
int crdt__es_mutate(const struct mesh_allocator *a, struct crdt__es *s,
		    struct crdt_cc *sc, struct crdt__es *d, struct crdt_cc *dc,
		    const void *elem, size_t len, const struct crdt_dot *rm,
		    size_t nrm, const struct crdt_dot *add);
/* Index of @elem, or -1. */
long crdt__es_find(const struct crdt__es *s, const void *elem, size_t len);
const struct crdt_dot *crdt__elem_dots(const struct crdt__elem *e);
bool crdt__es_equal(const struct crdt__es *a, const struct crdt__es *b);
size_t crdt__es_size(const struct crdt__es *s);

/* ms (crdt_ormap.c). */
void crdt__ms_destroy(const struct mesh_allocator *a, struct crdt__ms *s);
void crdt__field_destroy(const struct mesh_allocator *a, struct crdt__field *f);
bool crdt__field_is_empty(const struct crdt__field *f);

#endif
