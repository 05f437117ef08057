/* test_seal.c - sealing and keyrings (agent/io/seal). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mesh_err.h"
#include "seal.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *KEY_A = "4Cc9KCXH4Bv7EWKp5YeLjD+0m5ibP9Gpkd9wQPeW0Bw=";
static const char *KEY_B = "5zvYmZ3q0pcdKm0pJ3a5F0q6m1Sg3Jt3cN1QK8rYk2M=";
static const char *KEY_C = "q1ZzQ0lFn7VwYp9nD2m8b3cT6hXr4uJkL5sA0eGiWoU=";

static void
ring_of(struct seal_keyring *r, const char *k1, const char *k2)
{
	char text[256];
	snprintf(text, sizeof(text), "# test\n%s\n%s\n", k1, k2 ? k2 : "");
	assert_int_equal(seal_keyring_parse(r, text, strlen(text), NULL), 0);
}

static void
test_seal_roundtrip(void **state)
{
	(void)state;
	struct seal_keyring r;
	ring_of(&r, KEY_A, NULL);
	const uint8_t msg[] = "hello mesh";
	uint8_t sealed[128], plain[128];
	size_t n, m;
	assert_int_equal(
	    seal_seal(&r, msg, sizeof(msg), sealed, sizeof(sealed), &n), 0);
	assert_int_equal(n, sizeof(msg) + SEAL_OVERHEAD);
	assert_int_equal(sealed[0], SEAL_VERSION);
	assert_int_equal(seal_open(&r, sealed, n, plain, sizeof(plain), &m), 0);
	assert_int_equal(m, sizeof(msg));
	assert_memory_equal(plain, msg, m);
}

static void
test_seal_nonces_differ(void **state)
{
	(void)state;
	struct seal_keyring r;
	ring_of(&r, KEY_A, NULL);
	uint8_t a[64], b[64];
	size_t na, nb;
	assert_int_equal(seal_seal(&r, (const uint8_t *)"x", 1, a, 64, &na), 0);
	assert_int_equal(seal_seal(&r, (const uint8_t *)"x", 1, b, 64, &nb), 0);
	assert_memory_not_equal(a + 1, b + 1, SEAL_NONCE_BYTES);
}

static void
test_seal_wrong_key_rejected(void **state)
{
	(void)state;
	struct seal_keyring ra, rb;
	ring_of(&ra, KEY_A, NULL);
	ring_of(&rb, KEY_B, NULL);
	uint8_t sealed[64], plain[64];
	size_t n, m;
	assert_int_equal(seal_seal(&ra, (const uint8_t *)"secret", 6, sealed,
				   sizeof(sealed), &n),
			 0);
	assert_int_equal(seal_open(&rb, sealed, n, plain, sizeof(plain), &m),
			 MESH_EAUTH);
}

static void
test_seal_tampered_and_truncated_rejected(void **state)
{
	(void)state;
	struct seal_keyring r;
	ring_of(&r, KEY_A, NULL);
	uint8_t sealed[64], plain[64];
	size_t n, m;
	assert_int_equal(seal_seal(&r, (const uint8_t *)"payload", 7, sealed,
				   sizeof(sealed), &n),
			 0);
	for (size_t i = 1; i < n; i++) {
		sealed[i] ^= 0x40;
		assert_int_equal(
		    seal_open(&r, sealed, n, plain, sizeof(plain), &m),
		    MESH_EAUTH);
		sealed[i] ^= 0x40;
	}
	/* The version byte is authenticated data too. */
	sealed[0] = 9;
	assert_int_equal(seal_open(&r, sealed, n, plain, sizeof(plain), &m),
			 MESH_EVERSION);
	sealed[0] = SEAL_VERSION;
	assert_int_equal(seal_open(&r, sealed, n - 1, plain, sizeof(plain), &m),
			 MESH_EAUTH);
	assert_int_equal(
	    seal_open(&r, sealed, SEAL_OVERHEAD - 1, plain, sizeof(plain), &m),
	    MESH_ETRUNC);
	assert_int_equal(seal_open(&r, sealed, 0, plain, sizeof(plain), &m),
			 MESH_ETRUNC);
}

