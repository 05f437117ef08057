/*
 * test_store.c - identity and incarnation in LMDB (agent/store), and the
 * storage faults the store must turn into named errors (issue 16, finding
 * 3): damaged, truncated or foreign data files, a damaged lock file, a
 * first start cut short, a full disk, and a file that fails under a running
 * store.
 *
 * Each fault that used to kill the process runs in a forked child, so that
 * a crash fails one case instead of ending the run: the child exits with a
 * code made from the store's return value (child_code()), and the parent
 * checks that code. A code outside that set (a signal, or AddressSanitizer
 * reporting a crash with exit status 1) fails the case.
 *
 * The damage is written by hand into LMDB 0.9's on-disk format (offsets
 * below), 64-bit layout. The full-disk cases mount a small tmpfs and are
 * skipped, with the reason, when the test does not run as root.
 */
#define _GNU_SOURCE /* nftw(), umount2() */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mesh_err.h"
#include "store.h"
#include "test_env.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* LMDB 0.9's file, 64-bit: a page header of 16 bytes, then MDB_meta. */
#define PG_HDR 16
#define META_PSIZE (PG_HDR + 24)	     /* mm_dbs[0].md_pad */
#define META_FREE_ROOT (PG_HDR + 24 + 40)    /* mm_dbs[0].md_root */
#define META_MAIN_FLAGS (PG_HDR + 72 + 4)    /* mm_dbs[1].md_flags */
#define META_MAIN_DEPTH (PG_HDR + 72 + 6)    /* mm_dbs[1].md_depth */
#define META_MAIN_ENTRIES (PG_HDR + 72 + 32) /* mm_dbs[1].md_entries */
#define META_MAIN_ROOT (PG_HDR + 72 + 40)    /* mm_dbs[1].md_root */
#define META_LAST_PG (PG_HDR + 120)	     /* mm_last_pg */
#define META_TXNID (PG_HDR + 128)	     /* mm_txnid */
#define PAGE_FLAGS 10			     /* mp_flags in a page */
#define PAGE_PTRS PG_HDR		     /* mp_ptrs[] */
#define P_INVALID UINT64_MAX

struct fixture {
	char dir[64];
	struct test_env t;
	char mnt[48]; /* a tmpfs this case mounted, unmounted in teardown */
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	strcpy(f->dir, "/tmp/test_store.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	test_env_init(&f->t);
	if (getenv("MESH_TEST_LOG") != NULL)
		f->t.echo = 1;
	*state = f;
	return 0;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	chmod(f->dir, 0700);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	if (f->mnt[0] != 0) {
		umount2(f->mnt, MNT_DETACH);
		rmdir(f->mnt);
	}
	free(f);
	return 0;
}

static void
path_in(const struct fixture *f, const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", f->dir, name);
}

/* A child's exit code for a store return value: 0, or 81..99. */
static int
child_code(int rc)
{
	return rc == 0 ? 0 : -rc - 900;
}

/*
 * Runs @fn(@f) in a child process and returns its exit code; fails the
 * case if the child was killed by a signal. Callers compare the code, so
 * AddressSanitizer's exit status 1 after a crash fails them too.
 */
static int
in_child(struct fixture *f, int (*fn)(struct fixture *f), const char *what)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* cmocka's handlers would go on running tests in the child. */
		int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGABRT, SIGILL};
		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			signal(sigs[i], SIG_DFL);
		_exit(fn(f));
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (WIFSIGNALED(st))
		fail_msg("%s: killed by signal %d (%s)", what, WTERMSIG(st),
			 strsignal(WTERMSIG(st)));
	return WEXITSTATUS(st);
}

static uint64_t
get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static void
put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

static void
put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* The whole data file, read into memory. */
struct image {
	uint8_t *b;
	size_t len;
	size_t psize;
};

static void
image_read(struct fixture *f, struct image *im)
{
	char path[128];
	path_in(f, "mesh.mdb", path, sizeof(path));
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	im->len = (size_t)ftell(fp);
	fseek(fp, 0, SEEK_SET);
	im->b = malloc(im->len);
	assert_int_equal(fread(im->b, 1, im->len, fp), im->len);
	fclose(fp);
	uint32_t ps;
	memcpy(&ps, im->b + META_PSIZE, sizeof(ps));
	im->psize = ps;
}

/* Writes @len bytes of @b as the data file, removing the lock file. */
static void
image_write(struct fixture *f, const uint8_t *b, size_t len)
{
	char path[128];
	path_in(f, "mesh.mdb-lock", path, sizeof(path));
	unlink(path);
	path_in(f, "mesh.mdb", path, sizeof(path));
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(b, 1, len, fp), len);
	fclose(fp);
}

