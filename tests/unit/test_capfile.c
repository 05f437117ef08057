/* test_capfile.c - capability text and files (agent/io/capfile). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "capfile.h"
#include "mesh_err.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
seed_fill(uint8_t seed[CAPFILE_SEED_BYTES], uint8_t v)
{
	memset(seed, v, CAPFILE_SEED_BYTES);
}

static void
pub_of(const uint8_t seed[CAPFILE_SEED_BYTES], uint8_t pub[32])
{
	uint8_t sk[crypto_sign_SECRETKEYBYTES];
	assert_int_equal(crypto_sign_seed_keypair(pub, sk, seed), 0);
}

static size_t
make(const uint8_t seed[CAPFILE_SEED_BYTES], const char *tenant,
     uint32_t rights, uint64_t expires, uint8_t *cap)
{
	size_t len;
	assert_int_equal(capfile_make(seed, tenant, rights, expires, cap,
				      TENANT_CAP_MAX, &len),
			 0);
	return len;
}

static int
setup(void **state)
{
	(void)state;
	return sodium_init() < 0 ? -1 : 0;
}

static void
test_capfile_cap_text_round_trip(void **state)
{
	(void)state;
	uint8_t seed[32], cap[TENANT_CAP_MAX], back[TENANT_CAP_MAX];
	seed_fill(seed, 1);
	size_t len = make(seed, "acme", TENANT_READ, 0, cap), blen;
	char text[CAPFILE_CAP_TEXT_MAX];
	assert_int_equal(capfile_encode_cap_text(cap, len, text, sizeof(text)),
			 0);
	assert_memory_equal(text, "pmcap1.", 7);
	/* base64url without padding: no '+', '/', '='. */
	assert_null(strpbrk(text + 7, "+/= \n"));
	assert_int_equal(capfile_decode_cap_text(text, strlen(text), back,
						 sizeof(back), &blen),
			 0);
	assert_int_equal(blen, len);
	assert_memory_equal(back, cap, len);
	/* The largest capability fits CAPFILE_CAP_TEXT_MAX exactly. */
	uint8_t big[TENANT_CAP_MAX];
	memset(big, 0xfb, sizeof(big));
	assert_int_equal(
	    capfile_encode_cap_text(big, sizeof(big), text, sizeof(text)), 0);
	assert_int_equal(strlen(text) + 1, CAPFILE_CAP_TEXT_MAX);
	assert_int_equal(capfile_decode_cap_text(text, strlen(text), back,
						 sizeof(back), &blen),
			 0);
	assert_int_equal(blen, sizeof(big));
	assert_int_equal(capfile_encode_cap_text(big, sizeof(big), text,
						 CAPFILE_CAP_TEXT_MAX - 1),
			 MESH_ETOOBIG);
	assert_int_equal(capfile_encode_cap_text(big, 0, text, sizeof(text)),
			 MESH_EINVAL);
}

static void
test_capfile_cap_text_refuses_garbage(void **state)
{
	(void)state;
	uint8_t seed[32], cap[TENANT_CAP_MAX], back[TENANT_CAP_MAX];
	seed_fill(seed, 2);
	size_t len = make(seed, "acme", TENANT_READ, 0, cap), blen;
	char text[CAPFILE_CAP_TEXT_MAX + 8];
	assert_int_equal(capfile_encode_cap_text(cap, len, text, sizeof(text)),
			 0);
	size_t tlen = strlen(text);
	const char *bad[] = {"",
			     "pmcap1.",
			     "pmcap2.AAAA",
			     "PMCAP1.AAAA",
			     "pmcap1.A",
			     "pmcap1.AA==",
			     "pmcap1.A+/B",
			     "pmcap1.AA AA",
			     "pmcap1.AAAA\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (capfile_decode_cap_text(bad[i], strlen(bad[i]), back,
					    sizeof(back),
					    &blen) != MESH_EDECODE)
			fail_msg("'%s' accepted", bad[i]);
	/* A capability's text with a character more or less. */
	char t2[sizeof(text) + 1];
	memcpy(t2, text, tlen);
	t2[tlen] = 'A';
	assert_int_not_equal(
	    capfile_decode_cap_text(t2, tlen + 1, back, sizeof(back), &blen),
	    0);
	/* Longer than any capability's text: refused before decoding. */
	char *huge = malloc(4096);
	memcpy(huge, "pmcap1.", 7);
	memset(huge + 7, 'A', 4096 - 7);
	assert_int_equal(
	    capfile_decode_cap_text(huge, 4096, back, sizeof(back), &blen),
	    MESH_EDECODE);
	free(huge);
	/* Too small an output buffer. */
	assert_int_equal(capfile_decode_cap_text(text, tlen, back, 10, &blen),
			 MESH_ETOOBIG);
	assert_int_equal(
	    capfile_decode_cap_text(NULL, 5, back, sizeof(back), &blen),
	    MESH_EDECODE);
}

