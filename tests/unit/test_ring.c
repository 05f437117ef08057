/*
 * test_ring.c - the placement ring: determinism, zone spread, minimal moves
 * on join and leave (replicas too), bounded loads, drain and bad input;
 * ring_assign_fit(): memory as a hard limit, zone and region constraints.
 */
#include "mesh_err.h"
#include "ring_impl.h"
#include "test_env.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ---- ring_assign_fit: memory, zones and regions ---------------------- */

static struct ring_pack test_ring_pk[TEST_RING_KEYS];
static uint8_t test_ring_why[TEST_RING_KEYS];

/* Pack k of test_ring_ids with @replicas and @mem, no domain. */
static void
test_ring_packs(const struct ring *r, size_t n, uint8_t replicas, uint32_t mem)
{
	for (size_t k = 0; k < n; k++)
		test_ring_pk[k] = (struct ring_pack){
		    .hash = ring_hash_id(r, test_ring_ids[k]),
		    .mem = mem,
		    .zone = RING_ANY,
		    .region = RING_ANY,
		    .replicas = replicas,
		};
}

/* The ring of those of @m[0..@n) whose zone is @zone (and region @region
 * unless NULL). */
static struct ring *
test_ring_part(const struct ring_member *m, size_t n, const char *zone,
	       const char *region)
{
	struct ring_member part[TEST_RING_MAX];
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(m[i].zone, zone) == 0 &&
		    (region == NULL || strcmp(m[i].region, region) == 0))
			part[k++] = m[i];
	return test_ring_build(part, k);
}

/* Owners @o[0..@R) of @a against @want from ring_lookup() on @b, by name. */
static void
test_ring_same_names(const struct ring *a, const uint32_t *o,
		     const struct ring *b, const uint32_t *want, unsigned R)
{
	for (unsigned j = 0; j < R; j++) {
		assert_true(o[j] != RING_NONE);
		assert_string_equal(ring_node(a, o[j])->name,
				    ring_node(b, want[j])->name);
	}
}

static void
test_ring_fit_equals_lookup(void **state)
{
	(void)state;
	struct ring_member m[24];
	test_ring_members(m, 24);
	struct ring *r = test_ring_build(m, 24);
	for (unsigned i = 0; i < 24; i++)
		m[i].mem = 1u << 30; /* never short: the same owners */
	struct ring *big = test_ring_build(m, 24);
	const size_t n = 5000;
	uint64_t need = 0;
	test_ring_packs(r, n, 1, 0);
	for (size_t k = 0; k < n; k++) {
		/* Packs needing memory take the path of the constraint
		 * checks; those needing none that of ring_lookup(). */
		test_ring_pk[k].replicas = (uint8_t)(1 + k % 4);
		test_ring_pk[k].mem = (uint32_t)(k % 3) * 100;
		need += (uint64_t)test_ring_pk[k].mem * (1 + k % 4);
	}
	for (int pass = 0; pass < 2; pass++) {
		const struct ring *x = pass == 0 ? r : big;
		uint64_t used[24], sum = 0;
		struct ring_assign_stats st;
		memset(test_ring_why, 0xff, n);
		assert_int_equal(ring_assign_fit(x, test_ring_pk, n, 4, NULL,
						 test_ring_own_a, test_ring_why,
						 used, &st),
				 0);
		for (size_t k = 0; k < n; k++) {
			uint32_t o[4];
			unsigned R = test_ring_pk[k].replicas;
			assert_int_equal(
			    ring_lookup(x, test_ring_pk[k].hash, R, o), R);
			assert_memory_equal(&test_ring_own_a[k * 4], o,
					    R * sizeof(*o));
			for (unsigned j = R; j < 4; j++)
				assert_int_equal(test_ring_own_a[k * 4 + j],
						 RING_NONE);
			assert_int_equal(test_ring_why[k], RING_FIT_OK);
		}
		for (unsigned i = 0; i < 24; i++)
			sum += used[i];
		assert_true(sum == need);
		assert_int_equal(st.placed, 12500); /* 1,250 each of 1..4 */
		assert_int_equal(st.displaced, 0);
		assert_int_equal(st.owners, 4);
	}
	ring_free(r);
	ring_free(big);
}