/* Offset of the meta page LMDB uses (the higher transaction id). */
static size_t
image_meta(const struct image *im)
{
	uint64_t t0 = get64(im->b + META_TXNID);
	uint64_t t1 = get64(im->b + im->psize + META_TXNID);
	return t0 < t1 ? im->psize : 0;
}

/*
 * A store with something in every tree: identity, incarnation, a flag,
 * 400 tenant keys (a branch level), values large enough for overflow
 * pages, and deletes, so that the free list holds pages.
 */
static void
make_store(struct fixture *f)
{
	struct store *s;
	struct store_identity id;
	uint32_t inc;
	assert_int_equal(store_open(f->dir, 0, &f->t.env, &s), 0);
	assert_int_equal(store_identity_load(s, "node-1", &id), 0);
	assert_int_equal(store_incarnation_next(s, &inc), 0);
	assert_int_equal(store_flag_set(s, "draining", true), 0);
	struct tenant_kv kv;
	store_kv(s, &kv);
	static uint8_t val[6000];
	memset(val, 'v', sizeof(val));
	for (int i = 0; i < 400; i++) {
		char key[32];
		snprintf(key, sizeof(key), "t/key-%05d", i);
		struct tenant_kv_write w = {
		    .key = key,
		    .klen = strlen(key),
		    .val = val,
		    .vlen = (size_t)(i % 7 == 0 ? 3000 + i : 40 + i % 50)};
		assert_int_equal(kv.commit(kv.ctx, &w, 1), 0);
	}
	for (int i = 0; i < 400; i += 3) {
		char key[32];
		snprintf(key, sizeof(key), "t/key-%05d", i);
		struct tenant_kv_write w = {
		    .key = key, .klen = strlen(key), .del = true};
		assert_int_equal(kv.commit(kv.ctx, &w, 1), 0);
	}
	store_close(s);
}

/* What a node does with its store at start, and a little tenant work. */
static int
use_store(struct fixture *f)
{
	struct store *s;
	int rc = store_open(f->dir, 0, &f->t.env, &s);
	if (rc != 0)
		return child_code(rc);
	struct store_identity id;
	uint32_t inc;
	bool on;
	rc = store_identity_load(s, "node-1", &id);
	if (rc == 0)
		rc = store_incarnation_next(s, &inc);
	if (rc == 0)
		rc = store_flag_get(s, "draining", &on);
	struct tenant_kv kv;
	store_kv(s, &kv);
	for (int i = 0; rc == 0 && i < 400; i += 5) {
		char key[32];
		const void *v;
		size_t vlen;
		snprintf(key, sizeof(key), "t/key-%05d", i);
		int r = kv.get(kv.ctx, key, strlen(key), &v, &vlen);
		if (r != 0 && r != MESH_ENOENT)
			rc = r;
	}
	if (rc == 0) {
		struct tenant_kv_write w = {
		    .key = "t/new", .klen = 5, .val = "x", .vlen = 1};
		rc = kv.commit(kv.ctx, &w, 1);
	}
	store_close(s);
	return child_code(rc);
}

/* What meshd does with its store at start. */
static int
start_node(struct fixture *f)
{
	struct store *s;
	int rc = store_open(f->dir, 0, &f->t.env, &s);
	if (rc != 0)
		return child_code(rc);
	struct store_identity id;
	uint32_t inc;
	rc = store_identity_load(s, "node-1", &id);
	if (rc == 0)
		rc = store_incarnation_next(s, &inc);
	store_close(s);
	return child_code(rc);
}

/* Empties the test directory. */
static void
reset_dir(struct fixture *f)
{
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	assert_int_equal(mkdir(f->dir, 0700), 0);
}

