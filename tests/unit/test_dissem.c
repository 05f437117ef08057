/*
 * test_dissem.c - the piggyback queue: least-sent first, retirement at the
 * limit, one item per owner slot, byte budgets, allocation failure.
 */
#include "dissem.h"
#include "mesh.pb-c.h"
#include "mesh_err.h"
#include "test_env.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#define FIELD 15

/* An encoded Update naming @name, so packed output parses as a Packet. */
static size_t
enc_update(const char *name, uint32_t inc, uint8_t *buf)
{
	Mesh__Update u = MESH__UPDATE__INIT;
	u.name = (char *)name;
	u.incarnation = inc;
	return mesh__update__pack(&u, buf);
}

static void
push(struct dissem *d, struct dissem_item **slot, const char *name,
     uint32_t inc)
{
	uint8_t buf[128];
	size_t n = enc_update(name, inc, buf);
	assert_int_equal(dissem_push(d, slot, buf, n), 0);
}

/* Packs into a Packet and returns the names in order (comma separated). */
static size_t
pack_names(struct dissem *d, uint32_t limit, struct dissem_item *first,
	   size_t cap, char *names, size_t names_cap)
{
	uint8_t buf[2048];
	size_t n = dissem_pack(d, FIELD, limit, first, buf, cap);
	assert_true(n <= cap);
	Mesh__Packet *p = mesh__packet__unpack(NULL, n, buf);
	assert_non_null(p);
	names[0] = 0;
	for (size_t i = 0; i < p->n_updates; i++) {
		if (i > 0)
			strncat(names, ",", names_cap - strlen(names) - 1);
		strncat(names, p->updates[i]->name,
			names_cap - strlen(names) - 1);
	}
	size_t count = p->n_updates;
	mesh__packet__free_unpacked(p, NULL);
	return count;
}

static void
test_dissem_least_sent_first(void **state)
{
	(void)state;
	struct test_env t;
	test_env_init(&t);
	struct dissem d;
	dissem_init(&d, &t.env);
	struct dissem_item *a = NULL, *b = NULL;
	push(&d, &a, "aa", 1);
	push(&d, &b, "bb", 1);
	char names[128];
	/* Room for one update (2 + 6 bytes) at a time. */
	size_t one = dissem_field_size(FIELD, 6);
	assert_int_equal(pack_names(&d, 10, NULL, one, names, sizeof(names)),
			 1);
	assert_string_equal(names, "aa");
	assert_int_equal(pack_names(&d, 10, NULL, one, names, sizeof(names)),
			 1);
	assert_string_equal(names, "bb");
	assert_int_equal(pack_names(&d, 10, NULL, one, names, sizeof(names)),
			 1);
	assert_string_equal(names, "aa");
	/* A newcomer jumps the queue: it has been sent least. */
	struct dissem_item *c = NULL;
	push(&d, &c, "cc", 1);
	assert_int_equal(pack_names(&d, 10, NULL, one, names, sizeof(names)),
			 1);
	assert_string_equal(names, "cc");
	assert_int_equal(
	    pack_names(&d, 10, NULL, sizeof(names), names, sizeof(names)), 3);
	assert_string_equal(names, "bb,cc,aa");
	dissem_destroy(&d);
	assert_null(a);
	assert_null(b);
	assert_null(c);
	assert_int_equal(t.alloc.live, 0);
}

static void
test_dissem_retires_at_limit(void **state)
{
	(void)state;
	struct test_env t;
	test_env_init(&t);
	struct dissem d;
	dissem_init(&d, &t.env);
	struct dissem_item *a = NULL;
	push(&d, &a, "aa", 1);
	char names[64];
	for (int i = 0; i < 3; i++) {
		assert_non_null(a);
		assert_int_equal(dissem_count(&d), 1);
		assert_int_equal(
		    pack_names(&d, 3, NULL, 512, names, sizeof(names)), 1);
	}
	/* Sent three times: retired, slot cleared, memory back. */
	assert_null(a);
	assert_int_equal(dissem_count(&d), 0);
	assert_int_equal(t.alloc.live, 0);
	assert_int_equal(pack_names(&d, 3, NULL, 512, names, sizeof(names)), 0);
	/* A limit of 0 still sends once. */
	push(&d, &a, "aa", 1);
	assert_int_equal(pack_names(&d, 0, NULL, 512, names, sizeof(names)), 1);
	assert_null(a);
	dissem_destroy(&d);
}