static uint64_t test_ring_sort_hash[TEST_RING_KEYS];

static int
test_ring_cmp_hash_id(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	if (test_ring_sort_hash[x] != test_ring_sort_hash[y])
		return test_ring_sort_hash[x] < test_ring_sort_hash[y] ? -1 : 1;
	return test_ring_ids[x] < test_ring_ids[y] ? -1 : 1;
}

static void
test_ring_fit_bounded_equals_assign(void **state)
{
	(void)state;
	/* The uneven ring of the cap test, then four members with one
	 * heavy: three replicas there need the over-cap fill. */
	struct ring_member m[30];
	test_ring_members(m, 30);
	m[0].weight = 200;
	struct ring_config cfg;
	ring_config_default(&cfg);
	cfg.vnodes = 16;
	cfg.probes = 1;
	static uint32_t pos[TEST_RING_KEYS];
	for (int round = 0; round < 2; round++) {
		size_t count = round == 0 ? 30 : 4;
		unsigned R = round == 0 ? 2 : 3;
		if (round == 1)
			m[0].weight = 1000;
		struct ring *r = NULL;
		assert_int_equal(
		    ring_new(&test_ring_env.env, &cfg, m, count, &r), 0);
		struct ring_place pl = {
		    .replicas = R, .bounded = true, .eps_milli = 100};
		struct ring_assign_stats sa, sf;
		assert_int_equal(ring_assign(r, test_ring_ids, TEST_RING_KEYS,
					     &pl, test_ring_own_a, &sa),
				 0);
		for (uint32_t i = 0; i < TEST_RING_KEYS; i++) {
			test_ring_sort_hash[i] =
			    ring_hash_id(r, test_ring_ids[i]);
			pos[i] = i;
		}
		qsort(pos, TEST_RING_KEYS, sizeof(*pos), test_ring_cmp_hash_id);
		for (size_t k = 0; k < TEST_RING_KEYS; k++)
			test_ring_pk[k] = (struct ring_pack){
			    .hash = test_ring_sort_hash[pos[k]],
			    .zone = RING_ANY,
			    .region = RING_ANY,
			    .replicas = (uint8_t)R,
			};
		assert_int_equal(
		    ring_assign_fit(r, test_ring_pk, TEST_RING_KEYS, R, &pl,
				    test_ring_own_b, NULL, NULL, &sf),
		    0);
		for (size_t k = 0; k < TEST_RING_KEYS; k++)
			assert_memory_equal(&test_ring_own_b[k * R],
					    &test_ring_own_a[pos[k] * R],
					    R * sizeof(uint32_t));
		assert_true(sa.displaced > 0);
		if (round == 1)
			assert_true(sa.over_cap > 0);
		assert_int_equal(sf.placed, sa.placed);
		assert_int_equal(sf.max_load, sa.max_load);
		assert_int_equal(sf.max_cap, sa.max_cap);
		assert_int_equal(sf.displaced, sa.displaced);
		assert_int_equal(sf.over_cap, sa.over_cap);
		assert_int_equal(sf.owners, sa.owners);
		ring_free(r);
	}
}

