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

/* ---- format version 2 and version 1 on receipt -------------------------- */

/* The counter of a version-2 buffer: bytes 9..12, big-endian. */
static uint32_t
wire_counter(const uint8_t *sealed)
{
	return (uint32_t)sealed[9] << 24 | (uint32_t)sealed[10] << 16 |
	       (uint32_t)sealed[11] << 8 | (uint32_t)sealed[12];
}

/* A version-1 buffer built from the format, as the previous release sealed:
 * version byte 1 (the associated data), a random 24-byte nonce, then the
 * ciphertext and tag. Returns its length (@len + 41). */
static size_t
seal_v1_by_hand(const uint8_t *key, const uint8_t *plain, size_t len,
		uint8_t *out)
{
	out[0] = 1;
	randombytes_buf(out + 1, 24);
	unsigned long long clen = 0;
	assert_int_equal(
	    crypto_aead_xchacha20poly1305_ietf_encrypt(
		out + 25, &clen, plain, len, out, 1, NULL, out + 1, key),
	    0);
	return 25 + (size_t)clen;
}

static void
test_seal_v2_layout_and_roundtrip(void **state)
{
	(void)state;
	struct seal_keyring r;
	ring_of(&r, KEY_A, NULL);
	const uint8_t msg[] = "ping: a dozen";
	uint8_t sealed[128], plain[128];
	size_t n, m;
	assert_int_equal(
	    seal_seal(&r, msg, sizeof(msg), sealed, sizeof(sealed), &n), 0);
	assert_int_equal(n, sizeof(msg) + 29);
	assert_int_equal(sealed[0], 2);
	assert_int_equal(seal_open(&r, sealed, n, plain, sizeof(plain), &m), 0);
	assert_int_equal(m, sizeof(msg));
	assert_memory_equal(plain, msg, m);
	/* Opened with libsodium straight from the format: the 24-byte nonce
	 * is the 12 wire bytes and 12 zeros, the AD is the version byte. */
	uint8_t nonce[24] = {0};
	memcpy(nonce, sealed + 1, 12);
	unsigned long long mlen = 0;
	memset(plain, 0, sizeof(plain));
	assert_int_equal(crypto_aead_xchacha20poly1305_ietf_decrypt(
			     plain, &mlen, NULL, sealed + 13, n - 13, sealed, 1,
			     nonce, r.keys[0]),
			 0);
	assert_int_equal(mlen, sizeof(msg));
	assert_memory_equal(plain, msg, sizeof(msg));
	/* The smallest buffer, an empty plaintext (a tenant hello), opens. */
	assert_int_equal(
	    seal_seal(&r, (const uint8_t *)"", 0, sealed, sizeof(sealed), &n),
	    0);
	assert_int_equal(n, 29);
	m = 99;
	assert_int_equal(seal_open(&r, sealed, n, plain, sizeof(plain), &m), 0);
	assert_int_equal(m, 0);
}

static void
test_seal_v2_counter_and_salt(void **state)
{
	(void)state;
	struct seal_keyring r, fresh;
	ring_of(&r, KEY_A, NULL);
	ring_of(&fresh, KEY_A, NULL); /* the same key, parsed again */
	assert_false(r.nonce.ready);
	uint8_t a[64], b[64], c[64], d[64];
	size_t na, nb, nc, nd;
	assert_int_equal(seal_seal(&r, (const uint8_t *)"x", 1, a, 64, &na), 0);
	assert_int_equal(seal_seal(&r, (const uint8_t *)"x", 1, b, 64, &nb), 0);
	assert_int_equal(na, nb);
	assert_memory_not_equal(a, b, na);
	/* One salt per keyring state, the counter from 0 up by one. */
	assert_memory_equal(a + 1, b + 1, 8);
	assert_int_equal(wire_counter(a), 0);
	assert_int_equal(wire_counter(b), 1);
	assert_true(r.nonce.ready);
	assert_memory_equal(r.nonce.salt, a + 1, 8);
	assert_int_equal(r.nonce.next, 2);
	/* A failed seal takes no counter. */
	assert_int_equal(seal_seal(&r, (const uint8_t *)"xy", 2, c, 30, &nc),
			 MESH_ETOOBIG);
	assert_int_equal(seal_seal(&r, (const uint8_t *)"x", 1, c, 64, &nc), 0);
	assert_int_equal(wire_counter(c), 2);
	/* Another keyring, even of the same key, draws its own salt. */
	assert_int_equal(seal_seal(&fresh, (const uint8_t *)"x", 1, d, 64, &nd),
			 0);
	assert_memory_not_equal(a + 1, d + 1, 8);
	assert_int_equal(wire_counter(d), 0);
	/* A reload (replace) starts a new salt even with the same key. */
	struct seal_keyring next;
	ring_of(&next, KEY_A, NULL);
	assert_int_equal(seal_keyring_replace(&r, &next), 1);
	assert_false(r.nonce.ready);
	assert_int_equal(seal_seal(&r, (const uint8_t *)"x", 1, d, 64, &nd), 0);
	assert_memory_not_equal(a + 1, d + 1, 8);
	assert_int_equal(wire_counter(d), 0);
}