static void
test_capfile_key_and_pubkey_text(void **state)
{
	(void)state;
	uint8_t seed[32], back[32], pub[32], pback[32];
	seed_fill(seed, 3);
	char text[CAPFILE_KEY_TEXT_MAX], ptext[CAPFILE_PUBKEY_TEXT_MAX];
	assert_int_equal(capfile_encode_key_text(seed, text, sizeof(text)), 0);
	assert_int_equal(strlen(text) + 1, CAPFILE_KEY_TEXT_MAX);
	assert_memory_equal(text, "pmkey1.", 7);
	assert_int_equal(capfile_decode_key_text(text, strlen(text), back), 0);
	assert_memory_equal(back, seed, 32);
	assert_int_equal(capfile_encode_key_text(seed, text, sizeof(text) - 1),
			 MESH_ETOOBIG);
	assert_int_equal(capfile_decode_key_text("pmkey1.AAAA", 11, back),
			 MESH_EDECODE);
	assert_int_equal(capfile_decode_key_text("pmcap1.AAAA", 11, back),
			 MESH_EDECODE);
	assert_int_equal(capfile_decode_key_text(text, strlen(text) - 1, back),
			 MESH_EDECODE);

	pub_of(seed, pub);
	assert_int_equal(capfile_encode_pubkey(pub, ptext, sizeof(ptext)), 0);
	assert_int_equal(strlen(ptext), 44);
	assert_int_equal(capfile_decode_pubkey(ptext, strlen(ptext), pback), 0);
	assert_memory_equal(pback, pub, 32);
	assert_int_equal(capfile_encode_pubkey(pub, ptext, 44), MESH_ETOOBIG);
	assert_int_equal(capfile_decode_pubkey("AAAA", 4, pback), MESH_EDECODE);
	assert_int_equal(capfile_decode_pubkey("", 0, pback), MESH_EDECODE);
	assert_int_equal(capfile_decode_pubkey(ptext, 43, pback), MESH_EDECODE);
}

static void
test_capfile_make_checks_with_verify(void **state)
{
	(void)state;
	uint8_t seed[32], other[32], pub[32], opub[32], cap[TENANT_CAP_MAX];
	uint8_t pub2[32];
	assert_int_equal(capfile_keypair(seed, pub), 0);
	assert_int_equal(capfile_keypair(other, opub), 0);
	assert_memory_not_equal(seed, other, 32);
	pub_of(seed, pub2);
	assert_memory_equal(pub, pub2, 32);
	size_t len = make(seed, "acme", TENANT_READ | TENANT_WRITE, 0, cap);
	const char *why;
	assert_int_equal(tenant_cap_check(cap, len, "acme", pub, TENANT_WRITE,
					  100, capfile_verify, NULL, &why),
			 0);
	assert_int_equal(tenant_cap_check(cap, len, "acme", opub, TENANT_READ,
					  100, capfile_verify, NULL, &why),
			 MESH_EAUTH);
	/* Two grants with the same fields differ (random nonce). */
	uint8_t cap2[TENANT_CAP_MAX];
	size_t len2 = make(seed, "acme", TENANT_READ | TENANT_WRITE, 0, cap2);
	assert_int_equal(len, len2);
	assert_memory_not_equal(cap, cap2, len);
	/* capfile_sign names the seed's key whatever c->tenant_key says. */
	struct tenant_cap c;
	memset(&c, 0, sizeof(c));
	strcpy(c.tenant, "acme");
	c.rights = TENANT_READ;
	memset(c.tenant_key, 0xee, sizeof(c.tenant_key));
	assert_int_equal(capfile_sign(seed, &c, cap, sizeof(cap), &len), 0);
	assert_int_equal(tenant_cap_decode(cap, len, &c, NULL), 0);
	assert_memory_equal(c.tenant_key, pub, 32);
	/* Bad fields are refused. */
	assert_int_equal(
	    capfile_make(seed, "", TENANT_READ, 0, cap, sizeof(cap), &len),
	    MESH_EINVAL);
	assert_int_equal(
	    capfile_make(seed, "acme", 0, 0, cap, sizeof(cap), &len),
	    MESH_EINVAL);
	char id[TENANT_ID_MAX + 2];
	memset(id, 'x', sizeof(id) - 1);
	id[sizeof(id) - 1] = 0;
	assert_int_equal(
	    capfile_make(seed, id, TENANT_READ, 0, cap, sizeof(cap), &len),
	    MESH_EINVAL);
}