static void
test_ring_fit_memory_exact(void **state)
{
	(void)state;
	struct ring_member m[3];
	test_ring_members(m, 3); /* one per zone */
	m[0].mem = 1000;
	m[1].mem = 1000;
	m[2].mem = 2000;
	struct ring *r = test_ring_build(m, 3);
	assert_int_equal(ring_node(r, 2)->mem, 2000);
	/* need, replicas -> owners wanted, why */
	const struct {
		uint32_t mem;
		uint8_t replicas;
		unsigned got;
		uint8_t why;
	} c[] = {
	    {400, 3, 3, RING_FIT_OK},  /* 400 400 400 */
	    {400, 3, 3, RING_FIT_OK},  /* 800 800 800 */
	    {400, 3, 1, RING_FIT_MEM}, /* only n02 has room: 1200 */
	    {200, 3, 3, RING_FIT_OK},  /* 1000 1000 1400 */
	    {0, 3, 3, RING_FIT_OK},    /* no need fits a full node */
	    {700, 2, 0, RING_FIT_MEM}, /* 2100 > 2000: nowhere */
	    {600, 1, 1, RING_FIT_OK},  /* n02 exactly full */
	    {1, 1, 0, RING_FIT_MEM},
	};
	const size_t n = sizeof(c) / sizeof(c[0]);
	for (size_t k = 0; k < n; k++)
		test_ring_pk[k] = (struct ring_pack){
		    .hash = ring_hash_id(r, k),
		    .mem = c[k].mem,
		    .zone = RING_ANY,
		    .region = RING_ANY,
		    .replicas = c[k].replicas,
		};
	uint64_t used[3];
	struct ring_assign_stats st;
	assert_int_equal(ring_assign_fit(r, test_ring_pk, n, 3, NULL,
					 test_ring_own_a, test_ring_why, used,
					 &st),
			 0);
	for (size_t k = 0; k < n; k++) {
		const uint32_t *o = &test_ring_own_a[k * 3];
		unsigned got = 0;
		while (got < 3 && o[got] != RING_NONE)
			got++;
		assert_int_equal(got, c[k].got);
		for (unsigned j = got; j < 3; j++)
			assert_int_equal(o[j], RING_NONE);
		assert_int_equal(test_ring_why[k], c[k].why);
	}
	assert_int_equal(test_ring_own_a[2 * 3], 2);
	assert_int_equal(test_ring_own_a[6 * 3], 2);
	assert_int_equal(used[0], 1000);
	assert_int_equal(used[1], 1000);
	assert_int_equal(used[2], 2000);
	assert_int_equal(st.placed, 3 + 3 + 1 + 3 + 3 + 0 + 1 + 0);
	ring_free(r);
}

static uint64_t
test_ring_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/*
 * Replays a placement pack by pack: owners distinct, eligible and in the
 * pack's domain; no capped node ever over its memory; a pack short of
 * owners for memory had no other eligible node in its domain with room at
 * its turn; the reason given matches. Returns the RING_FIT_MEM count.
 */
static size_t
test_ring_replay(const struct ring *r, const struct ring_pack *pk, size_t n,
		 unsigned stride, const uint32_t *own, const uint8_t *why,
		 const uint64_t *mem_used)
{
	uint64_t used[TEST_RING_MAX] = {0};
	uint32_t N = ring_node_count(r);
	size_t short_mem = 0;
	for (size_t k = 0; k < n; k++) {
		const uint32_t *o = own + k * stride;
		const struct ring_pack *p = &pk[k];
		bool in[TEST_RING_MAX];
		uint32_t elig = 0;
		for (uint32_t i = 0; i < N; i++) {
			const struct ring__node *nd = &r->nodes[i];
			in[i] = nd->info.eligible &&
				(p->zone == RING_ANY ||
				 nd->dom[RING__ZONE] == p->zone) &&
				(p->region == RING_ANY ||
				 nd->dom[RING__REGION] == p->region);
			elig += in[i];
		}
		unsigned got = 0;
		while (got < stride && o[got] != RING_NONE)
			got++;
		for (unsigned j = got; j < stride; j++)
			assert_int_equal(o[j], RING_NONE);
		for (unsigned j = 0; j < got; j++) {
			assert_true(o[j] < N && in[o[j]]);
			for (unsigned i = 0; i < j; i++)
				assert_int_not_equal(o[i], o[j]);
		}
		unsigned want = p->replicas < elig ? p->replicas : elig;
		if (elig == 0 && p->zone != RING_ANY) {
			assert_int_equal(why[k], RING_FIT_DOMAIN);
		} else if (got < want) {
			assert_int_equal(why[k], RING_FIT_MEM);
			short_mem++;
			for (uint32_t i = 0; i < N; i++) {
				bool owner = false;
				for (unsigned j = 0; j < got; j++)
					owner = owner || o[j] == i;
				uint32_t mem = ring_node(r, i)->mem;
				if (in[i] && !owner)
					assert_true(mem != 0 &&
						    used[i] + p->mem > mem);
			}
		} else {
			assert_int_equal(got, want);
			assert_int_equal(why[k], want < p->replicas
						     ? RING_FIT_NODES
						     : RING_FIT_OK);
		}
		for (unsigned j = 0; j < got; j++) {
			uint32_t mem = ring_node(r, o[j])->mem;
			used[o[j]] += p->mem;
			assert_true(mem == 0 || used[o[j]] <= mem);
		}
	}
	for (uint32_t i = 0; i < N; i++)
		assert_true(used[i] == mem_used[i]);
	return short_mem;
}

