/*
 * test_crdt.c - behaviour of crdt/ one case at a time: causal contexts, HLC
 * under skewed clocks, the semantics of each type (add wins, concurrent
 * values, OR-map remove against update), allocation behaviour, hostile
 * decoder input and allocation failure. The randomized properties are in
 * test_crdt_prop.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "crdt.h"
#include "crdt.pb-c.h"
#include "mesh_err.h"
#include "test_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct test_env T;
static const struct mesh_allocator *A;

static int
setup(void **state)
{
	(void)state;
	test_env_init(&T);
	A = &T.alloc.base;
	return 0;
}

/* Every test must give back all it allocated. */
static int
teardown(void **state)
{
	(void)state;
	assert_int_equal(T.alloc.live, 0);
	return 0;
}

static struct crdt_dot
dot(uint64_t r, uint64_t c)
{
	return (struct crdt_dot){r, c};
}

static void
test_crdt_cc_compaction(void **state)
{
	(void)state;
	struct crdt_cc *cc = crdt_cc_new(A);
	struct crdt_dot d;
	/* Out of order: 3 and 5 wait in the cloud until 1, 2 and 4 come. */
	d = dot(7, 3);
	assert_int_equal(crdt_cc_add(cc, &d), 0);
	d = dot(7, 5);
	assert_int_equal(crdt_cc_add(cc, &d), 0);
	assert_int_equal(crdt_cc_cloud_size(cc), 2);
	assert_int_equal(crdt_cc_vv(cc, 7), 0);
	d = dot(7, 1);
	assert_int_equal(crdt_cc_add(cc, &d), 0);
	assert_int_equal(crdt_cc_vv(cc, 7), 1);
	d = dot(7, 2);
	assert_int_equal(crdt_cc_add(cc, &d), 0);
	assert_int_equal(crdt_cc_vv(cc, 7), 3);
	assert_int_equal(crdt_cc_cloud_size(cc), 1);
	d = dot(7, 4);
	assert_false(crdt_cc_contains(cc, &d));
	assert_int_equal(crdt_cc_add(cc, &d), 0);
	assert_int_equal(crdt_cc_vv(cc, 7), 5);
	assert_int_equal(crdt_cc_cloud_size(cc), 0);
	assert_true(crdt_cc_contains(cc, &d));
	d = crdt_cc_next_dot(cc, 7);
	assert_int_equal(d.counter, 6);
	d = dot(7, 0);
	assert_int_equal(crdt_cc_add(cc, &d), MESH_EINVAL);

	/* Join compacts across both sides: {8:1, 8:3} join {8:2} = vv 8:3. */
	struct crdt_cc *x = crdt_cc_new(A), *y = crdt_cc_new(A);
	d = dot(8, 1);
	crdt_cc_add(x, &d);
	d = dot(8, 3);
	crdt_cc_add(x, &d);
	d = dot(8, 2);
	crdt_cc_add(y, &d);
	d = dot(9, 4);
	crdt_cc_add(y, &d);
	assert_int_equal(crdt_cc_join(x, y), 0);
	assert_int_equal(crdt_cc_vv(x, 8), 3);
	assert_int_equal(crdt_cc_cloud_size(x), 1); /* 9:4 */
	d = crdt_cc_next_dot(x, 9);
	assert_int_equal(d.counter, 5);
	crdt_cc_free(x);
	crdt_cc_free(y);
	crdt_cc_free(cc);
}

static void
test_crdt_hlc_orders_causal_writes_despite_skew(void **state)
{
	(void)state;
	struct crdt_hlc_clock fast, slow;
	crdt_hlc_init(&fast, 1, 0);
	crdt_hlc_init(&slow, 2, 0);
	struct crdt_lww *ra = crdt_lww_new(A), *rb = crdt_lww_new(A);
	/* Replica 1's clock runs 10 s ahead of replica 2's. */
	assert_int_equal(crdt_lww_set(ra, &fast, 20000, "first", 5, NULL), 0);
	assert_int_equal(crdt_lww_join(rb, ra), 0);
	/* Replica 2 saw "first" and overwrites it at its own (earlier) wall
	 * time: the later write must still win, everywhere. */
	assert_int_equal(crdt_lww_set(rb, &slow, 10000, "second", 6, NULL), 0);
	assert_int_equal(crdt_lww_join(ra, rb), 0);
	const void *v;
	size_t n;
	struct crdt_hlc st;
	assert_true(crdt_lww_get(ra, &v, &n, &st));
	assert_int_equal(n, 6);
	assert_memory_equal(v, "second", 6);
	assert_int_equal(st.wall_ms, 20000);
	/* Receiving (20000, 0) was one event, the write is the next. */
	assert_int_equal(st.logical, 2);
	assert_int_equal(st.replica, 2);
	assert_true(crdt_lww_equal(ra, rb));

	/* Receive rule: a stamp too far ahead is refused, clock unchanged. */
	struct crdt_hlc_clock c;
	crdt_hlc_init(&c, 3, 1000);
	struct crdt_hlc far = {.wall_ms = 5000, .logical = 0, .replica = 1};
	assert_int_equal(crdt_hlc_update(&c, 1000, &far, NULL), MESH_ERANGE);
	assert_int_equal(c.last.wall_ms, 0);
	struct crdt_hlc near = {.wall_ms = 1500, .logical = 7, .replica = 1};
	struct crdt_hlc out;
	assert_int_equal(crdt_hlc_update(&c, 1000, &near, &out), 0);
	assert_int_equal(out.wall_ms, 1500);
	assert_int_equal(out.logical, 8);
	/* Physical time going backwards still gives increasing stamps. */
	struct crdt_hlc s1, s2;
	assert_int_equal(crdt_hlc_now(&c, 900, &s1), 0);
	assert_int_equal(crdt_hlc_now(&c, 800, &s2), 0);
	assert_true(crdt_hlc_compare(&s1, &out) > 0);
	assert_true(crdt_hlc_compare(&s2, &s1) > 0);
	/* The logical part refuses to wrap. */
	c.last.logical = UINT32_MAX;
	assert_int_equal(crdt_hlc_now(&c, 0, &s1), MESH_ERANGE);
	crdt_lww_free(ra);
	crdt_lww_free(rb);
}