static void
test_capfile_format_parse_round_trip(void **state)
{
	(void)state;
	uint8_t seed[32], pub[32], cap[TENANT_CAP_MAX];
	seed_fill(seed, 4);
	pub_of(seed, pub);
	size_t len = make(seed, "acme",
			  TENANT_READ | TENANT_WRITE | TENANT_ADMIN, 0, cap);
	char text[CAPFILE_TEXT_MAX];
	assert_int_equal(capfile_format(cap, len, seed, text, sizeof(text)), 0);
	assert_memory_equal(text,
			    "# packmesh capability for tenant acme: "
			    "read,write,admin, expires never\ncap: pmcap1.",
			    strlen("# packmesh capability for tenant acme: "
				   "read,write,admin, expires never\ncap: "
				   "pmcap1."));
	assert_non_null(strstr(text, "\nkey: pmkey1."));
	struct capfile f;
	const char *why = NULL;
	assert_int_equal(capfile_parse(text, strlen(text), &f, &why), 0);
	assert_string_equal(why, "");
	assert_int_equal(f.cap_len, len);
	assert_memory_equal(f.cap, cap, len);
	assert_true(f.has_key);
	assert_memory_equal(f.seed, seed, 32);
	assert_string_equal(f.info.tenant, "acme");
	assert_int_equal(f.info.rights,
			 TENANT_READ | TENANT_WRITE | TENANT_ADMIN);
	assert_memory_equal(f.info.tenant_key, pub, 32);

	/* Without the key; with an expiry shown in UTC. */
	len = make(seed, "acme", TENANT_READ, 86400, cap);
	assert_int_equal(capfile_format(cap, len, NULL, text, sizeof(text)), 0);
	assert_non_null(strstr(text, ": read, expires 1970-01-02T00:00:00Z\n"));
	assert_null(strstr(text, "key:"));
	assert_int_equal(capfile_parse(text, strlen(text), &f, &why), 0);
	assert_false(f.has_key);
	assert_int_equal(f.info.expires_unix_s, 86400);
	/* The longest tenant id fits CAPFILE_TEXT_MAX. */
	char id[TENANT_ID_MAX + 1];
	memset(id, 'x', TENANT_ID_MAX);
	id[TENANT_ID_MAX] = 0;
	len = make(seed, id, TENANT_READ | TENANT_WRITE | TENANT_ADMIN,
		   UINT64_MAX / 2, cap);
	assert_int_equal(capfile_format(cap, len, seed, text, sizeof(text)), 0);
	assert_int_equal(capfile_format(cap, len, seed, text, 100),
			 MESH_ETOOBIG);
	assert_int_equal(capfile_format(cap, 3, seed, text, sizeof(text)),
			 MESH_EDECODE);
}