static void
test_ring_fit_memory_never_over(void **state)
{
	(void)state;
	static const char *zones[] = {"z0", "z1", "z2"};
	size_t short_mem = 0, ok = 0;
	for (uint64_t seed = 1; seed <= 8; seed++) {
		uint64_t s = seed;
		size_t N = 4 + test_ring_rand(&s) % 30, n = 3000;
		struct ring_member m[TEST_RING_MAX];
		test_ring_members(m, N);
		/* About 3000 packs * 2 replicas * 200 MiB, over capacity
		 * that is 60 to 120 % of it: memory runs out, not always. */
		uint64_t per = 1200000 * (6 + seed % 7) / 10 / N;
		for (size_t i = 0; i < N; i++) {
			m[i].mem =
			    (uint32_t)(per / 2 + test_ring_rand(&s) % per);
			m[i].draining = test_ring_rand(&s) % 8 == 0;
		}
		if (seed % 3 == 0)
			m[0].mem = 0; /* one unlimited node */
		struct ring *r = test_ring_build(m, N);
		for (size_t k = 0; k < n; k++) {
			uint64_t x = test_ring_rand(&s);
			int z = ring_zone_id(r, zones[x % 3]);
			test_ring_pk[k] = (struct ring_pack){
			    .hash = test_ring_rand(&s),
			    .mem = (uint32_t)(x >> 8) % 400,
			    .zone =
				x % 5 == 0 && z >= 0 ? (uint32_t)z : RING_ANY,
			    .region = RING_ANY,
			    .replicas = (uint8_t)(1 + (x >> 20) % 3),
			};
		}
		struct ring_place pl = {
		    .replicas = 3, .bounded = seed % 2 == 0, .eps_milli = 200};
		uint64_t used[TEST_RING_MAX];
		assert_int_equal(ring_assign_fit(r, test_ring_pk, n, 3, &pl,
						 test_ring_own_a, test_ring_why,
						 used, NULL),
				 0);
		short_mem +=
		    test_ring_replay(r, test_ring_pk, n, 3, test_ring_own_a,
				     test_ring_why, used);
		for (size_t k = 0; k < n; k++)
			ok += test_ring_why[k] == RING_FIT_OK;
		ring_free(r);
	}
	/* Both outcomes happened, so the checks above had work to do. */
	assert_true(short_mem > 100);
	assert_true(ok > 1000);
}