static void
test_dissem_push_replaces_slot(void **state)
{
	(void)state;
	struct test_env t;
	test_env_init(&t);
	struct dissem d;
	dissem_init(&d, &t.env);
	struct dissem_item *a = NULL;
	push(&d, &a, "old", 1);
	push(&d, &a, "new", 2);
	assert_int_equal(dissem_count(&d), 1);
	assert_int_equal(t.alloc.live, 1);
	char names[64];
	assert_int_equal(pack_names(&d, 5, NULL, 512, names, sizeof(names)), 1);
	assert_string_equal(names, "new");
	dissem_drop(&d, &a);
	assert_null(a);
	assert_int_equal(dissem_count(&d), 0);
	dissem_drop(&d, &a); /* NULL slot is fine */
	dissem_destroy(&d);
	assert_int_equal(t.alloc.live, 0);
}

static void
test_dissem_first_goes_first(void **state)
{
	(void)state;
	struct test_env t;
	test_env_init(&t);
	struct dissem d;
	dissem_init(&d, &t.env);
	struct dissem_item *a = NULL, *b = NULL;
	push(&d, &a, "aa", 1);
	push(&d, &b, "bb", 1);
	char names[64];
	size_t one = dissem_field_size(FIELD, 6);
	/* b is the suspect's own item: it goes out even though a has been
	 * sent less and the budget holds only one. */
	assert_int_equal(pack_names(&d, 10, b, one, names, sizeof(names)), 1);
	assert_string_equal(names, "bb");
	assert_int_equal(pack_names(&d, 10, b, 512, names, sizeof(names)), 2);
	assert_string_equal(names, "bb,aa");
	/* Nothing fits: nothing is written, nothing counted as sent. */
	assert_int_equal(pack_names(&d, 10, b, one - 1, names, sizeof(names)),
			 0);
	dissem_destroy(&d);
}

static void
test_dissem_pack_respects_budget(void **state)
{
	(void)state;
	struct test_env t;
	test_env_init(&t);
	struct dissem d;
	dissem_init(&d, &t.env);
	struct dissem_item *slots[300] = {0};
	for (int i = 0; i < 300; i++) {
		char name[16];
		snprintf(name, sizeof(name), "m%03d", i);
		push(&d, &slots[i], name, (uint32_t)i);
	}
	uint8_t buf[1400];
	for (size_t cap = 0; cap < 64; cap += 7) {
		size_t n = dissem_pack(&d, FIELD, 64, NULL, buf, cap);
		assert_true(n <= cap);
	}
	/* A full datagram takes at most 256 items per pack and never more
	 * than the budget. */
	size_t n = dissem_pack(&d, FIELD, 64, NULL, buf, sizeof(buf));
	assert_true(n <= sizeof(buf));
	assert_true(n > sizeof(buf) - 16);
	Mesh__Packet *p = mesh__packet__unpack(NULL, n, buf);
	assert_non_null(p);
	assert_true(p->n_updates > 50);
	mesh__packet__free_unpacked(p, NULL);
	dissem_destroy(&d);
	for (int i = 0; i < 300; i++)
		assert_null(slots[i]);
	assert_int_equal(t.alloc.live, 0);
}

/* Items too big for the room left are passed over, but the search stops
 * after a bounded number of them: packing stays O(picked) in a queue of
 * thousands. */
