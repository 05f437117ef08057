/*
 * test_ring.c - the placement ring: determinism, zone spread, minimal moves
 * on join and leave (replicas too), bounded loads, drain and bad input.
 */
#include "mesh_err.h"
#include "ring_impl.h"
#include "test_env.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define TEST_RING_MAX 64
#define TEST_RING_KEYS 20000

static struct test_env test_ring_env;
static char test_ring_names[TEST_RING_MAX + 1][16];
static const char *test_ring_zones[] = {"z0", "z1", "z2"};
static const char *test_ring_regions[] = {"r0", "r1"};
static const char *test_ring_cells[] = {"c0", "c1"};
static uint64_t test_ring_ids[TEST_RING_KEYS];
static uint32_t test_ring_own_a[TEST_RING_KEYS * RING_REPLICAS_MAX];
static uint32_t test_ring_own_b[TEST_RING_KEYS * RING_REPLICAS_MAX];
static struct ring_move test_ring_mv[TEST_RING_KEYS * RING_REPLICAS_MAX];

/* @n members "n00".. in 3 zones x 2 regions x 2 cells, all alive. */
static void
test_ring_members(struct ring_member *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		snprintf(test_ring_names[i], sizeof(test_ring_names[i]),
			 "n%02u", (unsigned)(i % 10000));
		m[i] = (struct ring_member){
		    .name = test_ring_names[i],
		    .zone = test_ring_zones[i % 3],
		    .region = test_ring_regions[(i / 3) % 2],
		    .cell = test_ring_cells[(i / 6) % 2],
		    .alive = true,
		};
	}
}

static struct ring *
test_ring_build(const struct ring_member *m, size_t n)
{
	struct ring *r = NULL;
	assert_int_equal(ring_new(&test_ring_env.env, NULL, m, n, &r), 0);
	assert_non_null(r);
	return r;
}

static int
test_ring_setup(void **state)
{
	(void)state;
	test_env_init(&test_ring_env);
	for (size_t i = 0; i < TEST_RING_KEYS; i++)
		test_ring_ids[i] = 1000 + i * 7;
	return 0;
}

static int
test_ring_teardown(void **state)
{
	(void)state;
	/* Every test frees what it built: nothing may stay allocated. */
	assert_int_equal(test_ring_env.alloc.live, 0);
	return 0;
}

/* The published SipHash-2-4 vectors: key 00..0f, message 00..len-1. */
static void
test_ring_siphash_vectors(void **state)
{
	(void)state;
	const uint64_t key[2] = {0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull};
	uint8_t msg[64];
	for (unsigned i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)i;
	assert_true(ring__siphash(key, msg, 0) == 0x726fdb47dd0e0e31ull);
	assert_true(ring__siphash(key, msg, 1) == 0x74f839c593dc67fdull);
	assert_true(ring__siphash(key, msg, 7) == 0xab0200f58b01d137ull);
	assert_true(ring__siphash(key, msg, 8) == 0x93f5f5799a932462ull);
	assert_true(ring__siphash(key, msg, 15) == 0xa129ca6149be45e5ull);
	assert_true(ring__siphash(key, msg, 63) == 0x958a324ceb064572ull);
}