static void
test_ring_fit_zone(void **state)
{
	(void)state;
	/* 24 members in z0..z2 and n24, the only member of "zd", draining. */
	struct ring_member m[25];
	test_ring_members(m, 25);
	m[24].zone = "zd";
	m[24].draining = true;
	struct ring *r = test_ring_build(m, 25);
	struct ring *z1 = test_ring_part(m, 24, "z1", NULL);
	int zid = ring_zone_id(r, "z1");
	assert_true(zid >= 0);
	assert_int_equal(zid, r->nodes[1].dom[RING__ZONE]);
	assert_int_equal(ring_zone_id(r, "nope"), MESH_ENOENT);
	assert_int_equal(ring_zone_id(r, "zd"), MESH_ENOENT);
	assert_int_equal(ring_zone_id(r, NULL), MESH_ENOENT); /* "" */
	assert_int_equal(ring_zone_id(NULL, "z1"), MESH_EINVAL);

	/* Confined to z1 the owners are those of the ring of z1 alone:
	 * the same points, walked with the others left out. */
	const size_t n = 3000;
	test_ring_packs(r, n, 1, 0);
	for (size_t k = 0; k < n; k++) {
		test_ring_pk[k].zone = (uint32_t)zid;
		test_ring_pk[k].replicas = (uint8_t)(1 + k % 3);
		test_ring_pk[k].mem = (uint32_t)(k % 2);
	}
	assert_int_equal(ring_assign_fit(r, test_ring_pk, n, 3, NULL,
					 test_ring_own_a, test_ring_why, NULL,
					 NULL),
			 0);
	for (size_t k = 0; k < n; k++) {
		uint32_t o[3];
		unsigned R = test_ring_pk[k].replicas;
		assert_int_equal(ring_lookup(z1, test_ring_pk[k].hash, R, o),
				 R);
		test_ring_same_names(r, &test_ring_own_a[k * 3], z1, o, R);
		for (unsigned j = 0; j < R; j++)
			assert_string_equal(
			    ring_node(r, test_ring_own_a[k * 3 + j])->zone,
			    "z1");
		assert_int_equal(test_ring_why[k], RING_FIT_OK);
	}

	/* No eligible member in the zone, an id out of range or a stale
	 * value: no owner, RING_FIT_DOMAIN. */
	const uint32_t bad[] = {r->nodes[24].dom[RING__ZONE],
				r->ndom[RING__ZONE], RING_ANY - 1};
	for (size_t k = 0; k < 3; k++) {
		test_ring_pk[k].zone = bad[k];
		test_ring_pk[k].mem = 0;
	}
	struct ring_assign_stats st;
	assert_int_equal(ring_assign_fit(r, test_ring_pk, 3, 3, NULL,
					 test_ring_own_a, test_ring_why, NULL,
					 &st),
			 0);
	for (size_t k = 0; k < 3; k++) {
		assert_int_equal(test_ring_why[k], RING_FIT_DOMAIN);
		for (unsigned j = 0; j < 3; j++)
			assert_int_equal(test_ring_own_a[k * 3 + j], RING_NONE);
	}
	assert_int_equal(st.placed, 0);
	ring_free(r);
	ring_free(z1);
}