static int
open_only(struct fixture *f)
{
	struct store *s;
	int rc = store_open(f->dir, 0, &f->t.env, &s);
	store_close(s);
	return child_code(rc);
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
	store_close(s);
	assert_int_equal(store_open(f->dir, 0, &f->t.env, &s), 0);
	assert_int_equal(store_incarnation_next(s, &inc), 0);
	assert_int_equal(inc, 2);
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

/*
 * An empty mesh.mdb used to open as a new store, so the node came back
 * with a new identity and incarnation 1 and said nothing. A new store is
 * now made whole or not at all, so an empty file is damage.
 */
static void
test_store_empty_file_refused(void **state)
{
	struct fixture *f = *state;
	make_store(f);
	image_write(f, (const uint8_t *)"", 0);
	assert_int_equal(in_child(f, use_store, "empty file"),
			 child_code(MESH_ECORRUPT));
	struct store *s;
	assert_int_equal(store_open(f->dir, 0, &f->t.env, &s), MESH_ECORRUPT);
	assert_non_null(strstr(f->t.last_line, "is damaged: it is empty"));
	assert_non_null(strstr(f->t.last_line, "move the data directory"));
}

static void
test_store_truncated_file_refused(void **state)
{
	struct fixture *f = *state;
	make_store(f);
	struct image im;
	image_read(f, &im);
	size_t sizes[] = {1,
			  100,
			  im.psize - 1,
			  im.psize,
			  2 * im.psize - 1,
			  2 * im.psize,
			  im.len / 2,
			  im.len / 2 + 1234,
			  im.len - im.psize,
			  im.len - 1};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char what[64];
		snprintf(what, sizeof(what), "truncated to %zu", sizes[i]);
		image_write(f, im.b, sizes[i]);
		assert_int_equal(in_child(f, use_store, what),
				 child_code(MESH_ECORRUPT));
	}
	free(im.b);
}

static void
test_store_not_lmdb_refused(void **state)
{
	struct fixture *f = *state;
	static uint8_t junk[64 << 10];
	srand(7);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)rand();
	image_write(f, junk, sizeof(junk));
	assert_int_equal(in_child(f, use_store, "random bytes"),
			 child_code(MESH_ECORRUPT));
	const char text[] = "# not a database\nhello\n";
	image_write(f, (const uint8_t *)text, sizeof(text) - 1);
	assert_int_equal(in_child(f, use_store, "a text file"),
			 child_code(MESH_ECORRUPT));
	memset(junk, 0, sizeof(junk));
	image_write(f, junk, sizeof(junk));
	assert_int_equal(in_child(f, use_store, "zeros"),
			 child_code(MESH_ECORRUPT));
}

/* One damage to the newest meta page: a field and the value written. */
struct meta_case {
	const char *what;
	size_t off;
	int width; /* 2, 4 or 8 bytes */
	uint64_t value;
	bool use_free_root; /* value: the first page on the free list */
};

/*
 * Each of these killed the process before: psize 0 with SIGFPE, a huge
 * psize with SIGBUS, a root of 0 or 1 and a root that is a free page with
 * SIGABRT from LMDB's asserts. A root of P_INVALID opened as an empty
 * database and made a new identity; a wrong depth or entry count went
 * unnoticed; a transaction id of all ones made every later commit
 * invisible.
 */
static void
test_store_damaged_meta_refused(void **state)
{
	struct fixture *f = *state;
	make_store(f);
	struct image im;
	image_read(f, &im);
	const struct meta_case cases[] = {
	    {"page size 0", META_PSIZE, 4, 0, false},
	    {"page size 1", META_PSIZE, 4, 1, false},
	    {"page size 2^31-1", META_PSIZE, 4, 0x7fffffff, false},
	    {"page size 65536", META_PSIZE, 4, 65536, false},
	    {"main root 0", META_MAIN_ROOT, 8, 0, false},
	    {"main root 1", META_MAIN_ROOT, 8, 1, false},
	    {"main root past the end", META_MAIN_ROOT, 8, 1u << 30, false},
	    {"main root P_INVALID", META_MAIN_ROOT, 8, P_INVALID, false},
	    {"main root a free page", META_MAIN_ROOT, 8, 0, true},
	    {"free-list root 1", META_FREE_ROOT, 8, 1, false},
	    {"main depth 50", META_MAIN_DEPTH, 2, 50, false},
	    {"main flags DUPSORT", META_MAIN_FLAGS, 2, 0x04, false},
	    {"main entries 5", META_MAIN_ENTRIES, 8, 5, false},
	    {"last page 0", META_LAST_PG, 8, 0, false},
	    {"last page 2", META_LAST_PG, 8, 2, false},
	    {"last page 2^64-1", META_LAST_PG, 8, P_INVALID, false},
	    {"txnid 2^64-1", META_TXNID, 8, P_INVALID, false},
	};
	size_t meta = image_meta(&im);
	uint8_t *b = malloc(im.len);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct meta_case *c = &cases[i];
		memcpy(b, im.b, im.len);
		uint64_t v = c->value;
		if (c->use_free_root) {
			/* The free list's root leaf: its first record's first
			 * page, a page that is free in this snapshot. */
			uint64_t root = get64(b + meta + META_FREE_ROOT);
			uint8_t *pg = b + root * im.psize;
			uint16_t ptr;
			memcpy(&ptr, pg + PAGE_PTRS, sizeof(ptr));
			uint16_t ksize;
			memcpy(&ksize, pg + ptr + 6, sizeof(ksize));
			v = get64(pg + ptr + 8 + ksize + 8);
			assert_true(v >= 2 && v * im.psize < im.len);
		}
		if (c->width == 8)
			put64(b + meta + c->off, v);
		else if (c->width == 4)
			memcpy(b + meta + c->off, &(uint32_t){(uint32_t)v}, 4);
		else
			put16(b + meta + c->off, (uint16_t)v);
		image_write(f, b, im.len);
		assert_int_equal(in_child(f, use_store, c->what),
				 child_code(MESH_ECORRUPT));
	}
	free(b);
	free(im.b);
}