static void
test_crdt_counters_values_and_overflow(void **state)
{
	(void)state;
	struct crdt_gcounter *g = crdt_gcounter_new(A);
	assert_int_equal(crdt_gcounter_inc(g, 1, 5, NULL), 0);
	assert_int_equal(crdt_gcounter_inc(g, 2, 7, NULL), 0);
	assert_int_equal(crdt_gcounter_value(g), 12);
	assert_int_equal(crdt_gcounter_inc(g, 1, UINT64_MAX, NULL),
			 MESH_ERANGE);
	assert_int_equal(crdt_gcounter_value(g), 12);
	crdt_gcounter_free(g);

	struct crdt_pncounter *a = crdt_pncounter_new(A);
	struct crdt_pncounter *b = crdt_pncounter_new(A);
	struct crdt_pncounter *d = crdt_pncounter_new(A);
	assert_int_equal(crdt_pncounter_add(a, 1, 10, NULL), 0);
	assert_int_equal(crdt_pncounter_add(b, 2, -25, d), 0);
	assert_int_equal(crdt_pncounter_add(b, 2, 5, d), 0);
	assert_int_equal(crdt_pncounter_value(d), -20);
	assert_int_equal(crdt_pncounter_join(a, d), 0);
	assert_int_equal(crdt_pncounter_join(a, d), 0);
	assert_int_equal(crdt_pncounter_value(a), -10);
	/* Decrements up to 2^64 - 1 in total, INT64_MIN included. */
	assert_int_equal(crdt_pncounter_add(a, 3, INT64_MIN, NULL), 0);
	assert_int_equal(crdt_pncounter_add(a, 3, INT64_MIN + 1, NULL), 0);
	assert_int_equal(crdt_pncounter_add(a, 3, -1, NULL), MESH_ERANGE);
	assert_int_equal(crdt_pncounter_value(a), -10 + 1);
	crdt_pncounter_free(a);
	crdt_pncounter_free(b);
	crdt_pncounter_free(d);
}

static void
test_crdt_counter_increment_allocates_nothing(void **state)
{
	(void)state;
	struct crdt_pncounter *c = crdt_pncounter_new(A);
	struct crdt_pncounter *d = crdt_pncounter_new(A);
	struct crdt_gcounter *g = crdt_gcounter_new(A);
	struct crdt_gcounter *gd = crdt_gcounter_new(A);
	/* First use of a replica makes its entry. */
	assert_int_equal(crdt_pncounter_add(c, 42, 1, d), 0);
	assert_int_equal(crdt_gcounter_inc(g, 42, 1, gd), 0);
	size_t before = T.alloc.allocs;
	for (int i = 0; i < 10000; i++) {
		crdt_pncounter_clear(d);
		assert_int_equal(crdt_pncounter_add(c, 42, i & 1 ? 1 : -1, d),
				 0);
		crdt_gcounter_clear(gd);
		assert_int_equal(crdt_gcounter_inc(g, 42, 2, gd), 0);
	}
	assert_int_equal(T.alloc.allocs, before);
	assert_int_equal(crdt_pncounter_value(c), 1);
	assert_int_equal(crdt_gcounter_value(g), 20001);
	crdt_pncounter_free(c);
	crdt_pncounter_free(d);
	crdt_gcounter_free(g);
	crdt_gcounter_free(gd);
}

static void
test_crdt_mvreg_keeps_concurrent_values(void **state)
{
	(void)state;
	struct crdt_mvreg *a = crdt_mvreg_new(A), *b = crdt_mvreg_new(A);
	assert_int_equal(crdt_mvreg_set(a, 1, "x", 1, NULL), 0);
	assert_int_equal(crdt_mvreg_set(b, 2, "y", 1, NULL), 0);
	assert_int_equal(crdt_mvreg_join(a, b), 0);
	assert_int_equal(crdt_mvreg_count(a), 2);
	const void *v;
	size_t n;
	assert_int_equal(crdt_mvreg_value(a, 0, &v, &n), 0);
	assert_memory_equal(v, "x", 1);
	assert_int_equal(crdt_mvreg_value(a, 1, &v, &n), 0);
	assert_memory_equal(v, "y", 1);
	assert_int_equal(crdt_mvreg_value(a, 2, &v, &n), MESH_ENOENT);
	/* A write that saw both replaces both, at b too. */
	struct crdt_mvreg *d = crdt_mvreg_new(A);
	assert_int_equal(crdt_mvreg_set(a, 1, "z", 1, d), 0);
	assert_int_equal(crdt_mvreg_count(a), 1);
	assert_int_equal(crdt_mvreg_join(b, d), 0);
	assert_int_equal(crdt_mvreg_count(b), 1);
	assert_int_equal(crdt_mvreg_value(b, 0, &v, &n), 0);
	assert_memory_equal(v, "z", 1);
	crdt_mvreg_free(a);
	crdt_mvreg_free(b);
	crdt_mvreg_free(d);
}