static void
test_capfile_parse_lenient_layout(void **state)
{
	(void)state;
	uint8_t seed[32], cap[TENANT_CAP_MAX];
	seed_fill(seed, 5);
	size_t len = make(seed, "acme", TENANT_READ, 0, cap);
	char ctext[CAPFILE_CAP_TEXT_MAX], ktext[CAPFILE_KEY_TEXT_MAX];
	assert_int_equal(
	    capfile_encode_cap_text(cap, len, ctext, sizeof(ctext)), 0);
	assert_int_equal(capfile_encode_key_text(seed, ktext, sizeof(ktext)),
			 0);
	char text[2048];
	struct capfile f;
	const char *why;
	/* CRLF, blanks, comments, key first, no final newline. */
	snprintf(text, sizeof(text),
		 "# a comment\r\n\r\n  key:%s  \r\n\t# another\r\ncap:   %s",
		 ktext, ctext);
	assert_int_equal(capfile_parse(text, strlen(text), &f, &why), 0);
	assert_true(f.has_key);
	/* Just the capability text, as $MESH_CAP may hold it. */
	assert_int_equal(capfile_parse(ctext, strlen(ctext), &f, &why), 0);
	assert_false(f.has_key);
	assert_string_equal(f.info.tenant, "acme");
	snprintf(text, sizeof(text), "%s\n", ctext);
	assert_int_equal(capfile_parse(text, strlen(text), &f, &why), 0);
}

static void
test_capfile_parse_refuses_bad_files(void **state)
{
	(void)state;
	uint8_t seed[32], other[32], cap[TENANT_CAP_MAX], ocap[TENANT_CAP_MAX];
	seed_fill(seed, 6);
	seed_fill(other, 7);
	size_t len = make(seed, "acme", TENANT_READ, 0, cap);
	size_t olen = make(other, "acme", TENANT_READ, 0, ocap);
	char ctext[CAPFILE_CAP_TEXT_MAX], octext[CAPFILE_CAP_TEXT_MAX];
	char ktext[CAPFILE_KEY_TEXT_MAX], oktext[CAPFILE_KEY_TEXT_MAX];
	assert_int_equal(
	    capfile_encode_cap_text(cap, len, ctext, sizeof(ctext)), 0);
	assert_int_equal(
	    capfile_encode_cap_text(ocap, olen, octext, sizeof(octext)), 0);
	assert_int_equal(capfile_encode_key_text(seed, ktext, sizeof(ktext)),
			 0);
	assert_int_equal(capfile_encode_key_text(other, oktext, sizeof(oktext)),
			 0);
	char text[4096];
	struct capfile f;
	memset(&f, 0x77, sizeof(f));
	struct capfile untouched = f;
	const char *why = NULL;

	assert_int_equal(capfile_parse("", 0, &f, &why), MESH_ENOENT);
	assert_string_equal(why, "no cap: line");
	snprintf(text, sizeof(text), "# only\nkey: %s\n", ktext);
	assert_int_equal(capfile_parse(text, strlen(text), &f, &why),
			 MESH_ENOENT);
	snprintf(text, sizeof(text), "cap: %s\ncap: %s\n", ctext, ctext);
	assert_int_equal(capfile_parse(text, strlen(text), &f, &why),
			 MESH_EDECODE);
	snprintf(text, sizeof(text), "cap: %s\nkey: %s\nkey: %s\n", ctext,
		 ktext, ktext);
	assert_int_equal(capfile_parse(text, strlen(text), &f, &why),
			 MESH_EDECODE);
	snprintf(text, sizeof(text), "cap: %s\nhello\n", ctext);
	assert_int_equal(capfile_parse(text, strlen(text), &f, &why),
			 MESH_EDECODE);
	snprintf(text, sizeof(text), "cap: pmcap1.AAAA\n");
	assert_int_equal(capfile_parse(text, strlen(text), &f, &why),
			 MESH_EDECODE);
	/* Another tenant's key pasted next to the capability. */
	snprintf(text, sizeof(text), "cap: %s\nkey: %s\n", ctext, oktext);
	assert_int_equal(capfile_parse(text, strlen(text), &f, &why),
			 MESH_EAUTH);
	assert_string_equal(why, "the key: line is not the capability's key");
	/* A capability whose body names one key, signed by another. */
	struct tenant_cap c;
	assert_int_equal(tenant_cap_decode(cap, len, &c, NULL), 0);
	uint8_t body[TENANT_CAP_MAX], sig[TENANT_SIG_BYTES], forged[512];
	size_t blen, flen;
	assert_int_equal(tenant_cap_body_encode(&c, body, sizeof(body), &blen),
			 0);
	uint8_t pk[32], sk[64];
	crypto_sign_seed_keypair(pk, sk, other);
	crypto_sign_detached(sig, NULL, body, blen, sk);
	assert_int_equal(
	    tenant_cap_encode(body, blen, sig, forged, sizeof(forged), &flen),
	    0);
	char ftext[CAPFILE_CAP_TEXT_MAX];
	assert_int_equal(
	    capfile_encode_cap_text(forged, flen, ftext, sizeof(ftext)), 0);
	snprintf(text, sizeof(text), "cap: %s\n", ftext);
	assert_int_equal(capfile_parse(text, strlen(text), &f, &why),
			 MESH_EAUTH);
	/* Failures leave @out alone. */
	assert_memory_equal(&f, &untouched, sizeof(f));
	/* Every truncation of a good file: refused or parsed, never a
	 * crash, and a cut key line never passes for a key. */
	int n = snprintf(text, sizeof(text), "# c\ncap: %s\nkey: %s\n", ctext,
			 ktext);
	for (int i = 0; i < n; i++) {
		char *t = test_malloc((size_t)i + 1);
		memcpy(t, text, (size_t)i);
		int rc = capfile_parse(t, (size_t)i, &f, &why);
		if (rc == 0)
			assert_true(!f.has_key || i >= n - 1);
		test_free(t);
	}
}