/*
 * Page damage that killed the process or lost data before: node offsets
 * overwritten in the main database's leaf or in the free list (SIGBUS: the
 * nodes are read past the end of the file), and a leaf marked P_LOOSE,
 * which LMDB then skipped when it wrote the next commit, so that commit
 * lost the tenant database without a word.
 */
static void
test_store_damaged_pages_refused(void **state)
{
	struct fixture *f = *state;
	make_store(f);
	struct image im;
	image_read(f, &im);
	size_t meta = image_meta(&im);
	uint64_t roots[2] = {get64(im.b + meta + META_MAIN_ROOT),
			     get64(im.b + meta + META_FREE_ROOT)};
	uint8_t *b = malloc(im.len);
	for (int r = 0; r < 2; r++) {
		uint8_t *pg = b + roots[r] * im.psize;
		for (int k = 0; k < 3; k++) {
			memcpy(b, im.b, im.len);
			/* Offsets that fall off the page, or on its header. */
			uint16_t bad[] = {(uint16_t)(im.psize + 4000), 2,
					  0xfff1};
			put16(pg + PAGE_PTRS, bad[k]);
			image_write(f, b, im.len);
			assert_int_equal(
			    in_child(f, use_store,
				     r == 0 ? "main leaf offsets"
					    : "free-list leaf offsets"),
			    child_code(MESH_ECORRUPT));
		}
		memcpy(b, im.b, im.len);
		put16(pg + PAGE_FLAGS, 0x4002); /* P_LOOSE | P_LEAF */
		image_write(f, b, im.len);
		assert_int_equal(in_child(f, use_store, "leaf marked loose"),
				 child_code(MESH_ECORRUPT));
	}
	free(b);
	free(im.b);
}

/*
 * Random damage anywhere, many times: every outcome must be a store
 * return value, never a signal. MESH_TEST_FUZZ=N runs N rounds instead of
 * the default.
 */
static void
test_store_random_damage_never_kills(void **state)
{
	struct fixture *f = *state;
	make_store(f);
	struct image im;
	image_read(f, &im);
	const char *env = getenv("MESH_TEST_FUZZ");
	int rounds = env != NULL ? atoi(env) : 300;
	uint8_t *b = malloc(im.len);
	unsigned seed = 1;
	int opened = 0;
	for (int i = 0; i < rounds; i++) {
		memcpy(b, im.b, im.len);
		size_t len = im.len;
		srand(seed++);
		switch (i % 5) {
		case 0: /* a few random bytes anywhere */
			for (int k = 0; k < 1 + rand() % 8; k++)
				b[(size_t)rand() % len] = (uint8_t)rand();
			break;
		case 1: /* a run of garbage inside one page */
		{
			size_t pg = (size_t)rand() % (len / im.psize);
			size_t at = (size_t)rand() % im.psize;
			size_t n = 1 + (size_t)rand() % 64;
			for (size_t k = 0; k < n && at + k < im.psize; k++)
				b[pg * im.psize + at + k] = (uint8_t)rand();
			break;
		}
		case 2: /* a page header */
		{
			size_t pg = 2 + (size_t)rand() % (len / im.psize - 2);
			b[pg * im.psize + 8 + (size_t)rand() % 8] =
			    (uint8_t)rand();
			break;
		}
		case 3: /* a word of the newest meta page */
		{
			size_t meta = image_meta(&im);
			size_t at = PG_HDR + 8 * ((size_t)rand() % 18);
			put64(b + meta + at,
			      rand() % 2 ? (uint64_t)rand()
					 : (uint64_t)rand() % (len / im.psize));
			break;
		}
		default: /* a whole page zeroed or randomised */
		{
			size_t pg = (size_t)rand() % (len / im.psize);
			for (size_t k = 0; k < im.psize; k++)
				b[pg * im.psize + k] =
				    rand() % 2 ? 0 : (uint8_t)rand();
			break;
		}
		}
		image_write(f, b, len);
		char what[64];
		snprintf(what, sizeof(what), "random damage round %d", i);
		int code = in_child(f, use_store, what);
		if (code != 0 && (code < 81 || code > 99))
			fail_msg("%s: exit status %d is no store error", what,
				 code);
		opened += code == 0;
	}
	print_message("random damage: %d rounds, %d still usable, the rest "
		      "refused with a named error\n",
		      rounds, opened);
	free(b);
	free(im.b);
}