static void
test_ring_same_members_any_order(void **state)
{
	(void)state;
	struct ring_member m[24], rev[24], mix[24];
	test_ring_members(m, 24);
	for (size_t i = 0; i < 24; i++) {
		rev[i] = m[23 - i];
		mix[i] = m[(i * 7) % 24]; /* 7 is coprime with 24 */
	}
	m[5].weight = 250;
	rev[23 - 5].weight = 250;
	mix[11].weight = 250; /* (11 * 7) % 24 == 5 */
	struct ring *a = test_ring_build(m, 24);
	struct ring *b = test_ring_build(rev, 24);
	struct ring *c = test_ring_build(mix, 24);

	assert_int_equal(a->npoints, b->npoints);
	assert_int_equal(a->npoints, c->npoints);
	assert_memory_equal(a->tok, b->tok, a->npoints * sizeof(*a->tok));
	assert_memory_equal(a->own, c->own, a->npoints * sizeof(*a->own));
	assert_true(ring_digest(a) == ring_digest(b));
	assert_true(ring_digest(a) == ring_digest(c));
	/* Node numbers follow names, not input order. */
	assert_string_equal(ring_node(b, 0)->name, "n00");
	assert_int_equal(ring_find(c, "n05"), 5);
	assert_int_equal(ring_node(c, 5)->weight, 250);

	for (size_t i = 0; i < 2000; i++) {
		uint32_t oa[3], ob[3], oc[3];
		uint64_t h = ring_hash_id(a, test_ring_ids[i]);
		assert_int_equal(ring_lookup(a, h, 3, oa), 3);
		assert_int_equal(ring_lookup(b, h, 3, ob), 3);
		assert_int_equal(ring_lookup(c, h, 3, oc), 3);
		assert_memory_equal(oa, ob, sizeof(oa));
		assert_memory_equal(oa, oc, sizeof(oa));
	}
	/* Bounded placement does not depend on the order of the ids. */
	struct ring_place pl = {
	    .replicas = 2, .bounded = true, .eps_milli = 50};
	uint64_t ids_rev[4000];
	for (size_t i = 0; i < 4000; i++)
		ids_rev[i] = test_ring_ids[3999 - i];
	assert_int_equal(
	    ring_assign(a, test_ring_ids, 4000, &pl, test_ring_own_a, NULL), 0);
	assert_int_equal(
	    ring_assign(c, ids_rev, 4000, &pl, test_ring_own_b, NULL), 0);
	for (size_t i = 0; i < 4000; i++)
		assert_memory_equal(&test_ring_own_a[i * 2],
				    &test_ring_own_b[(3999 - i) * 2],
				    2 * sizeof(uint32_t));
	ring_free(a);
	ring_free(b);
	ring_free(c);
}

static void
test_ring_digest_follows_placement_inputs(void **state)
{
	(void)state;
	struct ring_member m[6];
	test_ring_members(m, 6);
	struct ring *a = test_ring_build(m, 6);
	m[2].zone = "elsewhere";
	struct ring *b = test_ring_build(m, 6);
	m[2].zone = test_ring_zones[2];
	m[2].weight = 200;
	struct ring *c = test_ring_build(m, 6);
	m[2].weight = 0;
	m[2].draining = true;
	struct ring *d = test_ring_build(m, 6);
	m[2].draining = false;
	struct ring *e = test_ring_build(m, 6);
	assert_true(ring_digest(a) != ring_digest(b));
	assert_true(ring_digest(a) != ring_digest(c));
	assert_true(ring_digest(a) != ring_digest(d));
	assert_true(ring_digest(a) == ring_digest(e));
	ring_free(a);
	ring_free(b);
	ring_free(c);
	ring_free(d);
	ring_free(e);
}

static unsigned
test_ring_distinct(const struct ring *r, const uint32_t *o, unsigned n,
		   unsigned level)
{
	unsigned count = 0;
	for (unsigned i = 0; i < n; i++) {
		bool seen = false;
		for (unsigned j = 0; j < i; j++)
			seen = seen ||
			       (level == 3 ? o[i] == o[j]
					   : r->nodes[o[i]].dom[level] ==
						 r->nodes[o[j]].dom[level]);
		count += !seen;
	}
	return count;
}

static void
test_ring_owners_distinct_and_zone_spread(void **state)
{
	(void)state;
	/* 24 members: 3 zones, 6 (zone, region) pairs, 12 cells. */
	struct ring_member m[24];
	test_ring_members(m, 24);
	struct ring *r = test_ring_build(m, 24);
	struct ring_stats st;
	ring_stats(r, &st);
	assert_int_equal(st.zones, 3);
	assert_int_equal(st.regions, 6);
	assert_int_equal(st.cells, 12);

	for (size_t i = 0; i < 3000; i++) {
		uint32_t o[8];
		uint64_t h = ring_hash_id(r, test_ring_ids[i]);
		assert_int_equal(ring_lookup(r, h, 3, o), 3);
		assert_int_equal(test_ring_distinct(r, o, 3, RING__ZONE), 3);
		/* The first owner is the primary of a 1-replica lookup. */
		uint32_t p;
		assert_int_equal(ring_lookup(r, h, 1, &p), 1);
		assert_int_equal(p, o[0]);
		/* Zones first, then regions, then cells, then any node. */
		assert_int_equal(ring_lookup(r, h, 6, o), 6);
		assert_int_equal(test_ring_distinct(r, o, 6, RING__ZONE), 3);
		assert_int_equal(test_ring_distinct(r, o, 6, RING__REGION), 6);
		assert_int_equal(ring_lookup(r, h, 8, o), 8);
		assert_int_equal(test_ring_distinct(r, o, 8, RING__REGION), 6);
		assert_int_equal(test_ring_distinct(r, o, 8, RING__CELL), 8);
		assert_int_equal(test_ring_distinct(r, o, 8, 3), 8);
		/* A longer list starts with the shorter one. */
		uint32_t o3[3];
		ring_lookup(r, h, 3, o3);
		assert_memory_equal(o, o3, sizeof(o3));
	}
	ring_free(r);

	/* Two zones for three replicas: both zones, three distinct nodes.
	 * Fewer members than replicas: every member once. */
	struct ring_member two[4];
	test_ring_members(two, 4);
	two[2].zone = "z0";
	two[3].zone = "z1";
	r = test_ring_build(two, 4);
	for (size_t i = 0; i < 500; i++) {
		uint32_t o[8];
		uint64_t h = ring_hash_id(r, test_ring_ids[i]);
		assert_int_equal(ring_lookup(r, h, 3, o), 3);
		assert_int_equal(test_ring_distinct(r, o, 3, RING__ZONE), 2);
		assert_int_equal(test_ring_distinct(r, o, 3, 3), 3);
		assert_int_equal(ring_lookup(r, h, 8, o), 4);
		assert_int_equal(test_ring_distinct(r, o, 4, 3), 4);
	}
	ring_free(r);
}

