/*
 * test_kv.c - the tenant_kv.h contract, run against both backends: LMDB
 * (agent/store/store_kv.c, in a mkdtemp directory with a 1 MiB map) and the
 * in-memory map (tests/support/mem_kv.c). Every common case runs twice, once
 * per group; the cases that only make sense for one backend (map size,
 * truncated file, the store's own writes inside a batch, fail_commits,
 * fail_batch_ends) are in that backend's group only. For LMDB, "kept" is
 * checked after closing and opening the store again, so it is read from
 * the file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mem_kv.h"
#include "mesh_err.h"
#include "store.h"
#include "tenant_kv.h"
#include "test_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

/* Small enough that a test fills it in a few commits. */
#define KV_TEST_MAP ((uint64_t)1 << 20)

enum kv_backend {
	KV_LMDB,
	KV_MEM,
};

static const enum kv_backend kv_lmdb = KV_LMDB;
static const enum kv_backend kv_mem = KV_MEM;

struct fixture {
	enum kv_backend kind;
	char dir[64];
	struct test_env t;
	struct store *store;
	struct mem_kv mem;
	struct tenant_kv kv;
};

static int
setup(void **state)
{
	const enum kv_backend *kind = *state;
	struct fixture *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -1;
	f->kind = *kind;
	test_env_init(&f->t);
	if (f->kind == KV_LMDB) {
		strcpy(f->dir, "/tmp/test_kv.XXXXXX");
		if (mkdtemp(f->dir) == NULL ||
		    store_open(f->dir, KV_TEST_MAP, &f->t.env, &f->store) !=
			0 ||
		    store_kv(f->store, &f->kv) != 0)
			return -1;
	} else {
		if (mem_kv_init(&f->mem, &f->t.alloc.base) != 0)
			return -1;
		mem_kv_bind(&f->mem, &f->kv);
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	if (f->kind == KV_LMDB) {
		store_close(f->store);
		char path[128];
		snprintf(path, sizeof(path), "%s/mesh.mdb", f->dir);
		unlink(path);
		snprintf(path, sizeof(path), "%s/mesh.mdb-lock", f->dir);
		unlink(path);
		rmdir(f->dir);
	} else {
		mem_kv_destroy(&f->mem);
		assert_int_equal(f->t.alloc.live, 0);
	}
	free(f);
	return 0;
}

/* Closes and opens the LMDB store again with @map_bytes. */
static int
reopen(struct fixture *f, uint64_t map_bytes)
{
	store_close(f->store);
	f->store = NULL;
	int rc = store_open(f->dir, map_bytes, &f->t.env, &f->store);
	if (rc == 0)
		store_kv(f->store, &f->kv);
	return rc;
}

static struct tenant_kv_write
put(const char *k, const char *v)
{
	return (struct tenant_kv_write){
	    .key = k, .klen = strlen(k), .val = v, .vlen = strlen(v)};
}

static struct tenant_kv_write
del(const char *k)
{
	return (struct tenant_kv_write){.key = k, .klen = strlen(k), .del = 1};
}

static int
commit1(struct fixture *f, struct tenant_kv_write w)
{
	return f->kv.commit(f->kv.ctx, &w, 1);
}

static int
get(struct fixture *f, const char *k, const void **v, size_t *vlen)
{
	return f->kv.get(f->kv.ctx, k, strlen(k), v, vlen);
}

static void
assert_value(struct fixture *f, const char *k, const char *want)
{
	const void *v;
	size_t vlen;
	assert_int_equal(get(f, k, &v, &vlen), 0);
	assert_int_equal(vlen, strlen(want));
	assert_memory_equal(v, want, vlen);
}

static void
assert_big(struct fixture *f, const char *k, const void *want, size_t n)
{
	const void *v;
	size_t vlen;
	assert_int_equal(get(f, k, &v, &vlen), 0);
	assert_int_equal(vlen, n);
	assert_memory_equal(v, want, n);
}

static void
assert_missing(struct fixture *f, const char *k)
{
	const void *v;
	size_t vlen;
	assert_int_equal(get(f, k, &v, &vlen), MESH_ENOENT);
}

/* What scan() visited: keys in order, and values of at most 15 bytes. */
struct seen {
	size_t n;
	size_t stop_at; /* return stop_rc on this visit (1-based); 0: never */
	int stop_rc;
	struct {
		unsigned char key[TENANT_KV_KEY_MAX + 1];
		size_t klen;
	} keys[16];
};

static int
visit(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	(void)val;
	(void)vlen;
	struct seen *s = arg;
	assert_true(s->n < 16);
	assert_true(klen <= TENANT_KV_KEY_MAX);
	memcpy(s->keys[s->n].key, key, klen);
	s->keys[s->n].klen = klen;
	s->n++;
	return s->n == s->stop_at ? s->stop_rc : 0;
}

static int
scan(struct fixture *f, const char *prefix, const char *from, struct seen *s)
{
	return f->kv.scan(f->kv.ctx, prefix, prefix ? strlen(prefix) : 0, from,
			  from ? strlen(from) : 0, visit, s);
}

static void
assert_seen(const struct seen *s, size_t n, const char *const *want)
{
	assert_int_equal(s->n, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(s->keys[i].klen, strlen(want[i]));
		assert_memory_equal(s->keys[i].key, want[i], s->keys[i].klen);
	}
}

static void
test_kv_get_missing(void **state)
{
	struct fixture *f = *state;
	const void *v;
	size_t vlen;
	assert_missing(f, "nothing");
	assert_int_equal(f->kv.get(f->kv.ctx, "", 0, &v, &vlen), MESH_ENOENT);
	assert_int_equal(commit1(f, put("a", "1")), 0);
	assert_missing(f, "b");
	assert_int_equal(f->kv.get(f->kv.ctx, "a\0", 2, &v, &vlen),
			 MESH_ENOENT);
	assert_missing(f, "aa");
}

static void
test_kv_put_overwrite_delete_in_one_commit(void **state)
{
	struct fixture *f = *state;
	struct tenant_kv_write w1[] = {put("a", "1"), put("b", "2"),
				       put("a", "3"), del("b"),
				       put("c", "4"), put("d", "")};
	assert_int_equal(f->kv.commit(f->kv.ctx, w1, 6), 0);
	assert_value(f, "a", "3");
	assert_missing(f, "b");
	assert_value(f, "c", "4");
	assert_value(f, "d", "");
	struct tenant_kv_write w2[] = {put("c", "a longer value than before"),
				       del("a"), put("b", "back")};
	assert_int_equal(f->kv.commit(f->kv.ctx, w2, 3), 0);
	assert_missing(f, "a");
	assert_value(f, "b", "back");
	assert_value(f, "c", "a longer value than before");
	/* An empty batch is a no-op. */
	assert_int_equal(f->kv.commit(f->kv.ctx, NULL, 0), 0);
	assert_value(f, "b", "back");
}

static void
test_kv_delete_missing_is_ok(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(commit1(f, del("never")), 0);
	assert_int_equal(commit1(f, put("k", "v")), 0);
	struct tenant_kv_write w[] = {del("k"), del("k"), del("other")};
	assert_int_equal(f->kv.commit(f->kv.ctx, w, 3), 0);
	assert_missing(f, "k");
}

static void
fill_scan_keys(struct fixture *f)
{
	struct tenant_kv_write w[] = {put("t2/a", "x"), put("t1/c", "x"),
				      put("t1", "x"),	put("t1/a", "x"),
				      put("t", "x"),	put("u", "x"),
				      put("t1/b", "x"), put("t10", "x")};
	assert_int_equal(f->kv.commit(f->kv.ctx, w, 8), 0);
}

static void
test_kv_scan_prefix_and_from(void **state)
{
	struct fixture *f = *state;
	fill_scan_keys(f);
	struct seen s;

	memset(&s, 0, sizeof(s));
	assert_int_equal(scan(f, "t1/", NULL, &s), 0);
	assert_seen(&s, 3, (const char *const[]){"t1/a", "t1/b", "t1/c"});

	memset(&s, 0, sizeof(s));
	assert_int_equal(scan(f, "t1", NULL, &s), 0);
	assert_seen(&s, 5,
		    (const char *const[]){"t1", "t1/a", "t1/b", "t1/c", "t10"});

	memset(&s, 0, sizeof(s));
	assert_int_equal(scan(f, "t1/", "t1/b", &s), 0);
	assert_seen(&s, 2, (const char *const[]){"t1/b", "t1/c"});

	memset(&s, 0, sizeof(s));
	assert_int_equal(scan(f, "t1/", "t1/bb", &s), 0);
	assert_seen(&s, 1, (const char *const[]){"t1/c"});

	/* @from before the prefix: the prefix decides where to start. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(scan(f, "t1/", "a", &s), 0);
	assert_seen(&s, 3, (const char *const[]){"t1/a", "t1/b", "t1/c"});

	/* @from past every key with the prefix. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(scan(f, "t1/", "t2", &s), 0);
	assert_int_equal(s.n, 0);

	/* A prefix nothing has, and one past the last key. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(scan(f, "s", NULL, &s), 0);
	assert_int_equal(s.n, 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(scan(f, "zz", NULL, &s), 0);
	assert_int_equal(s.n, 0);

	/* No prefix: everything, from @from on. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(scan(f, NULL, NULL, &s), 0);
	assert_seen(&s, 8,
		    (const char *const[]){"t", "t1", "t1/a", "t1/b", "t1/c",
					  "t10", "t2/a", "u"});
	memset(&s, 0, sizeof(s));
	assert_int_equal(scan(f, "", "t10", &s), 0);
	assert_seen(&s, 3, (const char *const[]){"t10", "t2/a", "u"});

	/* A @from longer than any key can be still orders correctly. */
	char from[TENANT_KV_KEY_MAX + 100];
	memset(from, 'a', sizeof(from));
	memcpy(from, "t1/", 3);
	memset(&s, 0, sizeof(s));
	assert_int_equal(
	    f->kv.scan(f->kv.ctx, "t1/", 3, from, sizeof(from), visit, &s), 0);
	assert_seen(&s, 2, (const char *const[]){"t1/b", "t1/c"});

	/* An empty store scans to nothing. */
	struct tenant_kv_write w[] = {del("t"),	   del("t1"),	del("t1/a"),
				      del("t1/b"), del("t1/c"), del("t10"),
				      del("t2/a"), del("u")};
	assert_int_equal(f->kv.commit(f->kv.ctx, w, 8), 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(scan(f, NULL, NULL, &s), 0);
	assert_int_equal(s.n, 0);
}

static void
test_kv_scan_stops_with_visitor_value(void **state)
{
	struct fixture *f = *state;
	fill_scan_keys(f);
	struct seen s;
	memset(&s, 0, sizeof(s));
	s.stop_at = 2;
	s.stop_rc = 7;
	assert_int_equal(scan(f, "t1/", NULL, &s), 7);
	assert_seen(&s, 2, (const char *const[]){"t1/a", "t1/b"});
	memset(&s, 0, sizeof(s));
	s.stop_at = 1;
	s.stop_rc = -3;
	assert_int_equal(scan(f, NULL, NULL, &s), -3);
	assert_int_equal(s.n, 1);
}

static void
test_kv_key_order(void **state)
{
	struct fixture *f = *state;
	/* Written scrambled, as (pointer, length) since some hold 0x00. */
	static const struct {
		const char *k;
		size_t n;
	} in[] = {{"\xff", 1}, {"ab", 2},   {"a\0", 2},	  {"\xff\xff", 2},
		  {"b", 1},    {"\0", 1},   {"a\xff", 2}, {"a", 1},
		  {"\0\0", 2}, {"a\0\0", 3}};
	struct tenant_kv_write w[10];
	for (size_t i = 0; i < 10; i++)
		w[i] = (struct tenant_kv_write){
		    .key = in[i].k, .klen = in[i].n, .val = "v", .vlen = 1};
	assert_int_equal(f->kv.commit(f->kv.ctx, w, 10), 0);
	static const struct {
		const char *k;
		size_t n;
	} want[] = {{"\0", 1},	  {"\0\0", 2},	  {"a", 1},	{"a\0", 2},
		    {"a\0\0", 3}, {"ab", 2},	  {"a\xff", 2}, {"b", 1},
		    {"\xff", 1},  {"\xff\xff", 2}};
	struct seen s;
	memset(&s, 0, sizeof(s));
	assert_int_equal(f->kv.scan(f->kv.ctx, NULL, 0, NULL, 0, visit, &s), 0);
	assert_int_equal(s.n, 10);
	for (size_t i = 0; i < 10; i++) {
		assert_int_equal(s.keys[i].klen, want[i].n);
		assert_memory_equal(s.keys[i].key, want[i].k, want[i].n);
	}
	/* A prefix holding 0x00 and one of 0xff. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(f->kv.scan(f->kv.ctx, "a\0", 2, NULL, 0, visit, &s),
			 0);
	assert_int_equal(s.n, 2);
	memset(&s, 0, sizeof(s));
	assert_int_equal(f->kv.scan(f->kv.ctx, "\xff", 1, NULL, 0, visit, &s),
			 0);
	assert_int_equal(s.n, 2);
}

static void
test_kv_bad_key_rejected_nothing_applied(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(commit1(f, put("keep", "1")), 0);
	static char big[TENANT_KV_KEY_MAX + 1];
	memset(big, 'k', sizeof(big));

	struct tenant_kv_write empty[] = {put("x", "1"), del("keep"),
					  put("", "2")};
	assert_int_equal(f->kv.commit(f->kv.ctx, empty, 3), MESH_EINVAL);
	struct tenant_kv_write over[] = {
	    put("x", "1"),
	    del("keep"),
	    {.key = big, .klen = TENANT_KV_KEY_MAX + 1, .val = "v", .vlen = 1}};
	assert_int_equal(f->kv.commit(f->kv.ctx, over, 3), MESH_EINVAL);
	struct tenant_kv_write del_empty[] = {put("x", "1"), del("")};
	assert_int_equal(f->kv.commit(f->kv.ctx, del_empty, 2), MESH_EINVAL);
	struct tenant_kv_write null_key[] = {
	    put("x", "1"), {.key = NULL, .klen = 3, .val = "v", .vlen = 1}};
	assert_int_equal(f->kv.commit(f->kv.ctx, null_key, 2), MESH_EINVAL);
	assert_missing(f, "x");
	assert_value(f, "keep", "1");

	/* The largest key is fine, and reads back. */
	struct tenant_kv_write max = {
	    .key = big, .klen = TENANT_KV_KEY_MAX, .val = "m", .vlen = 1};
	assert_int_equal(f->kv.commit(f->kv.ctx, &max, 1), 0);
	const void *v;
	size_t vlen;
	assert_int_equal(
	    f->kv.get(f->kv.ctx, big, TENANT_KV_KEY_MAX, &v, &vlen), 0);
	assert_int_equal(vlen, 1);
	assert_int_equal(
	    f->kv.get(f->kv.ctx, big, TENANT_KV_KEY_MAX + 1, &v, &vlen),
	    MESH_ENOENT);
}

#define KV_BIG_VAL (100u << 10)

/*
 * A batch that does not fit returns MESH_ENOSPC and applies nothing, the
 * store stays readable and takes smaller commits afterwards. LMDB: 2 MiB
 * of values in a 1 MiB map. Memory: the third allocation of the batch
 * fails, halfway through preparing it.
 */
static void
test_kv_full_commit_changes_nothing(void **state)
{
	struct fixture *f = *state;
	struct tenant_kv_write before[] = {put("a", "1"), put("b", "2")};
	assert_int_equal(f->kv.commit(f->kv.ctx, before, 2), 0);

	char *val = malloc(KV_BIG_VAL);
	assert_non_null(val);
	memset(val, 'v', KV_BIG_VAL);
	char keys[20][8];
	struct tenant_kv_write w[22];
	w[0] = del("a");
	w[1] = put("b", "changed");
	for (size_t i = 0; i < 20; i++) {
		snprintf(keys[i], sizeof(keys[i]), "big%02zu", i);
		w[i + 2] = (struct tenant_kv_write){.key = keys[i],
						    .klen = strlen(keys[i]),
						    .val = val,
						    .vlen = KV_BIG_VAL};
	}
	size_t live = f->t.alloc.live;
	size_t bytes = f->mem.bytes;
	if (f->kind == KV_MEM)
		f->t.alloc.fail_at = f->t.alloc.allocs + 3;
	assert_int_equal(f->kv.commit(f->kv.ctx, w, 22), MESH_ENOSPC);
	if (f->kind == KV_MEM) {
		assert_int_equal(f->t.alloc.live, live);
		assert_int_equal(f->mem.bytes, bytes);
		assert_int_equal(f->mem.commits, 1);
	}

	assert_value(f, "a", "1");
	assert_value(f, "b", "2");
	for (size_t i = 0; i < 20; i++)
		assert_missing(f, keys[i]);
	struct seen s;
	memset(&s, 0, sizeof(s));
	assert_int_equal(scan(f, NULL, NULL, &s), 0);
	assert_seen(&s, 2, (const char *const[]){"a", "b"});

	/* Smaller commits go through afterwards, big ones while they fit. */
	assert_int_equal(f->kv.commit(f->kv.ctx, w, 4), 0);
	assert_missing(f, "a");
	assert_value(f, "b", "changed");
	const void *v;
	size_t vlen;
	assert_int_equal(get(f, "big01", &v, &vlen), 0);
	assert_int_equal(vlen, KV_BIG_VAL);
	assert_memory_equal(v, val, KV_BIG_VAL);
	free(val);
}

/* Values larger than any before, then smaller: get()'s copy keeps up. */
static void
test_kv_get_values_of_any_size(void **state)
{
	struct fixture *f = *state;
	static char val[64 << 10];
	for (size_t i = 0; i < sizeof(val); i++)
		val[i] = (char)(i * 7);
	size_t sizes[] = {1, 100, 4096, 5000, sizeof(val), 3, 0};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct tenant_kv_write w = {
		    .key = "v", .klen = 1, .val = val, .vlen = sizes[i]};
		assert_int_equal(f->kv.commit(f->kv.ctx, &w, 1), 0);
		const void *v;
		size_t vlen;
		assert_int_equal(f->kv.get(f->kv.ctx, "v", 1, &v, &vlen), 0);
		assert_int_equal(vlen, sizes[i]);
		assert_non_null(v);
		assert_memory_equal(v, val, vlen);
	}
}

#define KV_MANY 100000

static void
many_key(char *buf, size_t cap, size_t i)
{
	snprintf(buf, cap, "tenant/%08zu", i);
}

/*
 * 10^5 keys written in descending order, the worst order for a sorted
 * array, in batches of 1000; then every other one deleted in one commit.
 */
static void
test_kv_many_keys(void **state)
{
	struct fixture *f = *state;
	if (f->kind == KV_LMDB)
		assert_int_equal(reopen(f, 64u << 20), 0);
	static char keys[1000][24];
	struct tenant_kv_write w[1000];
	for (size_t b = 0; b < KV_MANY / 1000; b++) {
		for (size_t j = 0; j < 1000; j++) {
			size_t i = KV_MANY - 1 - (b * 1000 + j);
			many_key(keys[j], sizeof(keys[j]), i);
			w[j] = (struct tenant_kv_write){.key = keys[j],
							.klen = strlen(keys[j]),
							.val = keys[j] + 7,
							.vlen = 8};
		}
		assert_int_equal(f->kv.commit(f->kv.ctx, w, 1000), 0);
	}
	char k[24];
	for (size_t i = 0; i < KV_MANY; i += 997) {
		many_key(k, sizeof(k), i);
		assert_value(f, k, k + 7);
	}
	if (f->kind == KV_MEM) {
		assert_int_equal(f->mem.count, KV_MANY);
		assert_int_equal(f->mem.bytes, (size_t)KV_MANY * (15 + 8));
	}
	/* Delete the odd ones, 1000 a commit, and check the rest in order. */
	for (size_t b = 0; b < KV_MANY / 2000; b++) {
		for (size_t j = 0; j < 1000; j++) {
			many_key(keys[j], sizeof(keys[j]),
				 2 * (b * 1000 + j) + 1);
			w[j] = (struct tenant_kv_write){
			    .key = keys[j], .klen = strlen(keys[j]), .del = 1};
		}
		assert_int_equal(f->kv.commit(f->kv.ctx, w, 1000), 0);
	}
	many_key(k, sizeof(k), 4001);
	assert_missing(f, k);
	many_key(k, sizeof(k), 4002);
	assert_value(f, k, k + 7);
	struct seen s;
	memset(&s, 0, sizeof(s));
	s.stop_at = 16;
	s.stop_rc = 1;
	many_key(k, sizeof(k), 50001);
	assert_int_equal(scan(f, "tenant/", k, &s), 1);
	for (size_t i = 0; i < 16; i++) {
		many_key(k, sizeof(k), 50002 + 2 * i);
		assert_int_equal(s.keys[i].klen, strlen(k));
		assert_memory_equal(s.keys[i].key, k, strlen(k));
	}
}

#define KV_CHUNK (64u << 10)

/* Commits 64 KiB values under keys <tag>00, <tag>01, ... until one fails. */
static size_t
fill(struct fixture *f, const char *tag, size_t max, const char *val, int *rc)
{
	char key[32];
	size_t n;
	*rc = 0;
	for (n = 0; n < max; n++) {
		snprintf(key, sizeof(key), "%s%02zu", tag, n);
		struct tenant_kv_write w = {.key = key,
					    .klen = strlen(key),
					    .val = val,
					    .vlen = KV_CHUNK};
		*rc = f->kv.commit(f->kv.ctx, &w, 1);
		if (*rc != 0)
			break;
	}
	return n;
}

static void
assert_filled(struct fixture *f, const char *tag, size_t n, const char *val)
{
	char key[32];
	for (size_t i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "%s%02zu", tag, i);
		assert_big(f, key, val, KV_CHUNK);
	}
}

