/* test_seal.c - sealing and keyrings (agent/io/seal). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mesh_err.h"
#include "seal.h"

#include <stdio.h>
#include <string.h>

static const char *KEY_A = "4Cc9KCXH4Bv7EWKp5YeLjD+0m5ibP9Gpkd9wQPeW0Bw=";
static const char *KEY_B = "5zvYmZ3q0pcdKm0pJ3a5F0q6m1Sg3Jt3cN1QK8rYk2M=";

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
		strcat(many, KEY_A);
		strcat(many, "\n");
	}
	assert_int_equal(seal_keyring_parse(&r, many, strlen(many), &line),
			 MESH_ERANGE);
	assert_int_equal(line, SEAL_MAX_KEYS + 1);
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