/* Loads of every node of @r for the owners in @own (R slots per pack). */
static void
test_ring_loads(const struct ring *r, const uint32_t *own, size_t n, unsigned R,
		uint32_t *load)
{
	memset(load, 0, ring_node_count(r) * sizeof(*load));
	for (size_t i = 0; i < n * R; i++)
		if (own[i] != RING_NONE)
			load[own[i]]++;
}

static void
test_ring_balance(void **state)
{
	(void)state;
	/* 40 members, 64 vnodes, 20,000 keys: 500 per node on average.
	 * Classic consistent hashing lands near 1.35 here; the multi-probe
	 * lookup must stay well below, and one probe must really be worse
	 * (else the probes do nothing). */
	struct ring_member m[40];
	test_ring_members(m, 40);
	struct ring_config one;
	ring_config_default(&one);
	one.probes = 1;
	struct ring *r = test_ring_build(m, 40);
	struct ring *c = NULL;
	assert_int_equal(ring_new(&test_ring_env.env, &one, m, 40, &c), 0);
	struct ring_place pl = {.replicas = 1};
	uint32_t load[40], max_r = 0, max_c = 0;
	assert_int_equal(ring_assign(r, test_ring_ids, TEST_RING_KEYS, &pl,
				     test_ring_own_a, NULL),
			 0);
	test_ring_loads(r, test_ring_own_a, TEST_RING_KEYS, 1, load);
	for (unsigned i = 0; i < 40; i++)
		max_r = load[i] > max_r ? load[i] : max_r;
	assert_int_equal(ring_assign(c, test_ring_ids, TEST_RING_KEYS, &pl,
				     test_ring_own_a, NULL),
			 0);
	test_ring_loads(c, test_ring_own_a, TEST_RING_KEYS, 1, load);
	for (unsigned i = 0; i < 40; i++)
		max_c = load[i] > max_c ? load[i] : max_c;
	assert_true(max_r < 500 * 1.2);
	assert_true(max_c > max_r);
	ring_free(r);
	ring_free(c);
}

static void
test_ring_weights(void **state)
{
	(void)state;
	struct ring_member m[12];
	test_ring_members(m, 12);
	m[3].weight = 300; /* three times the default */
	m[7].weight = 50;
	struct ring *r = test_ring_build(m, 12);
	assert_int_equal(ring_node(r, 3)->vnodes, 3 * 64);
	assert_int_equal(ring_node(r, 7)->vnodes, 32);
	struct ring_place pl = {.replicas = 1};
	uint32_t load[12];
	assert_int_equal(ring_assign(r, test_ring_ids, TEST_RING_KEYS, &pl,
				     test_ring_own_a, NULL),
			 0);
	test_ring_loads(r, test_ring_own_a, TEST_RING_KEYS, 1, load);
	/* 13.5 default shares: 1,481 keys each; weight 3: 4,444; 0.5: 741. */
	assert_in_range(load[3], 4000, 4900);
	assert_in_range(load[7], 600, 900);
	assert_in_range(load[0], 1250, 1750);
	ring_free(r);
}