/*
 * LMDB: commit until the 1 MiB map is full, then reopen it four times as
 * large. Every committed value survives, and the commit that did not fit
 * now does.
 */
static void
test_kv_map_grows_on_reopen(void **state)
{
	struct fixture *f = *state;
	static char val[KV_CHUNK];
	memset(val, 'g', sizeof(val));
	int rc;
	size_t n = fill(f, "g", 64, val, &rc);
	assert_int_equal(rc, MESH_ENOSPC);
	assert_true(n >= 8 && n < 16);
	assert_filled(f, "g", n, val);
	/* Full for 64 KiB, not for a few bytes: the store still takes them. */
	assert_int_equal(commit1(f, put("tiny", "t")), 0);
	assert_value(f, "tiny", "t");

	assert_int_equal(reopen(f, 4 * KV_TEST_MAP), 0);
	assert_filled(f, "g", n, val);
	size_t more = fill(f, "h", 16, val, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(more, 16);
	assert_filled(f, "g", n, val);
	assert_filled(f, "h", more, val);
}

/*
 * LMDB: a map smaller than the data already in it. LMDB raises it to the
 * size in use rather than fail, so the store opens and reads; a later open
 * with room writes again.
 */
static void
test_kv_reopen_smaller_map_keeps_data(void **state)
{
	struct fixture *f = *state;
	static char val[KV_CHUNK];
	memset(val, 's', sizeof(val));
	assert_int_equal(reopen(f, 4 * KV_TEST_MAP), 0);
	int rc;
	size_t n = fill(f, "s", 32, val, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(n, 32); /* 2 MiB of values in a 4 MiB map */

	assert_int_equal(reopen(f, KV_TEST_MAP), 0);
	assert_filled(f, "s", n, val);
	/* Whether this fits depends on LMDB's free pages; it must not break. */
	rc = commit1(f, put("small", "x"));
	assert_true(rc == 0 || rc == MESH_ENOSPC);
	assert_filled(f, "s", n, val);

	assert_int_equal(reopen(f, 0), 0);
	assert_filled(f, "s", n, val);
	assert_int_equal(commit1(f, put("small", "y")), 0);
	assert_value(f, "small", "y");
}

/*
 * LMDB: a data file cut short is refused at open with MESH_ECORRUPT and a
 * log line, instead of SIGBUS at the first read of a missing page.
 */
static void
test_kv_truncated_file_refused(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(reopen(f, 64u << 20), 0);
	static char keys[1000][24];
	static char val[200];
	memset(val, 't', sizeof(val));
	struct tenant_kv_write w[1000];
	for (size_t b = 0; b < 20; b++) {
		for (size_t j = 0; j < 1000; j++) {
			many_key(keys[j], sizeof(keys[j]), b * 1000 + j);
			w[j] = (struct tenant_kv_write){.key = keys[j],
							.klen = strlen(keys[j]),
							.val = val,
							.vlen = sizeof(val)};
		}
		assert_int_equal(f->kv.commit(f->kv.ctx, w, 1000), 0);
	}
	store_close(f->store);
	f->store = NULL;

	char path[128];
	snprintf(path, sizeof(path), "%s/mesh.mdb", f->dir);
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	long size = ftell(fp);
	fclose(fp);
	assert_true(size > (4 << 20));

	/* Half the file: the meta pages are there, the data is not. */
	assert_int_equal(truncate(path, size / 2), 0);
	size_t lines = f->t.lines;
	assert_int_equal(store_open(f->dir, 64u << 20, &f->t.env, &f->store),
			 MESH_ECORRUPT);
	assert_null(f->store);
	assert_true(f->t.lines > lines);
	assert_non_null(strstr(f->t.last_line, "truncated"));

	/* Into the second meta page, then into the first. */
	assert_int_equal(truncate(path, 6000), 0);
	assert_int_equal(store_open(f->dir, 0, &f->t.env, &f->store),
			 MESH_ECORRUPT);
	assert_null(f->store);
	assert_int_equal(truncate(path, 100), 0);
	assert_int_equal(store_open(f->dir, 0, &f->t.env, &f->store),
			 MESH_ECORRUPT);
	assert_null(f->store);
}

static int
batch_begin(struct fixture *f)
{
	return f->kv.batch_begin(f->kv.ctx);
}

static int
batch_end(struct fixture *f, bool keep)
{
	return f->kv.batch_end(f->kv.ctx, keep);
}

/* LMDB: closes and opens the store again, so what follows reads the file. */
static void
reopen_lmdb(struct fixture *f)
{
	if (f->kind == KV_LMDB)
		assert_int_equal(reopen(f, KV_TEST_MAP), 0);
}

static void
assert_scan_all(struct fixture *f, size_t n, const char *const *want)
{
	struct seen s;
	memset(&s, 0, sizeof(s));
	assert_int_equal(scan(f, NULL, NULL, &s), 0);
	assert_seen(&s, n, want);
}

/*
 * Inside a batch get() and scan() see what its commits wrote, before
 * anything is durable; batch_end(true) keeps all of it, and the store takes
 * another batch afterwards. Memory: the batch counts as one commit.
 */
static void
test_kv_batch_reads_its_writes_and_keeps_them(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(commit1(f, put("a", "1")), 0);
	uint64_t commits = f->mem.commits;
	assert_int_equal(batch_begin(f), 0);
	struct tenant_kv_write w[] = {put("b", "2"), del("a"), put("c", "3")};
	assert_int_equal(f->kv.commit(f->kv.ctx, w, 3), 0);
	assert_missing(f, "a");
	assert_value(f, "b", "2");
	assert_value(f, "c", "3");
	assert_int_equal(commit1(f, put("b", "22")), 0);
	assert_value(f, "b", "22");
	assert_scan_all(f, 2, (const char *const[]){"b", "c"});
	struct seen s;
	memset(&s, 0, sizeof(s));
	assert_int_equal(scan(f, "c", NULL, &s), 0);
	assert_seen(&s, 1, (const char *const[]){"c"});
	if (f->kind == KV_MEM)
		assert_int_equal(f->mem.commits, commits);
	assert_int_equal(batch_end(f, true), 0);
	if (f->kind == KV_MEM)
		assert_int_equal(f->mem.commits, commits + 1);

	reopen_lmdb(f);
	assert_missing(f, "a");
	assert_value(f, "b", "22");
	assert_value(f, "c", "3");
	assert_scan_all(f, 2, (const char *const[]){"b", "c"});

	assert_int_equal(batch_begin(f), 0);
	assert_int_equal(commit1(f, put("d", "4")), 0);
	assert_int_equal(batch_end(f, true), 0);
	reopen_lmdb(f);
	assert_value(f, "d", "4");
	assert_scan_all(f, 3, (const char *const[]){"b", "c", "d"});
}

static void
assert_abc(struct fixture *f)
{
	assert_value(f, "a", "1");
	assert_value(f, "b", "2");
	assert_value(f, "c", "3");
	assert_missing(f, "d");
	assert_missing(f, "e");
	assert_scan_all(f, 3, (const char *const[]){"a", "b", "c"});
}

/*
 * batch_end(false) drops every commit of the batch: puts, overwrites and
 * deletes, of keys the batch itself wrote too. Memory: the map is exactly
 * as before (same byte count, same PRNG state, only the undo log's array
 * still allocated).
 */
static void
test_kv_batch_dropped_undoes_everything(void **state)
{
	struct fixture *f = *state;
	struct tenant_kv_write before[] = {put("a", "1"), put("b", "2"),
					   put("c", "3")};
	assert_int_equal(f->kv.commit(f->kv.ctx, before, 3), 0);
	size_t bytes = f->mem.bytes;
	size_t count = f->mem.count;
	uint64_t commits = f->mem.commits;
	uint64_t rng = f->mem.rng;
	size_t live = f->t.alloc.live;

	assert_int_equal(batch_begin(f), 0);
	struct tenant_kv_write w1[] = {del("a"), put("b", "changed"),
				       put("d", "4")};
	assert_int_equal(f->kv.commit(f->kv.ctx, w1, 3), 0);
	struct tenant_kv_write w2[] = {put("a", "back"), put("b", "again"),
				       del("c"), put("e", "5"), put("e", "55")};
	assert_int_equal(f->kv.commit(f->kv.ctx, w2, 5), 0);
	assert_int_equal(commit1(f, del("e")), 0);
	assert_int_equal(commit1(f, del("never")), 0);
	assert_value(f, "a", "back");
	assert_value(f, "b", "again");
	assert_missing(f, "c");
	assert_value(f, "d", "4");
	assert_int_equal(batch_end(f, false), 0);

	assert_abc(f);
	if (f->kind == KV_MEM) {
		assert_int_equal(f->mem.bytes, bytes);
		assert_int_equal(f->mem.count, count);
		assert_int_equal(f->mem.commits, commits);
		assert_int_equal(f->mem.rng, rng);
		assert_int_equal(f->t.alloc.live, live + 1);
	}
	reopen_lmdb(f);
	assert_abc(f);

	/* The store goes on. */
	assert_int_equal(batch_begin(f), 0);
	assert_int_equal(commit1(f, put("d", "4")), 0);
	assert_int_equal(batch_end(f, true), 0);
	reopen_lmdb(f);
	assert_value(f, "d", "4");
}

/*
 * A commit that fails inside a batch is dropped alone: the batch's earlier
 * writes stay, later ones go through, and batch_end(true) keeps them.
 * Failing commits: an empty key; a full store (LMDB: 64 KiB values until
 * the 1 MiB map is full; memory: fail_commits, then an allocation failing
 * halfway through preparing the nodes, then the undo log failing to grow).
 */
static void
test_kv_batch_failed_commit_leaves_batch(void **state)
{
	struct fixture *f = *state;
	static char val[KV_CHUNK];
	memset(val, 'g', sizeof(val));
	assert_int_equal(batch_begin(f), 0);
	assert_int_equal(commit1(f, put("a", "1")), 0);
	struct tenant_kv_write bad[] = {put("b", "2"), del("a"), put("", "x")};
	assert_int_equal(f->kv.commit(f->kv.ctx, bad, 3), MESH_EINVAL);
	assert_value(f, "a", "1");
	assert_missing(f, "b");

	size_t n = 0;
	if (f->kind == KV_LMDB) {
		int rc;
		n = fill(f, "g", 64, val, &rc);
		assert_int_equal(rc, MESH_ENOSPC);
		assert_true(n >= 8 && n < 16);
		assert_filled(f, "g", n, val);
		char key[8];
		snprintf(key, sizeof(key), "g%02zu", n);
		assert_missing(f, key);
	} else {
		struct tenant_kv_write w[] = {del("a"), put("x", "1"),
					      put("y", "2"), put("z", "3")};
		f->mem.fail_commits = 1;
		assert_int_equal(f->kv.commit(f->kv.ctx, w, 4), MESH_ENOSPC);
		size_t live = f->t.alloc.live;
		size_t bytes = f->mem.bytes;
		f->t.alloc.fail_at = f->t.alloc.allocs + 2;
		assert_int_equal(f->kv.commit(f->kv.ctx, w, 4), MESH_ENOSPC);
		assert_int_equal(f->t.alloc.live, live);
		assert_int_equal(f->mem.bytes, bytes);
		/* More writes than the undo log has room for. */
		struct tenant_kv_write many[40];
		for (size_t i = 0; i < 40; i++)
			many[i] = put("m", "v");
		many[39] = del("a");
		f->t.alloc.fail_at = f->t.alloc.allocs + 1;
		assert_int_equal(f->kv.commit(f->kv.ctx, many, 40),
				 MESH_ENOSPC);
		assert_int_equal(f->t.alloc.live, live);
		assert_int_equal(f->mem.bytes, bytes);
		assert_missing(f, "m");
	}
	assert_value(f, "a", "1");
	assert_missing(f, "x");

	/* Still a batch, still taking writes. */
	assert_int_equal(commit1(f, put("tiny", "t")), 0);
	assert_value(f, "tiny", "t");
	assert_int_equal(batch_begin(f), MESH_ESTATE);
	assert_int_equal(batch_end(f, true), 0);

	reopen_lmdb(f);
	assert_value(f, "a", "1");
	assert_value(f, "tiny", "t");
	assert_missing(f, "b");
	assert_missing(f, "x");
	assert_filled(f, "g", n, val);
}

/* One batch at a time, and no end without a begin. */
static void
test_kv_batch_state_errors(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(batch_end(f, true), MESH_ESTATE);
	assert_int_equal(batch_end(f, false), MESH_ESTATE);
	assert_int_equal(batch_begin(f), 0);
	assert_int_equal(batch_begin(f), MESH_ESTATE);
	/* The refused begin did not disturb the open batch. */
	assert_int_equal(commit1(f, put("a", "1")), 0);
	assert_value(f, "a", "1");
	assert_int_equal(batch_end(f, true), 0);
	assert_int_equal(batch_end(f, true), MESH_ESTATE);
	assert_int_equal(batch_end(f, false), MESH_ESTATE);
	/* An empty batch is fine either way. */
	assert_int_equal(batch_begin(f), 0);
	assert_int_equal(batch_end(f, true), 0);
	assert_int_equal(batch_begin(f), 0);
	assert_int_equal(batch_end(f, false), 0);
	reopen_lmdb(f);
	assert_value(f, "a", "1");
}

/*
 * A batch still open when the store goes away is dropped, and frees what
 * it held (memory: the teardown checks that nothing is left allocated).
 */
static void
test_kv_batch_open_at_close_is_dropped(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(commit1(f, put("a", "1")), 0);
	assert_int_equal(batch_begin(f), 0);
	struct tenant_kv_write w[] = {put("a", "2"), put("b", "3")};
	assert_int_equal(f->kv.commit(f->kv.ctx, w, 2), 0);
	if (f->kind == KV_LMDB) {
		reopen_lmdb(f);
	} else {
		mem_kv_destroy(&f->mem);
		assert_int_equal(f->t.alloc.live, 0);
		mem_kv_init(&f->mem, &f->t.alloc.base);
		assert_int_equal(commit1(f, put("a", "1")), 0);
	}
	assert_value(f, "a", "1");
	assert_missing(f, "b");
	assert_int_equal(batch_begin(f), 0);
	assert_int_equal(batch_end(f, true), 0);
}

/*
 * LMDB: the store's own writes (flag, incarnation, identity) during a batch
 * join it instead of waiting forever on LMDB's writer lock, which the batch
 * holds and which is not recursive; its reads see the batch. They are kept
 * by batch_end(true) and dropped by batch_end(false). The alarm turns a
 * deadlock into a failure instead of a hang.
 */
static void
test_kv_batch_store_writes_join_it(void **state)
{
	struct fixture *f = *state;
	alarm(60);
	struct store_identity id;
	bool on = false;
	uint32_t inc = 0;
	assert_int_equal(batch_begin(f), 0);
	assert_int_equal(commit1(f, put("a", "1")), 0);
	assert_int_equal(store_flag_set(f->store, "draining", true), 0);
	assert_int_equal(store_flag_get(f->store, "draining", &on), 0);
	assert_true(on);
	assert_int_equal(store_incarnation_next(f->store, &inc), 0);
	assert_int_equal(inc, 1);
	assert_int_equal(store_incarnation_next(f->store, &inc), 0);
	assert_int_equal(inc, 2);
	assert_int_equal(store_identity_load(f->store, "node-1", &id), 0);
	assert_true(id.created);
	assert_int_equal(commit1(f, put("b", "2")), 0);
	assert_value(f, "a", "1");
	assert_int_equal(batch_end(f, true), 0);

	reopen_lmdb(f);
	assert_value(f, "a", "1");
	assert_value(f, "b", "2");
	on = false;
	assert_int_equal(store_flag_get(f->store, "draining", &on), 0);
	assert_true(on);
	assert_int_equal(store_incarnation_next(f->store, &inc), 0);
	assert_int_equal(inc, 3);
	struct store_identity again;
	assert_int_equal(store_identity_load(f->store, "node-1", &again), 0);
	assert_false(again.created);
	assert_memory_equal(again.public_key, id.public_key,
			    STORE_PUBKEY_BYTES);

	/* Dropped with the batch; a failed one (bad name) leaves it usable. */
	assert_int_equal(batch_begin(f), 0);
	assert_int_equal(store_flag_set(f->store, "draining", false), 0);
	assert_int_equal(store_incarnation_next(f->store, &inc), 0);
	assert_int_equal(store_flag_set(f->store, "", true), MESH_EINVAL);
	assert_int_equal(store_identity_load(f->store, "node-2", &again),
			 MESH_ECONFLICT);
	assert_int_equal(commit1(f, put("c", "3")), 0);
	assert_int_equal(store_flag_get(f->store, "draining", &on), 0);
	assert_false(on);
	assert_int_equal(batch_end(f, false), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(store_flag_get(f->store, "draining", &on), 0);
		assert_true(on);
		assert_missing(f, "c");
		reopen_lmdb(f);
	}
	assert_int_equal(store_incarnation_next(f->store, &inc), 0);
	assert_int_equal(inc, 4); /* the one in the dropped batch is gone */
	alarm(0);
}

/*
 * Memory: fail_batch_ends makes the next batch_end(true) fail and drop the
 * batch, exactly as batch_end(false) would; the batch is closed after it.
 */
static void
test_kv_mem_fail_batch_ends(void **state)
{
	struct fixture *f = *state;
	struct tenant_kv_write before[] = {put("a", "12"), put("b", "3")};
	assert_int_equal(f->kv.commit(f->kv.ctx, before, 2), 0);
	size_t bytes = f->mem.bytes;
	size_t count = f->mem.count;
	uint64_t commits = f->mem.commits;
	uint64_t rng = f->mem.rng;
	struct tenant_kv_write w[] = {del("a"), put("b", "changed"),
				      put("c", "x")};
	f->mem.fail_batch_ends = 1;
	assert_int_equal(batch_begin(f), 0);
	assert_int_equal(f->kv.commit(f->kv.ctx, w, 3), 0);
	assert_int_equal(commit1(f, put("d", "y")), 0);
	assert_int_equal(batch_end(f, true), MESH_ENOSPC);
	assert_int_equal(f->mem.fail_batch_ends, 0);
	assert_int_equal(batch_end(f, true), MESH_ESTATE);
	assert_value(f, "a", "12");
	assert_value(f, "b", "3");
	assert_missing(f, "c");
	assert_missing(f, "d");
	assert_scan_all(f, 2, (const char *const[]){"a", "b"});
	assert_int_equal(f->mem.bytes, bytes);
	assert_int_equal(f->mem.count, count);
	assert_int_equal(f->mem.commits, commits);
	assert_int_equal(f->mem.rng, rng);

	/* The same batch again goes through, and counts once. */
	assert_int_equal(batch_begin(f), 0);
	assert_int_equal(f->kv.commit(f->kv.ctx, w, 3), 0);
	assert_int_equal(commit1(f, put("d", "y")), 0);
	assert_int_equal(batch_end(f, true), 0);
	assert_int_equal(f->mem.commits, commits + 1);
	assert_missing(f, "a");
	assert_value(f, "b", "changed");
	assert_value(f, "c", "x");
	assert_value(f, "d", "y");
	assert_int_equal(f->mem.count, 3);
	assert_int_equal(f->mem.bytes, 1 + 7 + 1 + 1 + 1 + 1);
	/* Outside a batch each commit counts. */
	assert_int_equal(commit1(f, del("d")), 0);
	assert_int_equal(f->mem.commits, commits + 2);
}

/* Memory: fail_commits fails the next commits whole, then lets them by. */
static void
test_kv_mem_fail_commits(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(commit1(f, put("a", "12")), 0);
	assert_int_equal(f->mem.commits, 1);
	assert_int_equal(f->mem.bytes, 3);
	f->mem.fail_commits = 2;
	struct tenant_kv_write w[] = {put("b", "345"), del("a")};
	assert_int_equal(f->kv.commit(f->kv.ctx, w, 2), MESH_ENOSPC);
	assert_int_equal(f->mem.fail_commits, 1);
	assert_int_equal(f->kv.commit(f->kv.ctx, w, 2), MESH_ENOSPC);
	assert_int_equal(f->mem.fail_commits, 0);
	assert_int_equal(f->mem.commits, 1);
	assert_value(f, "a", "12");
	assert_missing(f, "b");
	assert_int_equal(f->mem.bytes, 3);
	assert_int_equal(f->kv.commit(f->kv.ctx, w, 2), 0);
	assert_int_equal(f->mem.commits, 2);
	assert_int_equal(f->mem.bytes, 4);
	assert_int_equal(f->mem.count, 1);
	assert_missing(f, "a");
	assert_value(f, "b", "345");
}

#define KV_CASE(fn, kind)                                                      \
	cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown,          \
						 (void *)&kind)

#define KV_COMMON(kind)                                                        \
	KV_CASE(test_kv_get_missing, kind),                                    \
	    KV_CASE(test_kv_put_overwrite_delete_in_one_commit, kind),         \
	    KV_CASE(test_kv_delete_missing_is_ok, kind),                       \
	    KV_CASE(test_kv_scan_prefix_and_from, kind),                       \
	    KV_CASE(test_kv_scan_stops_with_visitor_value, kind),              \
	    KV_CASE(test_kv_key_order, kind),                                  \
	    KV_CASE(test_kv_bad_key_rejected_nothing_applied, kind),           \
	    KV_CASE(test_kv_full_commit_changes_nothing, kind),                \
	    KV_CASE(test_kv_get_values_of_any_size, kind),                     \
	    KV_CASE(test_kv_many_keys, kind),                                  \
	    KV_CASE(test_kv_batch_reads_its_writes_and_keeps_them, kind),      \
	    KV_CASE(test_kv_batch_dropped_undoes_everything, kind),            \
	    KV_CASE(test_kv_batch_failed_commit_leaves_batch, kind),           \
	    KV_CASE(test_kv_batch_state_errors, kind),                         \
	    KV_CASE(test_kv_batch_open_at_close_is_dropped, kind)

int
main(void)
{
	const struct CMUnitTest lmdb[] = {
	    KV_COMMON(kv_lmdb),
	    KV_CASE(test_kv_map_grows_on_reopen, kv_lmdb),
	    KV_CASE(test_kv_reopen_smaller_map_keeps_data, kv_lmdb),
	    KV_CASE(test_kv_truncated_file_refused, kv_lmdb),
	    KV_CASE(test_kv_batch_store_writes_join_it, kv_lmdb),
	};
	const struct CMUnitTest mem[] = {
	    KV_COMMON(kv_mem),
	    KV_CASE(test_kv_mem_fail_commits, kv_mem),
	    KV_CASE(test_kv_mem_fail_batch_ends, kv_mem),
	};
	int failed = cmocka_run_group_tests_name("kv_lmdb", lmdb, NULL, NULL);
	failed += cmocka_run_group_tests_name("kv_mem", mem, NULL, NULL);
	return failed;
}