static void
test_capfile_load_files(void **state)
{
	(void)state;
	uint8_t seed[32], cap[TENANT_CAP_MAX];
	seed_fill(seed, 8);
	size_t len = make(seed, "acme", TENANT_READ, 0, cap);
	char text[CAPFILE_TEXT_MAX];
	assert_int_equal(capfile_format(cap, len, seed, text, sizeof(text)), 0);
	char path[] = "/tmp/test_capfile_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	struct capfile f;
	const char *why;
	assert_int_equal(capfile_load(path, &f, &why), 0);
	assert_true(f.has_key);
	assert_memory_equal(f.cap, cap, len);
	/* Too large: refused without parsing. */
	char junk[1024];
	memset(junk, '#', sizeof(junk));
	for (int i = 0; i < CAPFILE_FILE_MAX / (int)sizeof(junk) + 1; i++)
		assert_int_equal(write(fd, junk, sizeof(junk)),
				 (ssize_t)sizeof(junk));
	close(fd);
	assert_int_equal(capfile_load(path, &f, &why), MESH_ETOOBIG);
	unlink(path);
	assert_int_equal(capfile_load(path, &f, &why), MESH_EIO);
	assert_int_equal(capfile_load("/", &f, &why), MESH_EIO);
}

static void
test_capfile_ttl_parse(void **state)
{
	(void)state;
	uint64_t s = 0;
	assert_int_equal(capfile_ttl_parse("30s", &s), 0);
	assert_int_equal(s, 30);
	assert_int_equal(capfile_ttl_parse("15m", &s), 0);
	assert_int_equal(s, 900);
	assert_int_equal(capfile_ttl_parse("24h", &s), 0);
	assert_int_equal(s, 86400);
	assert_int_equal(capfile_ttl_parse("7d", &s), 0);
	assert_int_equal(s, 604800);
	assert_int_equal(capfile_ttl_parse("45", &s), 0);
	assert_int_equal(s, 45);
	s = 1;
	const char *bad[] = {"",    "s",   "0s",  "0",	  "-5s", "5x",
			     "5ss", "5 s", " 5s", "1.5h", "5S"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (capfile_ttl_parse(bad[i], &s) != MESH_EINVAL)
			fail_msg("'%s' accepted", bad[i]);
	assert_int_equal(s, 1);
	assert_int_equal(capfile_ttl_parse("99999999999999999999d", &s),
			 MESH_ERANGE);
	assert_int_equal(capfile_ttl_parse("999999999999999999d", &s),
			 MESH_ERANGE);
	assert_int_equal(capfile_ttl_parse(NULL, &s), MESH_EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_capfile_cap_text_round_trip),
	    cmocka_unit_test(test_capfile_cap_text_refuses_garbage),
	    cmocka_unit_test(test_capfile_key_and_pubkey_text),
	    cmocka_unit_test(test_capfile_make_checks_with_verify),
	    cmocka_unit_test(test_capfile_format_parse_round_trip),
	    cmocka_unit_test(test_capfile_parse_lenient_layout),
	    cmocka_unit_test(test_capfile_parse_refuses_bad_files),
	    cmocka_unit_test(test_capfile_load_files),
	    cmocka_unit_test(test_capfile_ttl_parse),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