static void
test_seal_rotation_accepts_secondary_key(void **state)
{
	(void)state;
	struct seal_keyring old_ring, new_ring;
	ring_of(&old_ring, KEY_A, NULL);
	ring_of(&new_ring, KEY_B, KEY_A); /* new primary, old still accepted */
	uint8_t sealed[64], plain[64];
	size_t n, m;
	assert_int_equal(seal_seal(&old_ring, (const uint8_t *)"x", 1, sealed,
				   sizeof(sealed), &n),
			 0);
	assert_int_equal(
	    seal_open(&new_ring, sealed, n, plain, sizeof(plain), &m), 0);
	/* What the new ring seals, the old one cannot open. */
	assert_int_equal(seal_seal(&new_ring, (const uint8_t *)"x", 1, sealed,
				   sizeof(sealed), &n),
			 0);
	assert_int_equal(
	    seal_open(&old_ring, sealed, n, plain, sizeof(plain), &m),
	    MESH_EAUTH);
}

static void
test_seal_keyring_parse_errors(void **state)
{
	(void)state;
	struct seal_keyring r;
	int line = -1;
	const char *bad_b64 = "# c\nnot base64!!\n";
	assert_int_equal(
	    seal_keyring_parse(&r, bad_b64, strlen(bad_b64), &line),
	    MESH_EINVAL);
	assert_int_equal(line, 2);
	const char *short_key = "AAAA\n";
	assert_int_equal(
	    seal_keyring_parse(&r, short_key, strlen(short_key), &line),
	    MESH_EINVAL);
	const char *empty = "# only a comment\n\n";
	assert_int_equal(seal_keyring_parse(&r, empty, strlen(empty), &line),
			 MESH_ENOENT);
	char many[2048] = "";
	for (int i = 0; i < SEAL_MAX_KEYS + 1; i++) {
		uint8_t k[SEAL_KEY_BYTES] = {(uint8_t)i};
		char b64[64];
		sodium_bin2base64(b64, sizeof(b64), k, sizeof(k),
				  sodium_base64_VARIANT_ORIGINAL);
		strcat(many, b64);
		strcat(many, "\n");
	}
	assert_int_equal(seal_keyring_parse(&r, many, strlen(many), &line),
			 MESH_ERANGE);
	assert_int_equal(line, SEAL_MAX_KEYS + 1);
	/* The same key twice: refused at its second line (a reload would
	 * count it twice). */
	char twice[256];
	snprintf(twice, sizeof(twice), "%s\n# again\n%s\n", KEY_A, KEY_A);
	assert_int_equal(seal_keyring_parse(&r, twice, strlen(twice), &line),
			 MESH_EEXIST);
	assert_int_equal(line, 3);
	const char *spaced = "  \t"
			     "4Cc9KCXH4Bv7EWKp5YeLjD+0m5ibP9Gpkd9wQPeW0Bw="
			     " \r\n";
	assert_int_equal(seal_keyring_parse(&r, spaced, strlen(spaced), NULL),
			 0);
	assert_int_equal(r.count, 1);
}

static void
test_seal_generate_parses(void **state)
{
	(void)state;
	char text[256];
	struct seal_keyring r;
	assert_int_equal(seal_keyring_generate(text, sizeof(text)), 0);
	assert_int_equal(seal_keyring_parse(&r, text, strlen(text), NULL), 0);
	assert_int_equal(r.count, 1);
	assert_int_equal(seal_keyring_generate(text, 10), MESH_ERANGE);
}