static void
test_ring_fit_regions_in_zone(void **state)
{
	(void)state;
	/* z0: members 0, 3, .., 21; regions r0/r1 of 4 members, each of
	 * two cells of 2. */
	struct ring_member m[24];
	test_ring_members(m, 24);
	struct ring *r = test_ring_build(m, 24);
	struct ring *r1 = test_ring_part(m, 24, "z0", "r1");
	int z0 = ring_zone_id(r, "z0"), z1 = ring_zone_id(r, "z1");
	int rid = ring_region_id(r, "z0", "r1");
	assert_true(z0 >= 0 && z1 >= 0 && rid >= 0);
	assert_int_equal(rid, r->nodes[3].dom[RING__REGION]);
	assert_int_equal(ring_region_id(r, "z0", "nope"), MESH_ENOENT);
	assert_int_equal(ring_region_id(r, "z9", "r1"), MESH_ENOENT);
	assert_true(ring_region_id(r, "z1", "r1") != rid);

	/* Zone z0, 2 and 4 replicas: the regions of z0 first, then its
	 * cells. Region (z0, r1), 2 replicas: its two cells. */
	const size_t n = 2000;
	test_ring_packs(r, n, 1, 0);
	for (size_t k = 0; k < n; k++) {
		struct ring_pack *p = &test_ring_pk[k];
		p->replicas = k % 3 == 0 ? 2 : 4;
		p->zone = (uint32_t)z0;
		if (k % 3 == 2) {
			p->replicas = 2;
			p->region = (uint32_t)rid;
			p->zone = k % 2 ? RING_ANY : (uint32_t)z0;
		}
	}
	assert_int_equal(ring_assign_fit(r, test_ring_pk, n, 4, NULL,
					 test_ring_own_a, test_ring_why, NULL,
					 NULL),
			 0);
	for (size_t k = 0; k < n; k++) {
		const uint32_t *o = &test_ring_own_a[k * 4];
		unsigned R = test_ring_pk[k].replicas;
		assert_int_equal(test_ring_why[k], RING_FIT_OK);
		for (unsigned j = 0; j < R; j++)
			assert_string_equal(ring_node(r, o[j])->zone, "z0");
		if (test_ring_pk[k].region == RING_ANY) {
			assert_int_equal(
			    test_ring_distinct(r, o, R, RING__REGION), 2);
			assert_int_equal(
			    test_ring_distinct(r, o, R, RING__CELL), R);
		} else {
			uint32_t want[2];
			assert_int_equal(
			    ring_lookup(r1, test_ring_pk[k].hash, 2, want), 2);
			test_ring_same_names(r, o, r1, want, 2);
			assert_int_equal(
			    test_ring_distinct(r, o, 2, RING__CELL), 2);
		}
	}

	/* A region outside the zone asked for names nothing. */
	test_ring_pk[0].zone = (uint32_t)z1;
	test_ring_pk[0].region = (uint32_t)rid;
	assert_int_equal(ring_assign_fit(r, test_ring_pk, 1, 4, NULL,
					 test_ring_own_a, test_ring_why, NULL,
					 NULL),
			 0);
	assert_int_equal(test_ring_why[0], RING_FIT_DOMAIN);
	assert_int_equal(test_ring_own_a[0], RING_NONE);
	ring_free(r);
	ring_free(r1);
}

static void
test_ring_fit_too_few_nodes(void **state)
{
	(void)state;
	struct ring_member m[24];
	test_ring_members(m, 24);
	m[9].mem = 100; /* n09: z0, r1 */
	struct ring *r = test_ring_build(m, 24);
	int rid = ring_region_id(r, "z0", "r1");
	assert_true(rid >= 0);
	test_ring_packs(r, 3, 6, 0);
	test_ring_pk[0].region = (uint32_t)rid; /* 4 members for 6 */
	test_ring_pk[1].region = (uint32_t)rid;
	test_ring_pk[1].mem = 200;    /* n09 cannot: 3, and memory is why */
	test_ring_pk[2].replicas = 8; /* 24 members: all 8 */
	uint64_t used[24];
	assert_int_equal(ring_assign_fit(r, test_ring_pk, 3, 8, NULL,
					 test_ring_own_a, test_ring_why, used,
					 NULL),
			 0);
	assert_int_equal(test_ring_why[0], RING_FIT_NODES);
	assert_int_equal(test_ring_distinct(r, test_ring_own_a, 4, 3), 4);
	assert_int_equal(test_ring_own_a[4], RING_NONE);
	assert_int_equal(test_ring_why[1], RING_FIT_MEM);
	assert_int_equal(test_ring_distinct(r, test_ring_own_a + 8, 3, 3), 3);
	assert_int_equal(test_ring_own_a[8 + 3], RING_NONE);
	assert_int_equal(used[9], 0);
	assert_int_equal(test_ring_why[2], RING_FIT_OK);
	ring_free(r);

	/* Two members for three replicas, no domain asked for. */
	r = test_ring_build(m, 2);
	test_ring_packs(r, 1, 3, 0);
	assert_int_equal(ring_assign_fit(r, test_ring_pk, 1, 3, NULL,
					 test_ring_own_a, test_ring_why, NULL,
					 NULL),
			 0);
	assert_int_equal(test_ring_why[0], RING_FIT_NODES);
	assert_int_equal(test_ring_distinct(r, test_ring_own_a, 2, 3), 2);
	assert_int_equal(test_ring_own_a[2], RING_NONE);
	ring_free(r);
}

