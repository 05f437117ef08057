/* test_place.c - the ring follows the membership view (agent/core/place). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mesh_err.h"
#include "place.h"
#include "test_env.h"

#include <stdio.h>
#include <string.h>

#define NPACKS 300

struct fixture {
	struct test_env t;
	struct swim *s;
	struct place *p;
	uint64_t packs[NPACKS];
};

static struct swim_addr
addr_of(int i)
{
	struct swim_addr a = {.family = 4, .ip = {127, 0, 0, 1}};
	a.port = (uint16_t)(7000 + i);
	return a;
}

static int
setup(void **state)
{
	static struct fixture f;
	memset(&f, 0, sizeof(f));
	test_env_init(&f.t);
	struct swim_config cfg;
	swim_config_default(&cfg);
	strcpy(cfg.name, "n0");
	strcpy(cfg.meta.zone, "z0");
	cfg.addr = addr_of(0);
	cfg.incarnation = 1;
	if (swim_new(&cfg, &f.t.env, 0, &f.s) != 0)
		return -1;
	for (int i = 1; i < 6; i++) {
		char name[8];
		struct swim_meta m = {0};
		snprintf(name, sizeof(name), "n%d", i);
		snprintf(m.zone, sizeof(m.zone), "z%d", i % 3);
		if (swim_add_known(f.s, 0, name, &(struct swim_addr){0}, 1,
				   &m) != MESH_EINVAL)
			return -1; /* an address is required */
		struct swim_addr a = addr_of(i);
		if (swim_add_known(f.s, 0, name, &a, 1, &m) != 0)
			return -1;
	}
	for (int i = 0; i < NPACKS; i++)
		f.packs[i] = 5000 + (uint64_t)i;
	if (place_new(&f.t.env, 3, &f.p) != 0 ||
	    place_set_packs(f.p, f.packs, NPACKS) != 0)
		return -1;
	*state = &f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	place_free(f->p);
	swim_free(f->s);
	return f->t.alloc.live == 0 ? 0 : -1;
}

/* Sum over members of the packs each owns. */
static size_t
total_owned(struct fixture *f, const char *skip)
{
	uint64_t out[NPACKS];
	size_t total = 0;
	for (size_t i = 0; i < swim_member_count(f->s); i++) {
		struct swim_member_info mi;
		size_t n = 0;
		swim_member_at(f->s, i, &mi);
		if (skip != NULL && strcmp(mi.name, skip) == 0)
			continue;
		int rc = place_owned(f->p, mi.name, out, &n);
		assert_int_equal(rc, 0);
		total += n;
	}
	return total;
}

static void
test_place_every_pack_has_replicas(void **state)
{
	struct fixture *f = *state;
	uint64_t out[NPACKS];
	size_t n;
	assert_int_equal(place_owned(f->p, "n0", out, &n), MESH_ESTATE);
	assert_int_equal(place_update(f->p, f->s, NULL), 0);
	assert_int_equal(total_owned(f, NULL), 3 * NPACKS);
	assert_int_equal(place_owned(f->p, "nobody", out, &n), MESH_ENOENT);
}

static void
test_place_duplicate_packs_refused(void **state)
{
	struct fixture *f = *state;
	uint64_t dup[3] = {1, 2, 1};
	assert_int_equal(place_set_packs(f->p, dup, 3), MESH_EEXIST);
	assert_int_equal(place_pack_count(f->p), NPACKS);
}

static void
test_place_drain_moves_packs_away(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(place_update(f->p, f->s, NULL), 0);
	uint64_t out[NPACKS];
	size_t before = 0, after = 0, moves = 0;
	assert_int_equal(place_owned(f->p, "n0", out, &before), 0);
	assert_true(before > 0);
	struct swim_meta m = {0};
	strcpy(m.zone, "z0");
	m.kv_count = 1;
	strcpy(m.kv[0].key, PLACE_TAG_DRAIN);
	strcpy(m.kv[0].value, "1");
	assert_true(place_meta_is_draining(&m));
	assert_int_equal(swim_set_meta(f->s, 1, &m), 0);
	assert_int_equal(place_update(f->p, f->s, &moves), 0);
	assert_int_equal(place_owned(f->p, "n0", out, &after), 0);
	assert_int_equal(after, 0);
	/* Exactly the drained node's copies moved, and all are still held. */
	assert_int_equal(moves, before);
	assert_int_equal(total_owned(f, NULL), 3 * NPACKS);
}

static void
test_place_capacity_weights_load(void **state)
{
	struct fixture *f = *state;
	struct swim_meta m = {0};
	strcpy(m.zone, "z0");
	m.kv_count = 1;
	strcpy(m.kv[0].key, PLACE_TAG_CAPACITY);
	strcpy(m.kv[0].value, "400");
	assert_int_equal(place_update(f->p, f->s, NULL), 0);
	uint64_t out[NPACKS];
	size_t plain = 0, heavy = 0;
	assert_int_equal(place_owned(f->p, "n0", out, &plain), 0);
	assert_int_equal(swim_set_meta(f->s, 1, &m), 0);
	assert_int_equal(place_update(f->p, f->s, NULL), 0);
	assert_int_equal(place_owned(f->p, "n0", out, &heavy), 0);
	assert_true(heavy > plain);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_place_every_pack_has_replicas,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_place_duplicate_packs_refused,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_place_drain_moves_packs_away,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_place_capacity_weights_load,
					    setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