static void
test_seal_v2_counter_wrap_draws_new_salt(void **state)
{
	(void)state;
	struct seal_keyring r;
	ring_of(&r, KEY_A, NULL);
	uint8_t s[4][64], plain[64];
	size_t n[4], m;
	assert_int_equal(
	    seal_seal(&r, (const uint8_t *)"x", 1, s[0], 64, &n[0]), 0);
	r.nonce.next = 0xFFFFFFFF;
	for (int i = 1; i < 4; i++)
		assert_int_equal(
		    seal_seal(&r, (const uint8_t *)"x", 1, s[i], 64, &n[i]), 0);
	/* The last counter of the first salt is used, then a new salt
	 * starts over at 0 instead of wrapping under the old one. */
	assert_memory_equal(s[1] + 1, s[0] + 1, 8);
	assert_int_equal(wire_counter(s[1]), 0xFFFFFFFFu);
	assert_memory_not_equal(s[2] + 1, s[1] + 1, 8);
	assert_int_equal(wire_counter(s[2]), 0);
	assert_memory_equal(s[3] + 1, s[2] + 1, 8);
	assert_int_equal(wire_counter(s[3]), 1);
	/* No (salt, counter) twice, and each opens. */
	for (int i = 0; i < 4; i++) {
		for (int j = i + 1; j < 4; j++)
			assert_memory_not_equal(s[i] + 1, s[j] + 1, 12);
		assert_int_equal(
		    seal_open(&r, s[i], n[i], plain, sizeof(plain), &m), 0);
		assert_int_equal(m, 1);
		assert_int_equal(plain[0], 'x');
	}
}

static void
test_seal_v1_opens_and_bad_input_is_refused(void **state)
{
	(void)state;
	struct seal_keyring r, other;
	uint64_t opened[SEAL_MAX_KEYS] = {0};
	ring_of(&r, KEY_B, KEY_A); /* KEY_A now second: the loop runs */
	r.opened = opened;
	ring_of(&other, KEY_A, NULL);
	const uint8_t msg[] = "from an older node";
	uint8_t v1[128], v2[128], plain[128];
	size_t n1 = seal_v1_by_hand(other.keys[0], msg, sizeof(msg), v1);
	assert_int_equal(n1, sizeof(msg) + 41);
	size_t m = 0;
	assert_int_equal(seal_open(&r, v1, n1, plain, sizeof(plain), &m), 0);
	assert_int_equal(m, sizeof(msg));
	assert_memory_equal(plain, msg, m);
	assert_int_equal(opened[1], 1);
	assert_int_equal(opened[0], 0);
	/* Version 1's capacity check uses its own overhead. */
	assert_int_equal(seal_open(&r, v1, n1, plain, sizeof(msg) - 1, &m),
			 MESH_ETOOBIG);
	assert_int_equal(seal_open(&r, v1, n1, plain, sizeof(msg), &m), 0);
	/* An empty version-1 plaintext: 41 bytes open, 40 and 29 (long
	 * enough for version 2) are truncated. */
	size_t e1 = seal_v1_by_hand(other.keys[0], msg, 0, v1);
	assert_int_equal(e1, 41);
	assert_int_equal(seal_open(&r, v1, 41, plain, sizeof(plain), &m), 0);
	assert_int_equal(m, 0);
	assert_int_equal(seal_open(&r, v1, 40, plain, sizeof(plain), &m),
			 MESH_ETRUNC);
	assert_int_equal(seal_open(&r, v1, 29, plain, sizeof(plain), &m),
			 MESH_ETRUNC);
	/* A tampered version-1 buffer. */
	n1 = seal_v1_by_hand(other.keys[0], msg, sizeof(msg), v1);
	v1[24] ^= 0x01; /* last nonce byte */
	assert_int_equal(seal_open(&r, v1, n1, plain, sizeof(plain), &m),
			 MESH_EAUTH);

	/* Version 2: below 29 is truncated. */
	size_t n2;
	assert_int_equal(
	    seal_seal(&other, msg, sizeof(msg), v2, sizeof(v2), &n2), 0);
	assert_int_equal(seal_open(&r, v2, 28, plain, sizeof(plain), &m),
			 MESH_ETRUNC);
	/* Version 3 is unknown. */
	v2[0] = 3;
	assert_int_equal(seal_open(&r, v2, n2, plain, sizeof(plain), &m),
			 MESH_EVERSION);
	/* Read as version 1, a version-2 buffer does not open: the version
	 * byte is authenticated and picks the nonce length. */
	v2[0] = 1;
	assert_int_equal(seal_open(&r, v2, n2, plain, sizeof(plain), &m),
			 MESH_EAUTH);
	v2[0] = 2;
	assert_int_equal(seal_open(&r, v2, n2, plain, sizeof(plain), &m), 0);
	/* A flipped bit in the salt, in the counter, in the tag. */
	const size_t flips[] = {1, 8, 9, 12, n2 - 16, n2 - 1};
	for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
		v2[flips[i]] ^= 0x80;
		assert_int_equal(
		    seal_open(&r, v2, n2, plain, sizeof(plain), &m),
		    MESH_EAUTH);
		v2[flips[i]] ^= 0x80;
	}
	assert_int_equal(seal_open(&r, v2, n2, plain, sizeof(plain), &m), 0);
	assert_int_equal(opened[1], 5);
	assert_int_equal(opened[0], 0);
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
	    cmocka_unit_test(test_seal_v2_layout_and_roundtrip),
	    cmocka_unit_test(test_seal_v2_counter_and_salt),
	    cmocka_unit_test(test_seal_v2_counter_wrap_draws_new_salt),
	    cmocka_unit_test(test_seal_v1_opens_and_bad_input_is_refused),
	    cmocka_unit_test(test_seal_keyring_read_refuses_loose_mode),
	    cmocka_unit_test(test_seal_keyring_read_refuses_foreign_owner),
	    cmocka_unit_test(test_seal_keyring_read_bad_file_keeps_ring),
	    cmocka_unit_test(test_seal_open_counts_the_opening_key),
	    cmocka_unit_test(test_seal_keyring_replace_carries_counters),
	    cmocka_unit_test(test_seal_fingerprint_is_blake2b_prefix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