static void
test_ring_fit_any_member_order(void **state)
{
	(void)state;
	struct ring_member m[24], rev[24], mix[24];
	test_ring_members(m, 24);
	for (size_t i = 0; i < 24; i++) {
		m[i].mem = 20000 + (uint32_t)i * 997 % 5000;
		m[i].weight = i % 5 == 0 ? 150 : 0;
		m[i].draining = i == 7;
	}
	for (size_t i = 0; i < 24; i++) {
		rev[i] = m[23 - i];
		mix[i] = m[(i * 7) % 24];
	}
	const struct ring_member *ms[3] = {m, rev, mix};
	const size_t n = 4000;
	static uint32_t own[3][4000 * 3];
	static uint8_t why[3][4000];
	uint64_t used[3][24];
	struct ring_place pl = {.bounded = true, .eps_milli = 250};
	for (int v = 0; v < 3; v++) {
		struct ring *r = test_ring_build(ms[v], 24);
		int z2 = ring_zone_id(r, "z2");
		assert_true(z2 >= 0);
		test_ring_packs(r, n, 1, 0);
		for (size_t k = 0; k < n; k++) {
			test_ring_pk[k].replicas = (uint8_t)(1 + k % 3);
			test_ring_pk[k].mem = 50 + (uint32_t)(k * 31 % 300);
			test_ring_pk[k].zone =
			    k % 4 == 0 ? (uint32_t)z2 : RING_ANY;
		}
		assert_int_equal(ring_assign_fit(r, test_ring_pk, n, 3, &pl,
						 own[v], why[v], used[v], NULL),
				 0);
		if (v == 0)
			assert_true(test_ring_replay(r, test_ring_pk, n, 3,
						     own[v], why[v],
						     used[v]) > 0);
		ring_free(r);
	}
	for (int v = 1; v < 3; v++) {
		assert_memory_equal(own[0], own[v], sizeof(own[0]));
		assert_memory_equal(why[0], why[v], sizeof(why[0]));
		assert_memory_equal(used[0], used[v], sizeof(used[0]));
	}
}