/* Moves between @a and @b for @R replicas; checks every move against
 * the one node allowed on the changed side. Returns the count. */
static size_t
test_ring_check_moves(const struct ring *a, const struct ring *b, unsigned R,
		      const char *only_to, const char *only_from)
{
	struct ring_place pl = {.replicas = R};
	size_t count = 0;
	assert_int_equal(ring_moves(a, b, test_ring_ids, TEST_RING_KEYS, &pl,
				    test_ring_mv,
				    RING_MOVES_MAX(TEST_RING_KEYS, R), &count),
			 0);
	for (size_t i = 0; i < count; i++) {
		const struct ring_move *mv = &test_ring_mv[i];
		assert_true(mv->from != RING_NONE && mv->to != RING_NONE);
		if (only_to != NULL)
			assert_string_equal(ring_node(b, mv->to)->name,
					    only_to);
		if (only_from != NULL)
			assert_string_equal(ring_node(a, mv->from)->name,
					    only_from);
	}
	return count;
}

static void
test_ring_moves_on_join(void **state)
{
	(void)state;
	struct ring_member m[21];
	test_ring_members(m, 21);
	struct ring *a = test_ring_build(m, 20);
	struct ring *b = test_ring_build(m, 21); /* n20 joins */
	/* Optimum: the joiner's fair share, K/21 = 952 per replica slot. */
	size_t k1 = test_ring_check_moves(a, b, 1, "n20", NULL);
	assert_in_range(k1, 952 * 0.8, 952 * 1.2);
	/* With replicas the joiner takes one slot of a pack at most and the
	 * others stay where they were. */
	size_t k3 = test_ring_check_moves(a, b, 3, "n20", NULL);
	assert_in_range(k3, 3 * 952 * 0.8, 3 * 952 * 1.2);
	struct ring_place pl = {.replicas = 3};
	ring_assign(b, test_ring_ids, TEST_RING_KEYS, &pl, test_ring_own_b,
		    NULL);
	uint32_t load[21];
	test_ring_loads(b, test_ring_own_b, TEST_RING_KEYS, 3, load);
	assert_int_equal(k3, load[20]);
	ring_free(a);
	ring_free(b);
}

static void
test_ring_moves_on_leave(void **state)
{
	(void)state;
	struct ring_member m[20];
	test_ring_members(m, 20);
	struct ring *a = test_ring_build(m, 20);
	struct ring_member gone = m[7];
	m[7] = m[19];
	struct ring *b = test_ring_build(m, 19); /* n07 leaves */
	(void)gone;
	struct ring_place pl = {.replicas = 3};
	ring_assign(a, test_ring_ids, TEST_RING_KEYS, &pl, test_ring_own_a,
		    NULL);
	uint32_t load[20];
	test_ring_loads(a, test_ring_own_a, TEST_RING_KEYS, 3, load);
	/* Exactly the leaver's slots move, and nothing else. */
	assert_int_equal(test_ring_check_moves(a, b, 3, NULL, "n07"), load[7]);
	size_t k1 = test_ring_check_moves(a, b, 1, NULL, "n07");
	assert_in_range(k1, 1000 * 0.8, 1000 * 1.2);
	ring_free(a);
	ring_free(b);
}

static void
test_ring_drain(void **state)
{
	(void)state;
	struct ring_member m[12];
	test_ring_members(m, 12);
	struct ring *a = test_ring_build(m, 12);
	m[4].draining = true;
	struct ring *b = test_ring_build(m, 12);
	const struct ring_node_info *d = ring_node(b, 4);
	assert_true(d->draining && d->alive && !d->eligible);
	assert_int_equal(d->vnodes, 0);
	assert_int_equal(ring_find(b, "n04"), 4); /* still known by name */

	/* Nothing lands on it, whatever the replica count. */
	struct ring_place pl = {.replicas = 3};
	uint32_t load[12];
	assert_int_equal(ring_assign(b, test_ring_ids, TEST_RING_KEYS, &pl,
				     test_ring_own_b, NULL),
			 0);
	test_ring_loads(b, test_ring_own_b, TEST_RING_KEYS, 3, load);
	assert_int_equal(load[4], 0);
	/* Its packs move away, only its packs, each to a live node. */
	ring_assign(a, test_ring_ids, TEST_RING_KEYS, &pl, test_ring_own_a,
		    NULL);
	test_ring_loads(a, test_ring_own_a, TEST_RING_KEYS, 3, load);
	assert_true(load[4] > 0);
	assert_int_equal(test_ring_check_moves(a, b, 3, NULL, "n04"), load[4]);
	for (size_t i = 0; i < load[4]; i++)
		assert_true(ring_node(b, test_ring_mv[i].to)->eligible);

	/* A dead member is treated the same; with every member out, there
	 * are no owners and moves say where copies are dropped. */
	m[5].alive = false;
	struct ring *c = test_ring_build(m, 12);
	assert_false(ring_node(c, 5)->eligible);
	for (size_t i = 0; i < 12; i++)
		m[i].draining = true;
	struct ring *e = test_ring_build(m, 12);
	uint32_t o[3];
	assert_int_equal(ring_lookup(e, 1, 3, o), MESH_ENOENT);
	size_t count;
	assert_int_equal(ring_moves(a, e, test_ring_ids, 10, &pl, test_ring_mv,
				    RING_MOVES_MAX(10, 3), &count),
			 0);
	assert_int_equal(count, 30);
	assert_int_equal(test_ring_mv[0].to, RING_NONE);
	ring_free(a);
	ring_free(b);
	ring_free(c);
	ring_free(e);
}