static void
test_dissem_pack_bounded_search(void **state)
{
	(void)state;
	struct test_env t;
	test_env_init(&t);
	char big[101];
	memset(big, 'b', 100);
	big[100] = 0;
	uint8_t one[128];
	size_t big_len = enc_update(big, 1, one);
	size_t small_len = enc_update("s", 1, one);
	size_t cap = dissem_field_size(FIELD, big_len) +
		     dissem_field_size(FIELD, small_len);
	for (int nbig = 8; nbig <= 40; nbig += 32) {
		struct dissem d;
		dissem_init(&d, &t.env);
		struct dissem_item *slots[41] = {0};
		for (int i = 0; i < nbig; i++) {
			char name[101];
			memcpy(name, big, sizeof(name));
			name[0] = (char)('A' + i % 26);
			name[1] = (char)('A' + i / 26);
			push(&d, &slots[i], name, 1);
		}
		push(&d, &slots[nbig], "s", 1);
		char names[512];
		size_t n = pack_names(&d, 10, NULL, cap, names, sizeof(names));
		/* One big item fits; the small one behind nbig - 1 that do
		 * not is found only if the search did not give up first. */
		if (nbig == 8) {
			assert_int_equal(n, 2);
			assert_non_null(strstr(names, ",s"));
		} else {
			assert_int_equal(n, 1);
			assert_null(strstr(names, ",s"));
		}
		dissem_destroy(&d);
	}
	assert_int_equal(t.alloc.live, 0);
}

static void
test_dissem_field_size_matches_encoding(void **state)
{
	(void)state;
	struct test_env t;
	test_env_init(&t);
	struct dissem d;
	dissem_init(&d, &t.env);
	static uint8_t payload[20000];
	static uint8_t out[21000];
	size_t lens[] = {0, 1, 127, 128, 16383, 16384};
	uint32_t fields[] = {1, 15, 16, 2047, 2048};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]);
		     f++) {
			struct dissem_item *a = NULL;
			assert_int_equal(dissem_push(&d, &a, payload, lens[i]),
					 0);
			size_t need = dissem_field_size(fields[f], lens[i]);
			assert_int_equal(
			    dissem_pack(&d, fields[f], 1, NULL, out, need - 1),
			    0);
			assert_int_equal(
			    dissem_pack(&d, fields[f], 1, NULL, out, need),
			    need);
			assert_null(a);
		}
	}
	dissem_destroy(&d);
	assert_int_equal(t.alloc.live, 0);
}

static void
test_dissem_push_enomem_keeps_old(void **state)
{
	(void)state;
	struct test_env t;
	test_env_init(&t);
	struct dissem d;
	dissem_init(&d, &t.env);
	struct dissem_item *a = NULL;
	push(&d, &a, "old", 1);
	struct dissem_item *was = a;
	uint8_t buf[64];
	size_t n = enc_update("new", 2, buf);
	t.alloc.fail_at = t.alloc.allocs + 1;
	assert_int_equal(dissem_push(&d, &a, buf, n), MESH_ENOMEM);
	assert_ptr_equal(a, was);
	assert_int_equal(dissem_count(&d), 1);
	char names[64];
	assert_int_equal(pack_names(&d, 5, NULL, 512, names, sizeof(names)), 1);
	assert_string_equal(names, "old");
	dissem_destroy(&d);
	assert_null(a);
	assert_int_equal(t.alloc.live, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dissem_least_sent_first),
	    cmocka_unit_test(test_dissem_retires_at_limit),
	    cmocka_unit_test(test_dissem_push_replaces_slot),
	    cmocka_unit_test(test_dissem_first_goes_first),
	    cmocka_unit_test(test_dissem_pack_respects_budget),
	    cmocka_unit_test(test_dissem_pack_bounded_search),
	    cmocka_unit_test(test_dissem_field_size_matches_encoding),
	    cmocka_unit_test(test_dissem_push_enomem_keeps_old),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