/*
 * The check must accept every file LMDB writes: many random commits,
 * deletes, overflow values and batches, opened again (and so checked)
 * every 50 operations.
 */
static void
test_store_check_accepts_what_lmdb_writes(void **state)
{
	struct fixture *f = *state;
	struct store *s;
	struct tenant_kv kv;
	assert_int_equal(store_open(f->dir, 0, &f->t.env, &s), 0);
	store_kv(s, &kv);
	static uint8_t val[20000];
	memset(val, 'w', sizeof(val));
	srand(42);
	for (int i = 0; i < 2000; i++) {
		char key[64];
		snprintf(key, sizeof(key), "k%06d", rand() % 3000);
		bool batch = rand() % 4 == 0;
		if (batch)
			assert_int_equal(kv.batch_begin(kv.ctx), 0);
		int n = batch ? 1 + rand() % 20 : 1;
		for (int j = 0; j < n; j++) {
			snprintf(key, sizeof(key), "k%06d", rand() % 3000);
			size_t vlen = rand() % 10 == 0
					  ? (size_t)rand() % sizeof(val)
					  : (size_t)rand() % 300;
			struct tenant_kv_write w = {.key = key,
						    .klen = strlen(key),
						    .val = val,
						    .vlen = vlen,
						    .del = rand() % 3 == 0};
			assert_int_equal(kv.commit(kv.ctx, &w, 1), 0);
		}
		if (batch)
			assert_int_equal(kv.batch_end(kv.ctx, rand() % 5 != 0),
					 0);
		if (i % 50 == 49) {
			uint32_t inc;
			assert_int_equal(store_incarnation_next(s, &inc), 0);
			store_close(s);
			assert_int_equal(store_open(f->dir, 0, &f->t.env, &s),
					 0);
			store_kv(s, &kv);
		}
	}
	store_close(s);
}

/* A directory, FIFO or device where the data file should be. */
static void
test_store_not_a_file_refused(void **state)
{
	struct fixture *f = *state;
	char path[128];
	path_in(f, "mesh.mdb", path, sizeof(path));
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(in_child(f, open_only, "a directory"),
			 child_code(MESH_ECORRUPT));
	rmdir(path);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(in_child(f, open_only, "a FIFO"),
			 child_code(MESH_ECORRUPT));
	unlink(path);
	assert_int_equal(symlink("/nonexistent/mesh.mdb", path), 0);
	assert_int_equal(in_child(f, open_only, "a dangling link"),
			 child_code(MESH_EIO));
	unlink(path);
}

/*
 * LMDB's lock file holds no data, so a damaged one is replaced; before, a
 * FIFO or a dangling link there stopped the store with "I/O error".
 */
static void
test_store_damaged_lock_file_replaced(void **state)
{
	struct fixture *f = *state;
	make_store(f);
	char lock[128];
	path_in(f, "mesh.mdb-lock", lock, sizeof(lock));
	for (int k = 0; k < 5; k++) {
		unlink(lock);
		int fd;
		switch (k) {
		case 0: /* garbage */
			fd = open(lock, O_WRONLY | O_CREAT, 0600);
			for (int i = 0; i < 1024; i++)
				assert_int_equal(write(fd, "garbage!", 8), 8);
			close(fd);
			break;
		case 1: /* empty */
			close(open(lock, O_WRONLY | O_CREAT, 0600));
			break;
		case 2: /* huge and sparse */
			fd = open(lock, O_WRONLY | O_CREAT, 0600);
			assert_int_equal(ftruncate(fd, (off_t)1 << 34), 0);
			close(fd);
			break;
		case 3:
			assert_int_equal(mkfifo(lock, 0600), 0);
			break;
		default:
			assert_int_equal(symlink("/nonexistent/lock", lock), 0);
			break;
		}
		char what[32];
		snprintf(what, sizeof(what), "lock file case %d", k);
		assert_int_equal(in_child(f, use_store, what), 0);
	}
	unlink(lock);
	assert_int_equal(mkdir(lock, 0700), 0);
	assert_int_equal(in_child(f, use_store, "lock file a directory"),
			 child_code(MESH_EIO));
	rmdir(lock);
}