static void
test_ring_bounded_load_cap_holds(void **state)
{
	(void)state;
	struct ring_member m[30];
	test_ring_members(m, 30);
	m[0].weight = 200;
	struct ring_config cfg;
	ring_config_default(&cfg);
	cfg.vnodes = 16;
	cfg.probes = 1; /* the most uneven ring: the cap has work to do */
	struct ring *r = NULL;
	assert_int_equal(ring_new(&test_ring_env.env, &cfg, m, 30, &r), 0);
	uint32_t points = r->npoints;
	for (unsigned R = 1; R <= 3; R += 2) {
		struct ring_place pl = {
		    .replicas = R, .bounded = true, .eps_milli = 100};
		struct ring_assign_stats st;
		assert_int_equal(ring_assign(r, test_ring_ids, TEST_RING_KEYS,
					     &pl, test_ring_own_a, &st),
				 0);
		assert_int_equal(st.placed, (uint64_t)TEST_RING_KEYS * R);
		assert_int_equal(st.over_cap, 0);
		assert_true(st.displaced > 0);
		uint32_t load[30], cap_of[30];
		test_ring_loads(r, test_ring_own_a, TEST_RING_KEYS, R, load);
		for (unsigned i = 0; i < 30; i++) {
			/* ceil(1.1 * slots * vnodes / points) */
			uint64_t num = 1100ull * TEST_RING_KEYS * R *
				       ring_node(r, i)->vnodes;
			uint64_t cap =
			    (num + 1000ull * points - 1) / (1000ull * points);
			cap_of[i] = (uint32_t)cap;
			assert_true(load[i] <= cap);
			assert_true(st.max_load <= st.max_cap);
		}
		/* Owners stay distinct and zone-spread under the cap. */
		for (size_t i = 0; i < TEST_RING_KEYS && R == 3; i++)
			assert_int_equal(
			    test_ring_distinct(r, &test_ring_own_a[i * 3], 3,
					       RING__ZONE),
			    3);
		/* Unbounded, the same ring does break that cap (one replica;
		 * three replicas over three zones even out on their own). */
		pl.bounded = false;
		ring_assign(r, test_ring_ids, TEST_RING_KEYS, &pl,
			    test_ring_own_b, NULL);
		uint32_t uload[30];
		test_ring_loads(r, test_ring_own_b, TEST_RING_KEYS, R, uload);
		unsigned over = 0;
		for (unsigned i = 0; i < 30; i++)
			over += uload[i] > cap_of[i];
		if (R == 1)
			assert_true(over > 0);
	}
	ring_free(r);
}

static void
test_ring_bounded_moves_reported(void **state)
{
	(void)state;
	struct ring_member m[21];
	test_ring_members(m, 21);
	struct ring *a = test_ring_build(m, 20);
	struct ring *b = test_ring_build(m, 21);
	struct ring_place pl = {
	    .replicas = 1, .bounded = true, .eps_milli = 20};
	size_t bounded = 0, plain = 0;
	assert_int_equal(ring_moves(a, b, test_ring_ids, TEST_RING_KEYS, &pl,
				    test_ring_mv, TEST_RING_KEYS, &bounded),
			 0);
	pl.bounded = false;
	assert_int_equal(ring_moves(a, b, test_ring_ids, TEST_RING_KEYS, &pl,
				    test_ring_mv, TEST_RING_KEYS, &plain),
			 0);
	/* A tight cap moves more than the plain ring, never less than the
	 * joiner's share. */
	assert_true(bounded >= plain);
	assert_true(bounded >= TEST_RING_KEYS / 21);
	ring_free(a);
	ring_free(b);
}