static void
test_ring_fit_bad_input(void **state)
{
	(void)state;
	struct ring_member m[4];
	test_ring_members(m, 4);
	struct ring *r = test_ring_build(m, 4);
	test_ring_packs(r, 2, 2, 10);
	uint32_t o[2 * RING_REPLICAS_MAX];
	uint8_t why[2] = {9, 9};
	uint64_t used[4] = {7, 7, 7, 7};
	for (size_t i = 0; i < 2 * RING_REPLICAS_MAX; i++)
		o[i] = 42;
	struct ring_place pl = {.bounded = true, .eps_milli = 1};
	const struct ring_pack *pk = test_ring_pk;

	assert_int_equal(
	    ring_assign_fit(NULL, pk, 2, 2, NULL, o, why, used, NULL),
	    MESH_EINVAL);
	assert_int_equal(
	    ring_assign_fit(r, NULL, 2, 2, NULL, o, why, used, NULL),
	    MESH_EINVAL);
	assert_int_equal(
	    ring_assign_fit(r, pk, 2, 2, NULL, NULL, why, used, NULL),
	    MESH_EINVAL);
	assert_int_equal(ring_assign_fit(r, pk, 2, 0, NULL, o, why, used, NULL),
			 MESH_EINVAL);
	assert_int_equal(ring_assign_fit(r, pk, 2, RING_REPLICAS_MAX + 1, NULL,
					 o, why, used, NULL),
			 MESH_EINVAL);
	assert_int_equal(ring_assign_fit(r, pk, 2, 2, &pl, o, why, used, NULL),
			 MESH_EINVAL); /* eps below RING_EPS_MIN */
	test_ring_pk[1].replicas = 3;  /* more than stride */
	assert_int_equal(ring_assign_fit(r, pk, 2, 2, NULL, o, why, used, NULL),
			 MESH_EINVAL);
	test_ring_pk[1].replicas = 0;
	assert_int_equal(ring_assign_fit(r, pk, 2, 2, NULL, o, why, used, NULL),
			 MESH_EINVAL);
	assert_int_equal(ring_assign_fit(r, pk, RING_ASSIGN_MAX + 1ull, 2, NULL,
					 o, why, used, NULL),
			 MESH_ERANGE);
	/* A bad pack anywhere: nothing written. */
	for (size_t i = 0; i < 2 * RING_REPLICAS_MAX; i++)
		assert_int_equal(o[i], 42);
	assert_int_equal(why[0], 9);
	assert_int_equal(used[0], 7);
	/* No packs is fine; opt->replicas is not looked at. */
	pl.eps_milli = 100;
	pl.replicas = 0;
	assert_int_equal(
	    ring_assign_fit(r, NULL, 0, 2, &pl, NULL, NULL, used, NULL), 0);
	assert_int_equal(used[0], 0);
	test_ring_pk[1].replicas = 2;
	assert_int_equal(ring_assign_fit(r, pk, 2, 2, &pl, o, why, used, NULL),
			 0);
	assert_int_equal(why[1], RING_FIT_OK);
	assert_true(o[3] < 4);

	/* No eligible member at all, with bounded loads: nothing placed. */
	for (size_t i = 0; i < 4; i++)
		m[i].draining = true;
	struct ring *none = test_ring_build(m, 4);
	assert_int_equal(
	    ring_assign_fit(none, pk, 2, 2, &pl, o, why, used, NULL), 0);
	assert_int_equal(why[0], RING_FIT_NODES);
	assert_int_equal(o[0], RING_NONE);
	assert_int_equal(used[0], 0);
	ring_free(none);

	/* Every allocation failing in turn: a clean error, nothing kept. */
	for (size_t k = 1; k < 8; k++) {
		o[0] = 42;
		test_ring_env.alloc.fail_at = test_ring_env.alloc.allocs + k;
		int rc = ring_assign_fit(r, pk, 2, 2, &pl, o, why, used, NULL);
		test_ring_env.alloc.fail_at = 0;
		if (rc == 0)
			break;
		assert_int_equal(rc, MESH_ENOMEM);
		assert_int_equal(o[0], 42);
	}
	ring_free(r);
}

static void
test_ring_digest_memory(void **state)
{
	(void)state;
	struct ring_member m[6];
	test_ring_members(m, 6);
	struct ring *a = test_ring_build(m, 6);
	/* Without memory the digest is the one rings had before memory was
	 * added (taken from that code), so mixed versions still agree. */
	assert_true(ring_digest(a) == 0x8b2242fa949016a1ull);
	m[2].mem = 4096;
	struct ring *b = test_ring_build(m, 6);
	m[2].mem = 8192;
	struct ring *c = test_ring_build(m, 6);
	assert_int_equal(ring_node(c, 2)->mem, 8192);
	assert_true(ring_digest(a) != ring_digest(b));
	assert_true(ring_digest(b) != ring_digest(c));
	ring_free(a);
	ring_free(b);
	ring_free(c);
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
	    T(test_ring_fit_equals_lookup),
	    T(test_ring_fit_bounded_equals_assign),
	    T(test_ring_fit_memory_exact),
	    T(test_ring_fit_memory_never_over),
	    T(test_ring_fit_zone),
	    T(test_ring_fit_regions_in_zone),
	    T(test_ring_fit_too_few_nodes),
	    T(test_ring_fit_any_member_order),
	    T(test_ring_fit_bad_input),
	    T(test_ring_digest_memory),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