static void
test_seal_buffer_limits(void **state)
{
	(void)state;
	struct seal_keyring r;
	ring_of(&r, KEY_A, NULL);
	uint8_t out[SEAL_OVERHEAD + 4], plain[8];
	size_t n;
	assert_int_equal(
	    seal_seal(&r, (const uint8_t *)"12345", 5, out, sizeof(out), &n),
	    MESH_ETOOBIG);
	assert_int_equal(
	    seal_seal(&r, (const uint8_t *)"1234", 4, out, sizeof(out), &n), 0);
	assert_int_equal(seal_open(&r, out, n, plain, 3, &n), MESH_ETOOBIG);
	struct seal_keyring empty = {0};
	assert_int_equal(
	    seal_seal(&empty, (const uint8_t *)"1", 1, out, sizeof(out), &n),
	    MESH_ESTATE);
}

/* ---- keyring files ------------------------------------------------------ */

struct seal_tmp {
	char dir[64];
	char path[128];
};

/* Writes @text to a fresh file of mode @mode in a new temporary dir. */
static void
tmp_keyring(struct seal_tmp *t, const char *text, mode_t mode)
{
	strcpy(t->dir, "/tmp/test_seal.XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->path, sizeof(t->path), "%s/keyring", t->dir);
	int fd = open(t->path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void
tmp_done(struct seal_tmp *t)
{
	unlink(t->path);
	rmdir(t->dir);
}

/* A keyring holding only KEY_C, to see that a failed read leaves it. */
static void
sentinel(struct seal_keyring *r)
{
	ring_of(r, KEY_C, NULL);
}

static void
assert_sentinel(const struct seal_keyring *r)
{
	struct seal_keyring c;
	sentinel(&c);
	assert_int_equal(r->count, 1);
	assert_memory_equal(r->keys[0], c.keys[0], SEAL_KEY_BYTES);
}

static void
test_seal_keyring_read_refuses_loose_mode(void **state)
{
	(void)state;
	char text[256];
	snprintf(text, sizeof(text), "%s\n%s\n", KEY_A, KEY_B);
	static const mode_t loose[] = {0644, 0640, 0604, 0660, 0606, 0610};
	for (size_t i = 0; i < sizeof(loose) / sizeof(loose[0]); i++) {
		struct seal_tmp t;
		struct seal_keyring r;
		struct seal_file f;
		tmp_keyring(&t, text, loose[i]);
		sentinel(&r);
		assert_int_equal(
		    seal_keyring_read(&r, t.path, geteuid(), 0, &f),
		    MESH_ESTATE);
		assert_true(f.loose);
		assert_false(f.foreign);
		assert_int_equal(f.mode, loose[i]);
		assert_sentinel(&r);
		/* The escape hatch reads it and still says what it found. */
		assert_int_equal(seal_keyring_read(&r, t.path, geteuid(),
						   SEAL_FILE_INSECURE_OK, &f),
				 0);
		assert_true(f.loose);
		assert_int_equal(r.count, 2);
		tmp_done(&t);
	}
	struct seal_tmp t;
	struct seal_keyring r;
	struct seal_file f;
	tmp_keyring(&t, text, 0600);
	assert_int_equal(seal_keyring_read(&r, t.path, geteuid(), 0, &f), 0);
	assert_false(f.loose);
	assert_int_equal(f.mode, 0600);
	assert_int_equal(r.count, 2);
	assert_null(r.opened);
	chmod(t.path, 0400);
	assert_int_equal(seal_keyring_read(&r, t.path, geteuid(), 0, &f), 0);
	tmp_done(&t);
}

static void
test_seal_keyring_read_refuses_foreign_owner(void **state)
{
	(void)state;
	struct seal_tmp t;
	struct seal_keyring r;
	struct seal_file f;
	char text[128];
	snprintf(text, sizeof(text), "%s\n", KEY_A);
	tmp_keyring(&t, text, 0600);
	/* Owned by another user: as root, give the file away; otherwise read
	 * it as if we were someone else. */
	uid_t reader = geteuid() + 1;
	if (geteuid() == 0) {
		assert_int_equal(chown(t.path, 4242, (gid_t)-1), 0);
		reader = 0;
	}
	sentinel(&r);
	assert_int_equal(seal_keyring_read(&r, t.path, reader, 0, &f),
			 MESH_ESTATE);
	assert_true(f.foreign);
	assert_false(f.loose);
	assert_sentinel(&r);
	assert_int_equal(
	    seal_keyring_read(&r, t.path, reader, SEAL_FILE_INSECURE_OK, &f),
	    0);
	tmp_done(&t);
}

static void
test_seal_keyring_read_bad_file_keeps_ring(void **state)
{
	(void)state;
	struct seal_tmp t;
	struct seal_keyring r;
	struct seal_file f;
	char text[256];
	snprintf(text, sizeof(text), "# new\n%s\nnot a key\n", KEY_A);
	tmp_keyring(&t, text, 0600);
	sentinel(&r);
	assert_int_equal(seal_keyring_read(&r, t.path, geteuid(), 0, &f),
			 MESH_EINVAL);
	assert_int_equal(f.err_line, 3);
	assert_sentinel(&r);
	/* Empty, missing, a directory, a FIFO (which must not block). */
	assert_int_equal(truncate(t.path, 0), 0);
	assert_int_equal(seal_keyring_read(&r, t.path, geteuid(), 0, &f),
			 MESH_ENOENT);
	assert_sentinel(&r);
	unlink(t.path);
	assert_int_equal(seal_keyring_read(&r, t.path, geteuid(), 0, &f),
			 MESH_EIO);
	assert_int_equal(f.sys_errno, ENOENT);
	assert_int_equal(seal_keyring_read(&r, t.dir, geteuid(), 0, &f),
			 MESH_EINVAL);
	assert_true(f.not_regular);
	assert_int_equal(mkfifo(t.path, 0600), 0);
	assert_int_equal(seal_keyring_read(&r, t.path, geteuid(), 0, &f),
			 MESH_EINVAL);
	assert_true(f.not_regular);
	assert_sentinel(&r);
	tmp_done(&t);
	/* Too big to be a keyring. */
	char *big = malloc(8192);
	assert_non_null(big);
	memset(big, '#', 8191);
	big[8191] = 0;
	tmp_keyring(&t, big, 0600);
	free(big);
	assert_int_equal(seal_keyring_read(&r, t.path, geteuid(), 0, &f),
			 MESH_ETOOBIG);
	assert_sentinel(&r);
	tmp_done(&t);
}

static void
test_seal_open_counts_the_opening_key(void **state)
{
	(void)state;
	uint64_t opened[SEAL_MAX_KEYS] = {0};
	struct seal_keyring r, ra, rb;
	ring_of(&r, KEY_A, KEY_B);
	r.opened = opened;
	ring_of(&ra, KEY_A, NULL);
	ring_of(&rb, KEY_B, NULL);
	uint8_t sealed[64], plain[64];
	size_t n, m;
	assert_int_equal(
	    seal_seal(&rb, (const uint8_t *)"x", 1, sealed, sizeof(sealed), &n),
	    0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(
		    seal_open(&r, sealed, n, plain, sizeof(plain), &m), 0);
	assert_int_equal(
	    seal_seal(&ra, (const uint8_t *)"x", 1, sealed, sizeof(sealed), &n),
	    0);
	assert_int_equal(seal_open(&r, sealed, n, plain, sizeof(plain), &m), 0);
	sealed[n - 1] ^= 1;
	assert_int_equal(seal_open(&r, sealed, n, plain, sizeof(plain), &m),
			 MESH_EAUTH);
	assert_int_equal(opened[0], 1);
	assert_int_equal(opened[1], 3);
}

static void
test_seal_keyring_replace_carries_counters(void **state)
{
	(void)state;
	uint64_t opened[SEAL_MAX_KEYS] = {0};
	struct seal_keyring live, next, b, c;
	ring_of(&live, KEY_A, NULL);
	live.opened = opened;
	ring_of(&b, KEY_B, NULL);
	ring_of(&c, KEY_C, NULL);
	opened[0] = 7;
	/* Step 1: add B as a secondary. A keeps its count. */
	ring_of(&next, KEY_A, KEY_B);
	assert_int_equal(seal_keyring_replace(&live, &next), 1);
	assert_int_equal(next.count, 0);
	assert_int_equal(live.count, 2);
	assert_ptr_equal(live.opened, opened);
	assert_int_equal(opened[0], 7);
	assert_int_equal(opened[1], 0);
	opened[1] = 5;
	/* Step 2: B becomes primary; the counters move with the keys. */
	ring_of(&next, KEY_B, KEY_A);
	assert_int_equal(seal_keyring_replace(&live, &next), 2);
	assert_memory_equal(live.keys[0], b.keys[0], SEAL_KEY_BYTES);
	assert_int_equal(opened[0], 5);
	assert_int_equal(opened[1], 7);
	/* What the live ring seals now, a ring of B alone opens. */
	uint8_t sealed[64], plain[64];
	size_t n, m;
	assert_int_equal(seal_seal(&live, (const uint8_t *)"x", 1, sealed,
				   sizeof(sealed), &n),
			 0);
	assert_int_equal(seal_open(&b, sealed, n, plain, sizeof(plain), &m), 0);
	/* Step 3: A goes; its counter goes with it. */
	ring_of(&next, KEY_B, NULL);
	assert_int_equal(seal_keyring_replace(&live, &next), 1);
	assert_int_equal(live.count, 1);
	assert_int_equal(opened[0], 5);
	assert_int_equal(opened[1], 0);
	/* Nothing in common: the caller is told. */
	ring_of(&next, KEY_C, NULL);
	assert_int_equal(seal_keyring_replace(&live, &next), 0);
	assert_memory_equal(live.keys[0], c.keys[0], SEAL_KEY_BYTES);
	assert_int_equal(opened[0], 0);
}

static void
test_seal_fingerprint_is_blake2b_prefix(void **state)
{
	(void)state;
	struct seal_keyring r;
	ring_of(&r, KEY_A, KEY_B);
	char fa[SEAL_FINGERPRINT_HEX + 1], fb[SEAL_FINGERPRINT_HEX + 1];
	seal_key_fingerprint(r.keys[0], fa);
	seal_key_fingerprint(r.keys[1], fb);
	/* `echo KEY | base64 -d | b2sum -l 256 | cut -c1-8` */
	assert_string_equal(fa, "f9bdcf0c");
	assert_string_equal(fb, "0e4cdc52");
	assert_int_equal(strlen(fa), SEAL_FINGERPRINT_HEX);
}

int
main(void)
{
	if (seal_init() != 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_seal_roundtrip),
	    cmocka_unit_test(test_seal_nonces_differ),
	    cmocka_unit_test(test_seal_wrong_key_rejected),
	    cmocka_unit_test(test_seal_tampered_and_truncated_rejected),
	    cmocka_unit_test(test_seal_rotation_accepts_secondary_key),
	    cmocka_unit_test(test_seal_keyring_parse_errors),
	    cmocka_unit_test(test_seal_generate_parses),
	    cmocka_unit_test(test_seal_buffer_limits),
	    cmocka_unit_test(test_seal_keyring_read_refuses_loose_mode),
	    cmocka_unit_test(test_seal_keyring_read_refuses_foreign_owner),
	    cmocka_unit_test(test_seal_keyring_read_bad_file_keeps_ring),
	    cmocka_unit_test(test_seal_open_counts_the_opening_key),
	    cmocka_unit_test(test_seal_keyring_replace_carries_counters),
	    cmocka_unit_test(test_seal_fingerprint_is_blake2b_prefix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