static void
test_ring_owned_and_format(void **state)
{
	(void)state;
	struct ring_member m[6];
	test_ring_members(m, 6);
	m[1].zone = "z\"q";
	m[2].draining = true;
	struct ring *r = test_ring_build(m, 6);
	struct ring_place pl = {.replicas = 2};
	static uint64_t out[TEST_RING_KEYS];
	size_t total = 0;
	for (uint32_t i = 0; i < 6; i++) {
		size_t k;
		assert_int_equal(
		    ring_owned(r, i, test_ring_ids, 1000, &pl, out, &k), 0);
		total += k;
		if (i == 2)
			assert_int_equal(k, 0);
	}
	assert_int_equal(total, 2000);
	size_t k;
	assert_int_equal(ring_owned(r, 6, test_ring_ids, 10, &pl, out, &k),
			 MESH_ENOENT);

	uint32_t o[2] = {1, 2};
	char buf[512];
	int n = ring_format_owners(r, o, 2, false, buf, sizeof(buf));
	assert_true(n > 0);
	assert_string_equal(buf, "n01 zone=z\"q region=r0 cell=c0\n"
				 "n02 zone=z2 region=r0 cell=c0 draining\n");
	n = ring_format_owners(r, o, 1, true, buf, sizeof(buf));
	assert_string_equal(buf, "[{\"name\":\"n01\",\"zone\":\"z\\\"q\","
				 "\"region\":\"r0\",\"cell\":\"c0\","
				 "\"draining\":false}]");
	assert_int_equal(n, (int)strlen(buf));
	assert_int_equal(ring_format_owners(r, o, 2, false, buf, 10),
			 MESH_ETOOBIG);
	assert_int_equal(strlen(buf), 9);
	o[0] = 6;
	assert_int_equal(ring_format_owners(r, o, 1, false, buf, sizeof(buf)),
			 MESH_EINVAL);
	ring_free(r);
}