/* The file size limit a child gets, so that its writes fail with EFBIG. */
static rlim_t child_fsize;

static int
open_limited(struct fixture *f)
{
	signal(SIGXFSZ, SIG_IGN);
	struct rlimit rl = {child_fsize, child_fsize};
	setrlimit(RLIMIT_FSIZE, &rl);
	return open_only(f);
}

/*
 * A first start that cannot write the whole new file used to leave part
 * of it, which every later start refused ("not an LMDB file") or opened as
 * a new store; the error said "I/O error". Now it says MESH_ENOSPC, leaves
 * nothing, and the next start with room succeeds.
 */
static void
test_store_first_start_without_room_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	rlim_t limits[] = {0, 100, 4096, 4097, 8192, 12288};
	char path[128];
	path_in(f, "mesh.mdb", path, sizeof(path));
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		child_fsize = limits[i];
		char what[64];
		snprintf(what, sizeof(what), "file size limit %zu",
			 (size_t)limits[i]);
		assert_int_equal(in_child(f, open_limited, what),
				 child_code(MESH_ENOSPC));
		struct stat st;
		assert_int_equal(stat(path, &st), -1);
		char tmp[160];
		snprintf(tmp, sizeof(tmp), "%s.new", path);
		assert_int_equal(stat(tmp, &st), -1);
	}
	assert_int_equal(in_child(f, use_store, "then with room"), 0);
}

#define GUARD_STATUS 42

/* Opens the store, guards it, shortens the file under it, then reads. */
static int
read_after_truncate(struct fixture *f)
{
	struct store *s;
	int rc = store_open(f->dir, 0, &f->t.env, &s);
	if (rc != 0)
		return child_code(rc);
	if (store_guard_faults(s, GUARD_STATUS, GUARD_STATUS + 1) != 0)
		return 3;
	char path[128];
	path_in(f, "mesh.mdb", path, sizeof(path));
	if (truncate(path, 8192) != 0)
		return 4;
	struct store_identity id;
	rc = store_identity_load(s, "node-1", &id);
	store_close(s);
	return child_code(rc);
}

/* Opens the store, guards it, breaks the newest meta page, then reads. */
static int
read_after_meta_damage(struct fixture *f)
{
	struct store *s;
	int rc = store_open(f->dir, 0, &f->t.env, &s);
	if (rc != 0)
		return child_code(rc);
	if (store_guard_faults(s, GUARD_STATUS, GUARD_STATUS + 1) != 0)
		return 3;
	char path[128];
	path_in(f, "mesh.mdb", path, sizeof(path));
	int fd = open(path, O_RDWR);
	uint8_t hdr[2][256];
	if (pread(fd, hdr[0], sizeof(hdr[0]), 0) != sizeof(hdr[0]))
		return 5;
	uint32_t ps;
	memcpy(&ps, hdr[0] + META_PSIZE, sizeof(ps));
	if (pread(fd, hdr[1], sizeof(hdr[1]), ps) != sizeof(hdr[1]))
		return 5;
	size_t meta =
	    get64(hdr[0] + META_TXNID) < get64(hdr[1] + META_TXNID) ? ps : 0;
	uint64_t one = 1;
	if (pwrite(fd, &one, 8, (off_t)(meta + META_MAIN_ROOT)) != 8)
		return 5;
	close(fd);
	bool on;
	rc = store_flag_get(s, "draining", &on);
	store_close(s);
	return child_code(rc);
}

/*
 * What no check at open can prevent: the file shrinks under a running
 * store (or the disk fails to read a page of the map), which is SIGBUS,
 * and LMDB meeting an inconsistent page, which is abort(). With
 * store_guard_faults() both end in a message and the given exit status.
 */
static void
test_store_guard_turns_faults_into_exit(void **state)
{
	struct fixture *f = *state;
	make_store(f);
	assert_int_equal(in_child(f, read_after_truncate, "file shortened"),
			 GUARD_STATUS);
	reset_dir(f);
	make_store(f);
	assert_int_equal(in_child(f, read_after_meta_damage, "LMDB assert"),
			 GUARD_STATUS + 1);
}

/* ---- full disk: a small tmpfs, as root ---------------------------- */

/*
 * Mounts a tmpfs of @size on a new directory, kept in @f->mnt so that
 * teardown unmounts it even when the case fails. False, with the reason
 * printed, when that cannot be done (not root).
 */
