/* test_store.c - identity and incarnation in LMDB (agent/store). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mesh_err.h"
#include "store.h"
#include "test_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fixture {
	char dir[64];
	struct test_env t;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	strcpy(f->dir, "/tmp/test_store.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	test_env_init(&f->t);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char path[128];
	snprintf(path, sizeof(path), "%s/mesh.mdb", f->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/mesh.mdb-lock", f->dir);
	unlink(path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void
test_store_identity_created_once(void **state)
{
	struct fixture *f = *state;
	struct store *s;
	struct store_identity a, b;
	assert_int_equal(store_open(f->dir, 0, &f->t.env, &s), 0);
	assert_int_equal(store_identity_load(s, "node-1", &a), 0);
	assert_true(a.created);
	assert_int_equal(strlen(a.node_id), STORE_NODE_ID_HEX);
	store_close(s);
	assert_int_equal(store_open(f->dir, 0, &f->t.env, &s), 0);
	assert_int_equal(store_identity_load(s, "node-1", &b), 0);
	assert_false(b.created);
	assert_memory_equal(a.public_key, b.public_key, STORE_PUBKEY_BYTES);
	assert_memory_equal(a.secret_key, b.secret_key, STORE_SECKEY_BYTES);
	assert_string_equal(a.node_id, b.node_id);
	store_close(s);
}

static void
test_store_identity_bound_to_name(void **state)
{
	struct fixture *f = *state;
	struct store *s;
	struct store_identity a;
	assert_int_equal(store_open(f->dir, 0, &f->t.env, &s), 0);
	assert_int_equal(store_identity_load(s, "node-1", &a), 0);
	assert_int_equal(store_identity_load(s, "node-2", &a), MESH_ECONFLICT);
	store_close(s);
}

static void
test_store_incarnation_grows_across_restarts(void **state)
{
	struct fixture *f = *state;
	struct store *s;
	uint32_t inc = 0;
	assert_int_equal(store_open(f->dir, 0, &f->t.env, &s), 0);
	assert_int_equal(store_incarnation_next(s, &inc), 0);
	assert_int_equal(inc, 1);
	assert_int_equal(store_incarnation_save(s, 7), 0);
	assert_int_equal(store_incarnation_save(s, 3), 0); /* lower: kept 7 */
	store_close(s);
	assert_int_equal(store_open(f->dir, 0, &f->t.env, &s), 0);
	assert_int_equal(store_incarnation_next(s, &inc), 0);
	assert_int_equal(inc, 8);
	store_close(s);
}

static void
test_store_open_missing_dir_fails(void **state)
{
	struct fixture *f = *state;
	struct store *s = NULL;
	assert_int_not_equal(
	    store_open("/nonexistent/dir/for/test", 0, &f->t.env, &s), 0);
	assert_null(s);
}

static void
test_store_flag_survives_reopen(void **state)
{
	struct fixture *f = *state;
	struct store *s;
	bool on = true;
	assert_int_equal(store_open(f->dir, 0, &f->t.env, &s), 0);
	assert_int_equal(store_flag_get(s, "draining", &on), 0);
	assert_false(on);
	assert_int_equal(store_flag_set(s, "draining", true), 0);
	assert_int_equal(store_flag_set(s, "", true), MESH_EINVAL);
	store_close(s);
	assert_int_equal(store_open(f->dir, 0, &f->t.env, &s), 0);
	assert_int_equal(store_flag_get(s, "draining", &on), 0);
	assert_true(on);
	assert_int_equal(store_flag_set(s, "draining", false), 0);
	assert_int_equal(store_flag_get(s, "draining", &on), 0);
	assert_false(on);
	store_close(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_store_identity_created_once,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_identity_bound_to_name,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_store_incarnation_grows_across_restarts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_open_missing_dir_fails,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_flag_survives_reopen,
					    setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