static void
test_ring_bad_input(void **state)
{
	(void)state;
	const struct mesh_env *env = &test_ring_env.env;
	struct ring_member m[4];
	test_ring_members(m, 4);
	struct ring *r = (struct ring *)&m; /* must be cleared on error */

	assert_int_equal(ring_new(NULL, NULL, m, 4, &r), MESH_EINVAL);
	assert_null(r);
	assert_int_equal(ring_new(env, NULL, NULL, 4, &r), MESH_EINVAL);
	assert_int_equal(ring_new(env, NULL, m, 4, NULL), MESH_EINVAL);
	assert_int_equal(ring_new(env, NULL, m, 0, &r), MESH_EINVAL);
	assert_non_null(strstr(test_ring_env.last_line, "no members"));
	assert_int_equal(ring_new(env, NULL, m, RING_MEMBERS_MAX + 1, &r),
			 MESH_ERANGE);

	m[1].name = "n00";
	assert_int_equal(ring_new(env, NULL, m, 4, &r), MESH_EEXIST);
	assert_non_null(strstr(test_ring_env.last_line, "n00 given twice"));
	m[1].name = NULL;
	assert_int_equal(ring_new(env, NULL, m, 4, &r), MESH_EINVAL);
	m[1].name = "";
	assert_int_equal(ring_new(env, NULL, m, 4, &r), MESH_EINVAL);
	m[1].name = "has space";
	assert_int_equal(ring_new(env, NULL, m, 4, &r), MESH_EINVAL);
	char longname[RING_NAME_MAX + 2];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[RING_NAME_MAX + 1] = '\0';
	m[1].name = longname;
	assert_int_equal(ring_new(env, NULL, m, 4, &r), MESH_EINVAL);
	longname[RING_NAME_MAX] = '\0'; /* exactly the limit is fine */
	assert_int_equal(ring_new(env, NULL, m, 4, &r), 0);
	ring_free(r);

	m[1].name = "n01";
	m[2].zone = "tab\there";
	assert_int_equal(ring_new(env, NULL, m, 4, &r), MESH_EINVAL);
	m[2].zone = "z2";
	m[3].weight = RING_WEIGHT_MAX + 1;
	assert_int_equal(ring_new(env, NULL, m, 4, &r), MESH_ERANGE);
	m[3].weight = RING_WEIGHT_MAX;
	struct ring_config cfg;
	ring_config_default(&cfg);
	cfg.vnodes = RING_VNODES_MAX;
	/* The largest weight at the largest vnodes: 3 * 1024 + 102,400
	 * points, still within RING_POINTS_MAX. */
	assert_int_equal(ring_new(env, &cfg, m, 4, &r), 0);
	ring_free(r);
	cfg.vnodes = 0;
	assert_int_equal(ring_new(env, &cfg, m, 4, &r), MESH_EINVAL);
	cfg.vnodes = 64;
	cfg.probes = RING_PROBES_MAX + 1;
	assert_int_equal(ring_new(env, &cfg, m, 4, &r), MESH_EINVAL);
	assert_null(r);

	/* Too many points in all. */
	static struct ring_member heavy[100];
	static char hn[100][8];
	for (int i = 0; i < 100; i++) {
		snprintf(hn[i], sizeof(hn[i]), "h%d", i);
		heavy[i] = (struct ring_member){
		    .name = hn[i], .weight = RING_WEIGHT_MAX, .alive = true};
	}
	ring_config_default(&cfg);
	cfg.vnodes = RING_VNODES_MAX;
	assert_int_equal(ring_new(env, &cfg, heavy, 100, &r), MESH_ETOOBIG);

	/* Lookups and placement refuse bad arguments. */
	r = test_ring_build(m, 4);
	uint32_t o[RING_REPLICAS_MAX + 1];
	assert_int_equal(ring_lookup(r, 1, 0, o), MESH_EINVAL);
	assert_int_equal(ring_lookup(r, 1, RING_REPLICAS_MAX + 1, o),
			 MESH_EINVAL);
	assert_int_equal(ring_lookup(r, 1, 1, NULL), MESH_EINVAL);
	struct ring_place pl = {.replicas = 1, .bounded = true, .eps_milli = 0};
	uint64_t dup[3] = {5, 6, 5};
	assert_int_equal(ring_assign(r, dup, 3, &pl, o, NULL), MESH_EINVAL);
	pl.eps_milli = 100;
	assert_int_equal(ring_assign(r, dup, 3, &pl, o, NULL), MESH_EEXIST);
	assert_int_equal(
	    ring_assign(r, dup, RING_ASSIGN_MAX + 1ull, &pl, o, NULL),
	    MESH_ERANGE);
	size_t count;
	struct ring_move mv[2];
	pl.bounded = false;
	assert_int_equal(ring_moves(r, r, dup, 3, &pl, mv, 2, &count), 0);
	assert_int_equal(count, 0);
	assert_int_equal(ring_find(r, "nope"), MESH_ENOENT);
	assert_null(ring_node(r, 4));
	ring_free(r);
}

static void
test_ring_out_of_memory(void **state)
{
	(void)state;
	/* Fail each allocation of a build in turn: clean error, no leak. */
	struct ring_member m[8];
	test_ring_members(m, 8);
	for (size_t n = 1; n < 16; n++) {
		struct ring *r = NULL;
		test_ring_env.alloc.fail_at = test_ring_env.alloc.allocs + n;
		int rc = ring_new(&test_ring_env.env, NULL, m, 8, &r);
		test_ring_env.alloc.fail_at = 0;
		if (rc == 0) {
			ring_free(r);
			break;
		}
		assert_int_equal(rc, MESH_ENOMEM);
		assert_null(r);
		assert_int_equal(test_ring_env.alloc.live, 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn)                                                                  \
	cmocka_unit_test_setup_teardown(fn, test_ring_setup, test_ring_teardown)
	    T(test_ring_siphash_vectors),
	    T(test_ring_same_members_any_order),
	    T(test_ring_digest_follows_placement_inputs),
	    T(test_ring_owners_distinct_and_zone_spread),
	    T(test_ring_balance),
	    T(test_ring_weights),
	    T(test_ring_moves_on_join),
	    T(test_ring_moves_on_leave),
	    T(test_ring_drain),
	    T(test_ring_bounded_load_cap_holds),
	    T(test_ring_bounded_moves_reported),
	    T(test_ring_owned_and_format),
	    T(test_ring_bad_input),
	    T(test_ring_out_of_memory),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