static bool
fullfs_mount(struct fixture *f, const char *size)
{
	if (geteuid() != 0) {
		print_message("skipped: needs root to mount a small tmpfs\n");
		return false;
	}
	char dir[sizeof(f->mnt)] = "/tmp/test_store_fs.XXXXXX";
	if (mkdtemp(dir) == NULL)
		return false;
	char opts[64];
	snprintf(opts, sizeof(opts), "size=%s,mode=0700", size);
	if (mount("tmpfs", dir, "tmpfs", 0, opts) != 0) {
		print_message("skipped: cannot mount a tmpfs: %s\n",
			      strerror(errno));
		rmdir(dir);
		return false;
	}
	memcpy(f->mnt, dir, sizeof(dir));
	return true;
}

/* Fills the filesystem of @dir with a file named @name; returns its size. */
static size_t
fill(const char *dir, const char *name)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	static char buf[4096];
	size_t total = 0;
	ssize_t n;
	while ((n = write(fd, buf, sizeof(buf))) > 0)
		total += (size_t)n;
	/* Then the last bytes a page would not take. */
	while ((n = write(fd, buf, 1)) > 0)
		total += (size_t)n;
	close(fd);
	return total;
}

/*
 * A first start on a full disk: LMDB made its lock file with ftruncate(),
 * which allocates nothing, and its first write to it through the map
 * raised SIGBUS inside mdb_env_open(); with a little room, a short write
 * was "I/O error" and left a partial data file that later starts refused.
 * Now: MESH_ENOSPC, nothing left behind, and a start with room succeeds.
 */