static void
test_crdt_orset_add_wins(void **state)
{
	(void)state;
	struct crdt_orset *a = crdt_orset_new(A), *b = crdt_orset_new(A);
	struct crdt_orset *da = crdt_orset_new(A), *db = crdt_orset_new(A);
	assert_int_equal(crdt_orset_add(a, 1, "k", 1, NULL), 0);
	assert_int_equal(crdt_orset_join(b, a), 0);
	/* Concurrently: a removes k, b re-adds k. */
	assert_int_equal(crdt_orset_remove(a, "k", 1, da), 0);
	assert_false(crdt_orset_contains(a, "k", 1));
	assert_int_equal(crdt_orset_add(b, 2, "k", 1, db), 0);
	assert_int_equal(crdt_orset_join(a, db), 0);
	assert_int_equal(crdt_orset_join(b, da), 0);
	assert_true(crdt_orset_contains(a, "k", 1));
	assert_true(crdt_orset_equal(a, b));
	/* A remove that observed every add does remove, and leaves nothing
	 * behind but the causal context. */
	crdt_orset_clear(da);
	assert_int_equal(crdt_orset_remove(a, "k", 1, da), 0);
	assert_int_equal(crdt_orset_join(b, da), 0);
	assert_false(crdt_orset_contains(b, "k", 1));
	assert_int_equal(crdt_orset_count(b), 0);
	assert_true(crdt_orset_equal(a, b));
	/* Removing what is absent is a no-op. */
	assert_int_equal(crdt_orset_remove(a, "nope", 4, NULL), 0);
	/* Iteration is sorted, shorter first. */
	crdt_orset_add(a, 1, "bb", 2, NULL);
	crdt_orset_add(a, 1, "b", 1, NULL);
	crdt_orset_add(a, 1, "", 0, NULL);
	const void *e;
	size_t n;
	assert_int_equal(crdt_orset_element(a, 0, &e, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(crdt_orset_element(a, 1, &e, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(crdt_orset_element(a, 2, &e, &n), 0);
	assert_int_equal(n, 2);
	/* Removing an element through a pointer into the set itself. */
	assert_int_equal(crdt_orset_element(a, 2, &e, &n), 0);
	crdt_orset_clear(da);
	assert_int_equal(crdt_orset_remove(a, e, n, da), 0);
	assert_false(crdt_orset_contains(a, "bb", 2));
	crdt_orset_free(a);
	crdt_orset_free(b);
	crdt_orset_free(da);
	crdt_orset_free(db);
}

static void
test_crdt_orset_add_delta_is_small(void **state)
{
	(void)state;
	struct crdt_orset *s = crdt_orset_new(A), *d = crdt_orset_new(A);
	char elem[32];
	memset(elem, 'e', sizeof(elem));
	/* A replica far into its history, with a large id. */
	for (int i = 0; i < 1000; i++) {
		elem[0] = (char)i;
		assert_int_equal(
		    crdt_orset_add(s, UINT64_MAX - 3, elem, sizeof(elem), NULL),
		    0);
	}
	elem[0] = 'Z';
	crdt_orset_clear(d);
	assert_int_equal(
	    crdt_orset_add(s, UINT64_MAX - 3, elem, sizeof(elem), d), 0);
	uint8_t *b;
	size_t n;
	assert_int_equal(crdt_orset_encode(d, &b, &n), 0);
	assert_true(n <= 64 + sizeof(elem));
	mesh_free(A, b);
	/* Re-adding an element retires its old dot: the delta says so. */
	crdt_orset_clear(d);
	assert_int_equal(
	    crdt_orset_add(s, UINT64_MAX - 3, elem, sizeof(elem), d), 0);
	assert_int_equal(crdt_orset_encode(d, &b, &n), 0);
	assert_true(n <= 64 + sizeof(elem));
	mesh_free(A, b);
	crdt_orset_free(s);
	crdt_orset_free(d);
}

static const struct crdt_key K_C[] = {{"c", 1}};
static const struct crdt_key K_S[] = {{"s", 1}};
static const struct crdt_key K_NS[] = {{"n", 1}, {"s", 1}};

static void
test_crdt_ormap_remove_against_update(void **state)
{
	(void)state;
	struct crdt_ormap *a = crdt_ormap_new(A), *b = crdt_ormap_new(A);
	struct crdt_ormap *da = crdt_ormap_new(A), *db = crdt_ormap_new(A);
	int64_t v;
	/* Both know counter c = 3 (a: 1, b: 2) and set s = {x}. */
	crdt_ormap_counter_add(a, 1, K_C, 1, CRDT_PNCOUNTER, 1, NULL);
	crdt_ormap_counter_add(b, 2, K_C, 1, CRDT_PNCOUNTER, 2, NULL);
	crdt_ormap_orset_add(a, 1, K_S, 1, "x", 1, NULL);
	assert_int_equal(crdt_ormap_join(a, b), 0);
	assert_int_equal(crdt_ormap_join(b, a), 0);
	assert_int_equal(
	    crdt_ormap_counter_value(b, K_C, 1, CRDT_PNCOUNTER, &v), 0);
	assert_int_equal(v, 3);

	/* Concurrently: a removes both fields; b adds y to s and 10 to c. */
	assert_int_equal(crdt_ormap_remove(a, K_C, 1, CRDT_PNCOUNTER, da), 0);
	assert_int_equal(crdt_ormap_remove(a, K_S, 1, CRDT_ORSET, da), 0);
	assert_false(crdt_ormap_has(a, K_S, 1, CRDT_ORSET));
	assert_int_equal(crdt_ormap_orset_add(b, 2, K_S, 1, "y", 1, db), 0);
	assert_int_equal(
	    crdt_ormap_counter_add(b, 2, K_C, 1, CRDT_PNCOUNTER, 10, db), 0);
	assert_int_equal(crdt_ormap_join(a, db), 0);
	assert_int_equal(crdt_ormap_join(b, da), 0);
	assert_true(crdt_ormap_equal(a, b));
	/* The set field survives with only what the remove did not see. */
	assert_true(crdt_ormap_has(a, K_S, 1, CRDT_ORSET));
	assert_true(crdt_ormap_orset_contains(a, K_S, 1, "y", 1));
	assert_false(crdt_ormap_orset_contains(a, K_S, 1, "x", 1));
	/* The counter: a's observed contribution is gone; b incremented
	 * concurrently, so b's whole running total (2 + 10) survives. */
	assert_int_equal(
	    crdt_ormap_counter_value(a, K_C, 1, CRDT_PNCOUNTER, &v), 0);
	assert_int_equal(v, 12);

	/* Remove, then (causally later) update: starts from zero. */
	crdt_ormap_clear(da);
	assert_int_equal(crdt_ormap_remove(a, K_C, 1, CRDT_PNCOUNTER, da), 0);
	assert_int_equal(
	    crdt_ormap_counter_add(a, 2, K_C, 1, CRDT_PNCOUNTER, 1, da), 0);
	assert_int_equal(crdt_ormap_join(b, da), 0);
	assert_int_equal(
	    crdt_ormap_counter_value(b, K_C, 1, CRDT_PNCOUNTER, &v), 0);
	assert_int_equal(v, 1);

	/* Same key, other kind: a separate field. */
	assert_int_equal(crdt_ormap_mv_set(a, 1, K_S, 1, "m", 1, NULL), 0);
	assert_true(crdt_ormap_has(a, K_S, 1, CRDT_MV));
	assert_true(crdt_ormap_has(a, K_S, 1, CRDT_ORSET));
	assert_int_equal(crdt_ormap_count(a, NULL, 0), 3);

	/* Nested: removing the map n removes what is under it. */
	assert_int_equal(crdt_ormap_orset_add(a, 1, K_NS, 2, "q", 1, NULL), 0);
	assert_int_equal(crdt_ormap_count(a, K_NS, 1), 1);
	assert_true(crdt_ormap_orset_contains(a, K_NS, 2, "q", 1));
	assert_int_equal(crdt_ormap_remove(a, K_NS, 1, CRDT_ORMAP, NULL), 0);
	assert_false(crdt_ormap_has(a, K_NS, 1, CRDT_ORMAP));
	assert_int_equal(crdt_ormap_count(a, K_NS, 1), 0);

	/* LWW inside the map: the later write wins after a concurrent one. */
	struct crdt_hlc_clock ca, cb;
	crdt_hlc_init(&ca, 1, 0);
	crdt_hlc_init(&cb, 2, 0);
	crdt_ormap_lww_set(a, &ca, 100, K_C, 1, "old", 3, NULL);
	crdt_ormap_lww_set(b, &cb, 200, K_C, 1, "new", 3, NULL);
	assert_int_equal(crdt_ormap_join(a, b), 0);
	const void *p;
	size_t n;
	assert_int_equal(crdt_ormap_lww_get(a, K_C, 1, &p, &n), 0);
	assert_memory_equal(p, "new", 3);

	/* Bad paths. */
	assert_int_equal(crdt_ormap_mv_set(a, 1, K_C, 0, "m", 1, NULL),
			 MESH_EINVAL);
	assert_int_equal(
	    crdt_ormap_counter_add(a, 1, K_C, 1, CRDT_GCOUNTER, -1, NULL),
	    MESH_EINVAL);
	crdt_ormap_free(a);
	crdt_ormap_free(b);
	crdt_ormap_free(da);
	crdt_ormap_free(db);
}

/* ------------------------------------------------------------------------ */
/* Hostile input.                                                           */

static uint8_t *
pack_orset(const Crdt__OrSet *m, size_t *n)
{
	*n = crdt__or_set__get_packed_size(m);
	uint8_t *b = malloc(*n + 1);
	crdt__or_set__pack(m, b);
	return b;
}

static int
decode_orset(const uint8_t *b, size_t n)
{
	struct crdt_orset *s = NULL;
	int rc = crdt_orset_decode(A, b, n, &s);
	if (rc == 0) {
		assert_non_null(s);
		crdt_orset_free(s);
	} else {
		assert_null(s);
	}
	return rc;
}

static void
test_crdt_decode_rejects_hostile_input(void **state)
{
	(void)state;
	Crdt__Dot d1 = CRDT__DOT__INIT, d2 = CRDT__DOT__INIT;
	Crdt__Dot vv = CRDT__DOT__INIT;
	d1.replica = 5;
	d1.counter = 1;
	d2.replica = 5;
	d2.counter = 2;
	vv.replica = 5;
	vv.counter = 2;
	Crdt__Dot *vvs[] = {&vv};
	Crdt__CausalContext ctx = CRDT__CAUSAL_CONTEXT__INIT;
	ctx.n_vv = 1;
	ctx.vv = vvs;
	Crdt__OrSetEntry e1 = CRDT__OR_SET_ENTRY__INIT;
	Crdt__OrSetEntry e2 = CRDT__OR_SET_ENTRY__INIT;
	Crdt__Dot *ds1[] = {&d1}, *ds2[] = {&d2};
	e1.element = (ProtobufCBinaryData){1, (uint8_t *)"a"};
	e1.n_dots = 1;
	e1.dots = ds1;
	e2.element = (ProtobufCBinaryData){1, (uint8_t *)"b"};
	e2.n_dots = 1;
	e2.dots = ds2;
	Crdt__OrSetEntry *es[] = {&e1, &e2};
	Crdt__OrSet set = CRDT__OR_SET__INIT;
	set.n_entries = 2;
	set.entries = es;
	set.ctx = &ctx;
	size_t n;
	uint8_t *b = pack_orset(&set, &n);
	assert_int_equal(decode_orset(b, n), 0);

	/* Truncation anywhere. */
	for (size_t k = 1; k < n; k++)
		assert_int_equal(decode_orset(b, n - k), MESH_EDECODE);
	free(b);

	/* Duplicate dot across elements. */
	ds2[0] = &d1;
	b = pack_orset(&set, &n);
	assert_int_equal(decode_orset(b, n), MESH_EDECODE);
	free(b);
	ds2[0] = &d2;

	/* Unsorted, and duplicate, elements. */
	es[0] = &e2;
	es[1] = &e1;
	b = pack_orset(&set, &n);
	assert_int_equal(decode_orset(b, n), MESH_EDECODE);
	free(b);
	es[0] = &e1;
	es[1] = &e2;
	e2.element = e1.element;
	b = pack_orset(&set, &n);
	assert_int_equal(decode_orset(b, n), MESH_EDECODE);
	free(b);
	e2.element = (ProtobufCBinaryData){1, (uint8_t *)"b"};

	/* A dot the context has not seen. */
	vv.counter = 1;
	b = pack_orset(&set, &n);
	assert_int_equal(decode_orset(b, n), MESH_EDECODE);
	free(b);
	vv.counter = 2;

	/* Zero counter; element without dots. */
	d1.counter = 0;
	b = pack_orset(&set, &n);
	assert_int_equal(decode_orset(b, n), MESH_EDECODE);
	free(b);
	d1.counter = 1;
	e1.n_dots = 0;
	b = pack_orset(&set, &n);
	assert_int_equal(decode_orset(b, n), MESH_EDECODE);
	free(b);
	e1.n_dots = 1;

	/* A cloud that should have been compacted into the vector. */
	Crdt__Dot c3 = CRDT__DOT__INIT;
	c3.replica = 5;
	c3.counter = 3;
	Crdt__Dot *cl[] = {&c3};
	ctx.n_cloud = 1;
	ctx.cloud = cl;
	b = pack_orset(&set, &n);
	assert_int_equal(decode_orset(b, n), MESH_EDECODE);
	free(b);
	c3.counter = 4; /* a real gap: fine */
	b = pack_orset(&set, &n);
	assert_int_equal(decode_orset(b, n), 0);
	free(b);

	/* An absurd length prefix: a bytes field claiming 2^62 bytes. */
	static const uint8_t absurd[] = {0x0a, 0x0c, 0x0a, 0x80, 0x80, 0x80,
					 0x80, 0x80, 0x80, 0x80, 0x80, 0x40};
	assert_int_equal(decode_orset(absurd, sizeof(absurd)), MESH_EDECODE);
	/* Oversized input is refused before parsing. */
	assert_int_equal(decode_orset(absurd, (size_t)CRDT_MAX_ENCODED + 1),
			 MESH_ETOOBIG);
	/* Empty input is the bottom state. */
	assert_int_equal(decode_orset(NULL, 0), 0);
	assert_int_equal(decode_orset(NULL, 5), MESH_EINVAL);

	/* A counter with a duplicate replica, and a zero entry. */
	Crdt__PnEntry p1 = CRDT__PN_ENTRY__INIT, p2 = CRDT__PN_ENTRY__INIT;
	p1.replica = p2.replica = 9;
	p1.p = 1;
	p2.n = 1;
	Crdt__PnEntry *ps[] = {&p1, &p2};
	Crdt__PnCounter pc = CRDT__PN_COUNTER__INIT;
	pc.n_entries = 2;
	pc.entries = ps;
	uint8_t buf[64];
	size_t pn = crdt__pn_counter__pack(&pc, buf);
	struct crdt_pncounter *c = NULL;
	assert_int_equal(crdt_pncounter_decode(A, buf, pn, &c), MESH_EDECODE);
	assert_null(c);
	p2.replica = 10;
	p2.n = 0;
	pn = crdt__pn_counter__pack(&pc, buf);
	assert_int_equal(crdt_pncounter_decode(A, buf, pn, &c), MESH_EDECODE);
	p2.n = 3;
	pn = crdt__pn_counter__pack(&pc, buf);
	assert_int_equal(crdt_pncounter_decode(A, buf, pn, &c), 0);
	assert_int_equal(crdt_pncounter_value(c), -2);
	crdt_pncounter_free(c);
}

/* Nested maps deeper than CRDT_MAX_DEPTH are refused, not recursed into. */
static void
test_crdt_decode_rejects_deep_nesting(void **state)
{
	(void)state;
	/* Build the innermost map: one OR-set field holding dot (1, 1). */
	Crdt__Dot d = CRDT__DOT__INIT;
	d.replica = 1;
	d.counter = 1;
	Crdt__Dot *ds[] = {&d};
	Crdt__OrSetEntry el = CRDT__OR_SET_ENTRY__INIT;
	el.element = (ProtobufCBinaryData){1, (uint8_t *)"x"};
	el.n_dots = 1;
	el.dots = ds;
	Crdt__OrSetEntry *els[] = {&el};
	Crdt__OrMapEntry leaf = CRDT__OR_MAP_ENTRY__INIT;
	leaf.kind = CRDT__KIND__KIND_ORSET;
	leaf.key = (ProtobufCBinaryData){1, (uint8_t *)"k"};
	leaf.n_elements = 1;
	leaf.elements = els;
	Crdt__OrMapEntry *ents[] = {&leaf};
	Crdt__OrMap m = CRDT__OR_MAP__INIT;
	m.n_entries = 1;
	m.entries = ents;
	size_t n = crdt__or_map__get_packed_size(&m);
	uint8_t *b = malloc(n);
	crdt__or_map__pack(&m, b);
	Crdt__Dot vv = d;
	Crdt__Dot *vvs[] = {&vv};
	Crdt__CausalContext ctx = CRDT__CAUSAL_CONTEXT__INIT;
	ctx.n_vv = 1;
	ctx.vv = vvs;
	for (int depth = 1; depth <= CRDT_MAX_DEPTH + 2; depth++) {
		/* Wrap b in one more map level. */
		Crdt__OrMapEntry e = CRDT__OR_MAP_ENTRY__INIT;
		e.kind = CRDT__KIND__KIND_ORMAP;
		e.key = (ProtobufCBinaryData){1, (uint8_t *)"n"};
		e.map = (ProtobufCBinaryData){n, b};
		Crdt__OrMapEntry *ee[] = {&e};
		Crdt__OrMap w = CRDT__OR_MAP__INIT;
		w.n_entries = 1;
		w.entries = ee;
		size_t wn = crdt__or_map__get_packed_size(&w);
		uint8_t *wb = malloc(wn);
		crdt__or_map__pack(&w, wb);
		/* The top level carries the context. */
		w.ctx = &ctx;
		size_t tn = crdt__or_map__get_packed_size(&w);
		uint8_t *tb = malloc(tn);
		crdt__or_map__pack(&w, tb);
		free(b);
		b = wb;
		n = wn;
		struct crdt_ormap *out = NULL;
		int rc = crdt_ormap_decode(A, tb, tn, &out);
		if (depth <= CRDT_MAX_DEPTH) {
			assert_int_equal(rc, 0);
			struct crdt_key path[CRDT_MAX_DEPTH + 1];
			for (int i = 0; i < depth; i++)
				path[i] = (struct crdt_key){"n", 1};
			path[depth] = (struct crdt_key){"k", 1};
			assert_true(crdt_ormap_orset_contains(
			    out, path, (size_t)depth + 1, "x", 1));
			crdt_ormap_free(out);
		} else {
			assert_int_equal(rc, MESH_EDECODE);
			assert_null(out);
		}
		free(tb);
	}
	free(b);
}

/* ------------------------------------------------------------------------ */
/* Allocation failure: every fallible step fails cleanly.                   */

static void
test_crdt_alloc_failure_changes_nothing(void **state)
{
	(void)state;
	struct crdt_ormap *m = crdt_ormap_new(A), *o = crdt_ormap_new(A);
	static const struct crdt_key deep[] = {{"n", 1}, {"m", 1}, {"s", 1}};
	crdt_ormap_orset_add(m, 1, K_S, 1, "a", 1, NULL);
	crdt_ormap_counter_add(o, 2, K_C, 1, CRDT_PNCOUNTER, 4, NULL);
	crdt_ormap_orset_add(o, 2, deep, 3, "b", 1, NULL);
	uint8_t *ob;
	size_t on;
	assert_int_equal(crdt_ormap_encode(o, &ob, &on), 0);
	for (int op = 0; op < 6; op++) {
		bool done = false;
		for (size_t k = 1; !done && k < 200; k++) {
			struct crdt_ormap *x = NULL, *d = crdt_ormap_new(A);
			assert_int_equal(crdt_ormap_decode(A, ob, on, &x), 0);
			assert_int_equal(crdt_ormap_join(x, m), 0);
			struct crdt_ormap *before = crdt_ormap_new(A);
			assert_int_equal(crdt_ormap_join(before, x), 0);
			struct crdt_ormap *dbefore = crdt_ormap_new(A);
			uint8_t *eb = NULL;
			size_t en = 0;
			struct crdt_ormap *y = NULL;
			T.alloc.fail_at = T.alloc.allocs + k;
			int rc = 0;
			switch (op) {
			case 0:
				rc = crdt_ormap_orset_add(x, 3, deep, 3, "c", 1,
							  d);
				break;
			case 1:
				rc = crdt_ormap_remove(x, deep, 1, CRDT_ORMAP,
						       d);
				break;
			case 2:
				rc = crdt_ormap_counter_add(
				    x, 3, K_C, 1, CRDT_PNCOUNTER, -1, d);
				break;
			case 3:
				rc = crdt_ormap_join(x, o);
				break;
			case 4:
				rc = crdt_ormap_encode(x, &eb, &en);
				break;
			default:
				rc = crdt_ormap_decode(A, ob, on, &y);
				break;
			}
			if (T.alloc.fail_at == 0) {
				/* The k-th allocation was made and failed. */
				assert_int_equal(rc, MESH_ENOMEM);
				assert_true(crdt_ormap_equal(x, before));
				assert_true(crdt_ormap_equal(d, dbefore));
				assert_null(eb);
				assert_null(y);
			} else {
				T.alloc.fail_at = 0;
				assert_int_equal(rc, 0);
				done = true;
			}
			mesh_free(A, eb);
			crdt_ormap_free(y);
			crdt_ormap_free(x);
			crdt_ormap_free(d);
			crdt_ormap_free(before);
			crdt_ormap_free(dbefore);
		}
		assert_true(done);
	}
	mesh_free(A, ob);
	crdt_ormap_free(m);
	crdt_ormap_free(o);

	/* The OR-set and MV-register mutators, likewise. */
	for (size_t k = 1; k < 50; k++) {
		struct crdt_orset *s = crdt_orset_new(A),
				  *d = crdt_orset_new(A);
		struct crdt_orset *s0 = crdt_orset_new(A);
		crdt_orset_add(s, 1, "a", 1, NULL);
		crdt_orset_add(s, 2, "a", 1, d);
		crdt_orset_join(s0, s);
		struct crdt_orset *d0 = crdt_orset_new(A);
		crdt_orset_join(d0, d);
		T.alloc.fail_at = T.alloc.allocs + k;
		int rc = crdt_orset_add(s, 3, "b", 1, d);
		if (T.alloc.fail_at == 0) {
			assert_int_equal(rc, MESH_ENOMEM);
			assert_true(crdt_orset_equal(s, s0));
			assert_true(crdt_orset_equal(d, d0));
		}
		T.alloc.fail_at = 0;
		crdt_orset_free(s);
		crdt_orset_free(d);
		crdt_orset_free(s0);
		crdt_orset_free(d0);
	}
	for (size_t k = 1; k < 50; k++) {
		struct crdt_mvreg *r = crdt_mvreg_new(A),
				  *r2 = crdt_mvreg_new(A);
		struct crdt_mvreg *d = crdt_mvreg_new(A);
		crdt_mvreg_set(r, 1, "a", 1, NULL);
		crdt_mvreg_set(r2, 2, "b", 1, NULL);
		crdt_mvreg_join(r, r2);
		crdt_mvreg_clear(r2);
		crdt_mvreg_join(r2, r);
		T.alloc.fail_at = T.alloc.allocs + k;
		int rc = crdt_mvreg_set(r, 3, "c", 1, d);
		if (T.alloc.fail_at == 0) {
			assert_int_equal(rc, MESH_ENOMEM);
			assert_true(crdt_mvreg_equal(r, r2));
			assert_int_equal(crdt_mvreg_count(d), 0);
		}
		T.alloc.fail_at = 0;
		crdt_mvreg_free(r);
		crdt_mvreg_free(r2);
		crdt_mvreg_free(d);
	}
}

/*
 * Field-at-a-time storage (crdt.h): a replica that keeps each top-level
 * field as its own record plus the context, and joins a delta into a
 * partial map of just the fields the delta touches, must end where a
 * replica joining into its whole map ends: same records, same context.
 */
#define FS_KEYS 6
struct fs_store {
	uint8_t *rec[3][FS_KEYS]; /* kinds MV, PN, ORSET */
	size_t len[3][FS_KEYS];
	uint8_t *cc;
	size_t cc_len;
};

static const enum crdt_kind fs_kinds[3] = {CRDT_PNCOUNTER, CRDT_MV, CRDT_ORSET};

static void
fs_apply(struct fs_store *st, const struct crdt_ormap *delta, int key)
{
	char name[4] = {'k', (char)('0' + key), 0, 0};
	const uint8_t *parts[3];
	size_t lens[3], n = 0;
	for (int k = 0; k < 3; k++)
		if (st->rec[k][key] != NULL) {
			parts[n] = st->rec[k][key];
			lens[n++] = st->len[k][key];
		}
	struct crdt_ormap *m;
	assert_int_equal(
	    crdt_ormap_decode_parts(A, parts, lens, n, st->cc, st->cc_len, &m),
	    0);
	assert_int_equal(crdt_ormap_join(m, delta), 0);
	for (int k = 0; k < 3; k++) {
		mesh_free(A, st->rec[k][key]);
		st->rec[k][key] = NULL;
		int rc =
		    crdt_ormap_field_encode(m, fs_kinds[k], name, 2,
					    &st->rec[k][key], &st->len[k][key]);
		assert_true(rc == 0 || rc == MESH_ENOENT);
	}
	mesh_free(A, st->cc);
	assert_int_equal(
	    crdt_cc_encode(crdt_ormap_context(m), &st->cc, &st->cc_len), 0);
	crdt_ormap_free(m);
}

static void
test_crdt_ormap_field_storage_matches_whole(void **state)
{
	(void)state;
	struct crdt_ormap *whole = crdt_ormap_new(A), *src = crdt_ormap_new(A);
	struct fs_store st = {0};
	uint64_t seed = 12345;
	for (int step = 0; step < 600; step++) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		int key = (int)((seed >> 33) % FS_KEYS);
		int what = (int)((seed >> 40) % 6);
		char name[4] = {'k', (char)('0' + key), 0, 0};
		struct crdt_key path = {name, 2};
		struct crdt_ormap *d = crdt_ormap_new(A);
		char v[8];
		snprintf(v, sizeof(v), "%d", (int)(seed >> 50) % 7);
		switch (what) {
		case 0:
			crdt_ormap_mv_set(src, 7, &path, 1, v, strlen(v), d);
			break;
		case 1:
			crdt_ormap_counter_add(src, 7, &path, 1, CRDT_PNCOUNTER,
					       3, d);
			break;
		case 2:
			crdt_ormap_orset_add(src, 7, &path, 1, v, strlen(v), d);
			break;
		case 3:
			crdt_ormap_orset_remove(src, &path, 1, v, strlen(v), d);
			break;
		case 4:
			crdt_ormap_remove(src, &path, 1, CRDT_MV, d);
			break;
		default: {
			struct crdt_dot e =
			    crdt_cc_next_dot(crdt_ormap_context(src), 7);
			crdt_ormap_remove(src, &path, 1, CRDT_ORSET, d);
			crdt_ormap_add_event(src, &e, d);
			break;
		}
		}
		assert_int_equal(crdt_ormap_join(whole, d), 0);
		fs_apply(&st, d, key);
		crdt_ormap_free(d);
		/* Every record equals the whole map's field; contexts match. */
		for (int k2 = 0; k2 < FS_KEYS; k2++) {
			char n2[4] = {'k', (char)('0' + k2), 0, 0};
			for (int k = 0; k < 3; k++) {
				uint8_t *buf;
				size_t len;
				int rc = crdt_ormap_field_encode(
				    whole, fs_kinds[k], n2, 2, &buf, &len);
				if (rc == MESH_ENOENT) {
					assert_null(st.rec[k][k2]);
					continue;
				}
				assert_int_equal(rc, 0);
				assert_int_equal(len, st.len[k][k2]);
				assert_memory_equal(buf, st.rec[k][k2], len);
				mesh_free(A, buf);
			}
		}
		uint8_t *cc;
		size_t cc_len;
		assert_int_equal(
		    crdt_cc_encode(crdt_ormap_context(whole), &cc, &cc_len), 0);
		assert_int_equal(cc_len, st.cc_len);
		assert_memory_equal(cc, st.cc, cc_len);
		mesh_free(A, cc);
	}
	/* Narrowing keeps the store's dots and the extras, nothing else. */
	struct crdt_dot extra = {99, 5};
	assert_int_equal(crdt_ormap_narrow_context(whole, &extra, 1), 0);
	assert_true(crdt_cc_contains(crdt_ormap_context(whole), &extra));
	struct crdt_dot first = {7, 1};
	/* Dot (7, 1) was overwritten long ago: no store holds it now. */
	assert_false(crdt_cc_contains(crdt_ormap_context(whole), &first));
	for (int k = 0; k < 3; k++)
		for (int k2 = 0; k2 < FS_KEYS; k2++)
			mesh_free(A, st.rec[k][k2]);
	mesh_free(A, st.cc);
	crdt_ormap_free(whole);
	crdt_ormap_free(src);
}

/* Deltas that arrive out of order (a lost one repaired later) must not
 * leave two running totals of one replica, nor two values of one writer:
 * the state would differ from the sender's while the contexts agree. */
static void
test_crdt_ormap_out_of_order_deltas(void **state)
{
	(void)state;
	struct crdt_ormap *a = crdt_ormap_new(A), *r = crdt_ormap_new(A);
	struct crdt_ormap *d[3];
	for (int i = 0; i < 3; i++) {
		d[i] = crdt_ormap_new(A);
		crdt_ormap_counter_add(a, 1, K_C, 1, CRDT_PNCOUNTER, 5, d[i]);
		crdt_ormap_orset_add(a, 1, K_S, 1, "x", 1, d[i]);
	}
	int64_t v;
	assert_int_equal(crdt_ormap_join(r, d[0]), 0);
	assert_int_equal(crdt_ormap_join(r, d[2]), 0);
	assert_int_equal(
	    crdt_ormap_counter_value(r, K_C, 1, CRDT_PNCOUNTER, &v), 0);
	assert_int_equal(v, 15);
	assert_true(
	    crdt_ormap_equal(r, a) ||
	    !crdt_cc_equal(crdt_ormap_context(r), crdt_ormap_context(a)));
	assert_int_equal(crdt_ormap_join(r, d[1]), 0);
	assert_true(crdt_ormap_equal(r, a));
	assert_int_equal(
	    crdt_ormap_counter_value(r, K_C, 1, CRDT_PNCOUNTER, &v), 0);
	assert_int_equal(v, 15);
	/* A state with two dots of one replica in a field is not canonical. */
	uint8_t *buf;
	size_t len;
	assert_int_equal(crdt_ormap_encode(r, &buf, &len), 0);
	struct crdt_ormap *back;
	assert_int_equal(crdt_ormap_decode(A, buf, len, &back), 0);
	assert_true(crdt_ormap_equal(back, r));
	crdt_ormap_free(back);
	mesh_free(A, buf);
	for (int i = 0; i < 3; i++)
		crdt_ormap_free(d[i]);
	crdt_ormap_free(a);
	crdt_ormap_free(r);
}

/* The memory figures grow with what a replica holds and are never 0;
 * joins of a state already held do not keep growing them. */
static void
test_crdt_sizes(void **state)
{
	(void)state;
	struct crdt_cc *cc = crdt_cc_new(A);
	struct crdt_gcounter *g = crdt_gcounter_new(A);
	struct crdt_pncounter *pn = crdt_pncounter_new(A);
	struct crdt_lww *l = crdt_lww_new(A);
	struct crdt_mvreg *mv = crdt_mvreg_new(A);
	struct crdt_orset *os = crdt_orset_new(A);
	struct crdt_ormap *om = crdt_ormap_new(A);
	assert_true(cc && g && pn && l && mv && os && om);
	size_t s0[7] = {crdt_cc_size(cc),	 crdt_gcounter_size(g),
			crdt_pncounter_size(pn), crdt_lww_size(l),
			crdt_mvreg_size(mv),	 crdt_orset_size(os),
			crdt_ormap_size(om)};
	for (int i = 0; i < 7; i++)
		assert_true(s0[i] > 0);
	struct crdt_hlc_clock clk;
	crdt_hlc_init(&clk, 1, 0);
	char big[512];
	memset(big, 'x', sizeof(big));
	for (uint64_t r = 1; r <= 20; r++) {
		struct crdt_dot d = {r, 2}; /* a gap: stays in the cloud */
		assert_int_equal(crdt_cc_add(cc, &d), 0);
		assert_int_equal(crdt_gcounter_inc(g, r, 1, NULL), 0);
		assert_int_equal(crdt_pncounter_add(pn, r, -1, NULL), 0);
		assert_int_equal(crdt_orset_add(os, r, big, 8 + r, NULL), 0);
		struct crdt_key k = {big, 1 + r};
		assert_int_equal(
		    crdt_ormap_mv_set(om, r, &k, 1, big, sizeof(big), NULL), 0);
	}
	assert_int_equal(crdt_lww_set(l, &clk, 1000, big, sizeof(big), NULL),
			 0);
	assert_int_equal(crdt_mvreg_set(mv, 1, big, sizeof(big), NULL), 0);
	size_t s1[7] = {crdt_cc_size(cc),	 crdt_gcounter_size(g),
			crdt_pncounter_size(pn), crdt_lww_size(l),
			crdt_mvreg_size(mv),	 crdt_orset_size(os),
			crdt_ormap_size(om)};
	for (int i = 0; i < 7; i++)
		assert_true(s1[i] > s0[i]);
	assert_true(s1[3] >= s0[3] + sizeof(big));
	assert_true(s1[6] >= s0[6] + 20 * sizeof(big));
	assert_true(crdt_cc_cloud_size(cc) >= 20);
	struct crdt_orset *copy = crdt_orset_new(A);
	assert_int_equal(crdt_orset_join(copy, os), 0);
	size_t joined = crdt_orset_size(copy);
	assert_true(joined > s0[5]);
	/* Joining it again may settle its arrays once; after that, repeated
	 * joins of the same state hold the same memory (nothing leaks). */
	assert_int_equal(crdt_orset_join(copy, os), 0);
	joined = crdt_orset_size(copy);
	for (int k = 0; k < 5; k++) {
		assert_int_equal(crdt_orset_join(copy, os), 0);
		assert_int_equal(crdt_orset_size(copy), joined);
	}
	crdt_orset_free(copy);
	crdt_cc_free(cc);
	crdt_gcounter_free(g);
	crdt_pncounter_free(pn);
	crdt_lww_free(l);
	crdt_mvreg_free(mv);
	crdt_orset_free(os);
	crdt_ormap_free(om);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_crdt_cc_compaction, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_crdt_sizes, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_crdt_hlc_orders_causal_writes_despite_skew, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(
		test_crdt_counters_values_and_overflow, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_crdt_counter_increment_allocates_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_crdt_mvreg_keeps_concurrent_values, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_crdt_orset_add_wins, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_crdt_orset_add_delta_is_small,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_crdt_ormap_remove_against_update, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_crdt_decode_rejects_hostile_input, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_crdt_decode_rejects_deep_nesting, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_crdt_alloc_failure_changes_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_crdt_ormap_field_storage_matches_whole, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_crdt_ormap_out_of_order_deltas,
					    setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