static void
test_store_full_disk_first_start(void **state)
{
	struct fixture *f = *state;
	if (!fullfs_mount(f, "256k"))
		skip();
	struct fixture g = *f; /* logs into f->t */
	snprintf(g.dir, sizeof(g.dir), "%s/d", f->mnt);
	for (size_t room = 0; room <= 48; room += 4) {
		char filler[128];
		snprintf(filler, sizeof(filler), "%s/filler", f->mnt);
		unlink(filler);
		nftw(g.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		assert_int_equal(mkdir(g.dir, 0700), 0);
		fill(f->mnt, "filler");
		/* Give back @room KiB. */
		struct stat st;
		stat(filler, &st);
		assert_int_equal(
		    truncate(filler, st.st_size > (off_t)room * 1024
					 ? st.st_size - (off_t)room * 1024
					 : 0),
		    0);
		char what[64];
		snprintf(what, sizeof(what), "first start with %zu KiB free",
			 room);
		int code = in_child(&g, start_node, what);
		assert_true(code == 0 || code == child_code(MESH_ENOSPC));
		char path[160];
		snprintf(path, sizeof(path), "%s/mesh.mdb", g.dir);
		char tmp[170];
		snprintf(tmp, sizeof(tmp), "%s.new", path);
		assert_int_equal(stat(tmp, &st), -1);
		if (code != 0) {
			/* No data file, or a whole one: the next start with
			 * room checks it. */
			unlink(filler);
			assert_int_equal(in_child(&g, start_node, "with room"),
					 0);
		}
	}
}

/*
 * The disk fills while the node runs. Before, the node could then not save
 * a raised incarnation, nor the one of its next start, which failed with
 * MESH_ENOSPC ("I/O error" when a write got only part of its way): an
 * incarnation spoken but not saved means a restart below its previous life.
 * Now the store keeps room allocated for the node's own records, and tenant
 * writes stop short of it.
 */
static void
test_store_full_disk_keeps_room_for_own_records(void **state)
{
	struct fixture *f = *state;
	if (!fullfs_mount(f, "48m"))
		skip();
	struct fixture g = *f; /* logs into f->t */
	snprintf(g.dir, sizeof(g.dir), "%s/d", f->mnt);
	assert_int_equal(mkdir(g.dir, 0700), 0);
	struct store *s;
	struct store_identity id;
	assert_int_equal(store_open(g.dir, 0, &g.t.env, &s), 0);
	assert_int_equal(store_identity_load(s, "node-1", &id), 0);
	uint32_t inc;
	assert_int_equal(store_incarnation_next(s, &inc), 0);
	struct tenant_kv kv;
	store_kv(s, &kv);
	static uint8_t val[256 << 10];
	memset(val, 'd', sizeof(val));
	struct tenant_kv_write w = {
	    .key = "t/first", .klen = 7, .val = val, .vlen = 3000};
	assert_int_equal(kv.commit(kv.ctx, &w, 1), 0);
	/* Something else takes the whole disk. */
	fill(f->mnt, "filler");
	w.key = "t/second";
	w.klen = 8;
	assert_int_equal(kv.commit(kv.ctx, &w, 1), MESH_ENOSPC);
	for (uint32_t i = 1; i <= 100; i++) {
		uint32_t boot;
		assert_int_equal(store_incarnation_next(s, &boot), 0);
		assert_int_equal(boot, inc + i);
	}
	assert_int_equal(store_flag_set(s, "draining", true), 0);
	store_close(s);
	/* The next start, still on the full disk, outbids all of them. */
	assert_int_equal(in_child(&g, start_node, "start on a full disk"), 0);
	assert_int_equal(store_open(g.dir, 0, &g.t.env, &s), 0);
	uint32_t next;
	assert_int_equal(store_incarnation_next(s, &next), 0);
	assert_int_equal(next, inc + 102);
	/*
	 * With room again, tenant data fills the disk: it is refused before
	 * the disk is full (MESH_ENOSPC, not a short write's MESH_EIO), and
	 * the node's own records are still written.
	 */
	char filler[96];
	snprintf(filler, sizeof(filler), "%s/filler", f->mnt);
	unlink(filler);
	store_kv(s, &kv);
	int rc = 0, n = 0;
	while (rc == 0 && n < 1000) {
		char key[32];
		snprintf(key, sizeof(key), "t/%d", n++);
		w = (struct tenant_kv_write){.key = key,
					     .klen = strlen(key),
					     .val = val,
					     .vlen = sizeof(val)};
		rc = kv.commit(kv.ctx, &w, 1);
	}
	assert_int_equal(rc, MESH_ENOSPC);
	assert_true(n > 10);
	assert_non_null(strstr(f->t.last_line, "disk nearly full"));
	fill(f->mnt, "filler");
	for (uint32_t i = 1; i <= 100; i++) {
		uint32_t boot;
		assert_int_equal(store_incarnation_next(s, &boot), 0);
		assert_int_equal(boot, next + i);
	}
	store_close(s);
}

/*
 * One batch of tenant commits (the tenant service holds one transaction
 * for every frame read in a loop turn) used to pass the headroom check at
 * each commit, since free space changes only when the batch commits: a
 * batch could fill the disk, reserve and all. The check counts what the
 * open batch will add now.
 */
static void
test_store_batch_counts_toward_headroom(void **state)
{
	struct fixture *f = *state;
	if (!fullfs_mount(f, "64m"))
		skip();
	struct fixture g = *f; /* logs into f->t */
	snprintf(g.dir, sizeof(g.dir), "%s/d", f->mnt);
	assert_int_equal(mkdir(g.dir, 0700), 0);
	struct store *s;
	assert_int_equal(store_open(g.dir, 0, &g.t.env, &s), 0);
	struct tenant_kv kv;
	store_kv(s, &kv);
	/* Leave the 32 MiB headroom and 8 MiB more free. */
	size_t total = fill(f->mnt, "filler");
	char filler[128];
	snprintf(filler, sizeof(filler), "%s/filler", f->mnt);
	size_t keep = (size_t)40 << 20;
	assert_true(total > keep);
	assert_int_equal(truncate(filler, (off_t)(total - keep)), 0);
	static uint8_t val[1 << 20];
	memset(val, 'b', sizeof(val));
	assert_int_equal(kv.batch_begin(kv.ctx), 0);
	int rc = 0, n = 0;
	while (rc == 0 && n < 64) {
		char key[32];
		snprintf(key, sizeof(key), "t/%d", n++);
		struct tenant_kv_write w = {.key = key,
					    .klen = strlen(key),
					    .val = val,
					    .vlen = sizeof(val)};
		rc = kv.commit(kv.ctx, &w, 1);
	}
	/* 8 MiB of room takes a few 1 MiB values, not 64. */
	assert_int_equal(rc, MESH_ENOSPC);
	assert_true(n > 1 && n <= 8);
	assert_int_equal(kv.batch_end(kv.ctx, true), 0);
	/* And the node's own records still go in. */
	assert_int_equal(store_flag_set(s, "draining", true), 0);
	uint32_t boot;
	assert_int_equal(store_incarnation_next(s, &boot), 0);
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
	    cmocka_unit_test_setup_teardown(test_store_empty_file_refused,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_truncated_file_refused,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_not_lmdb_refused, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_store_damaged_meta_refused,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_damaged_pages_refused,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_store_random_damage_never_kills, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_store_check_accepts_what_lmdb_writes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_not_a_file_refused,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_store_damaged_lock_file_replaced, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_store_first_start_without_room_leaves_nothing, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(
		test_store_guard_turns_faults_into_exit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_full_disk_first_start,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_store_full_disk_keeps_room_for_own_records, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(
		test_store_batch_counts_toward_headroom, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
