/*
 * capfile.c - capability text and files (capfile.h), signing and
 * verifying with libsodium.
 *
 * Base64url without padding for the "pmcap1."/"pmkey1." texts: they sit on
 * command lines, in environment variables and in URLs without quoting. The
 * "1" is the text format's version, so a later format can be told apart
 * without guessing.
 */
#include "capfile.h"

#include "mesh_err.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CAPFILE_B64URL sodium_base64_VARIANT_URLSAFE_NO_PADDING

static int
capfile_sodium(void)
{
	return sodium_init() < 0 ? MESH_EIO : 0;
}

/* Decodes exactly @len base64 characters into exactly @want bytes, or
 * into at most @max bytes when @want is 0. */
static int
capfile_b64_decode(const char *text, size_t len, int variant, uint8_t *out,
		   size_t max, size_t want, size_t *out_len)
{
	size_t n = 0;
	const char *end = NULL;
	if (len == 0 ||
	    sodium_base642bin(out, max, text, len, NULL, &n, &end, variant) !=
		0 ||
	    end != text + len || (want != 0 && n != want))
		return MESH_EDECODE;
	if (out_len != NULL)
		*out_len = n;
	return 0;
}

static int
capfile_prefixed_encode(const char *prefix, const uint8_t *bin, size_t len,
			char *out, size_t outcap)
{
	size_t plen = strlen(prefix);
	size_t need =
	    plen + sodium_base64_ENCODED_LEN(len, CAPFILE_B64URL); /* + NUL */
	if (outcap < need)
		return MESH_ETOOBIG;
	memcpy(out, prefix, plen);
	sodium_bin2base64(out + plen, outcap - plen, bin, len, CAPFILE_B64URL);
	return 0;
}

int
capfile_encode_cap_text(const uint8_t *cap, size_t len, char *out,
			size_t outcap)
{
	if (cap == NULL || len == 0 || len > TENANT_CAP_MAX)
		return MESH_EINVAL;
	return capfile_prefixed_encode(CAPFILE_CAP_PREFIX, cap, len, out,
				       outcap);
}

int
capfile_decode_cap_text(const char *text, size_t len, uint8_t *cap,
			size_t capcap, size_t *cap_len)
{
	size_t plen = strlen(CAPFILE_CAP_PREFIX);
	if (text == NULL || len <= plen ||
	    memcmp(text, CAPFILE_CAP_PREFIX, plen) != 0)
		return MESH_EDECODE;
	/* Bound the work before decoding: no text longer than the largest
	 * capability's. */
	if (len - plen > (TENANT_CAP_MAX * 4 + 2) / 3)
		return MESH_EDECODE;
	uint8_t buf[TENANT_CAP_MAX];
	size_t n;
	int rc = capfile_b64_decode(text + plen, len - plen, CAPFILE_B64URL,
				    buf, sizeof(buf), 0, &n);
	if (rc != 0)
		return rc;
	if (n > capcap)
		return MESH_ETOOBIG;
	memcpy(cap, buf, n);
	*cap_len = n;
	return 0;
}

int
capfile_encode_key_text(const uint8_t seed[CAPFILE_SEED_BYTES], char *out,
			size_t outcap)
{
	return capfile_prefixed_encode(CAPFILE_KEY_PREFIX, seed,
				       CAPFILE_SEED_BYTES, out, outcap);
}

int
capfile_decode_key_text(const char *text, size_t len,
			uint8_t seed[CAPFILE_SEED_BYTES])
{
	size_t plen = strlen(CAPFILE_KEY_PREFIX);
	if (text == NULL || len <= plen ||
	    memcmp(text, CAPFILE_KEY_PREFIX, plen) != 0 ||
	    len - plen > CAPFILE_KEY_TEXT_MAX)
		return MESH_EDECODE;
	return capfile_b64_decode(text + plen, len - plen, CAPFILE_B64URL, seed,
				  CAPFILE_SEED_BYTES, CAPFILE_SEED_BYTES, NULL);
}

int
capfile_encode_pubkey(const uint8_t pub[TENANT_PUBKEY_BYTES], char *out,
		      size_t outcap)
{
	if (outcap < sodium_base64_ENCODED_LEN(TENANT_PUBKEY_BYTES,
					       sodium_base64_VARIANT_ORIGINAL))
		return MESH_ETOOBIG;
	sodium_bin2base64(out, outcap, pub, TENANT_PUBKEY_BYTES,
			  sodium_base64_VARIANT_ORIGINAL);
	return 0;
}

int
capfile_decode_pubkey(const char *text, size_t len,
		      uint8_t pub[TENANT_PUBKEY_BYTES])
{
	if (text == NULL || len > CAPFILE_PUBKEY_TEXT_MAX)
		return MESH_EDECODE;
	return capfile_b64_decode(text, len, sodium_base64_VARIANT_ORIGINAL,
				  pub, TENANT_PUBKEY_BYTES, TENANT_PUBKEY_BYTES,
				  NULL);
}

int
capfile_keypair(uint8_t seed[CAPFILE_SEED_BYTES],
		uint8_t pub[TENANT_PUBKEY_BYTES])
{
	if (capfile_sodium() != 0)
		return MESH_EIO;
	uint8_t sk[crypto_sign_SECRETKEYBYTES];
	randombytes_buf(seed, CAPFILE_SEED_BYTES);
	int rc = crypto_sign_seed_keypair(pub, sk, seed);
	sodium_memzero(sk, sizeof(sk));
	return rc == 0 ? 0 : MESH_EIO;
}

int
capfile_sign(const uint8_t seed[CAPFILE_SEED_BYTES], const struct tenant_cap *c,
	     uint8_t *out, size_t outcap, size_t *len)
{
	if (capfile_sodium() != 0)
		return MESH_EIO;
	uint8_t sk[crypto_sign_SECRETKEYBYTES];
	struct tenant_cap body = *c;
	if (crypto_sign_seed_keypair(body.tenant_key, sk, seed) != 0) {
		sodium_memzero(sk, sizeof(sk));
		return MESH_EIO;
	}
	uint8_t buf[TENANT_CAP_MAX], sig[TENANT_SIG_BYTES];
	size_t blen;
	int rc = tenant_cap_body_encode(&body, buf, sizeof(buf), &blen);
	if (rc == 0 && crypto_sign_detached(sig, NULL, buf, blen, sk) != 0)
		rc = MESH_EIO;
	sodium_memzero(sk, sizeof(sk));
	if (rc == 0)
		rc = tenant_cap_encode(buf, blen, sig, out, outcap, len);
	return rc;
}

int
capfile_make(const uint8_t seed[CAPFILE_SEED_BYTES], const char *tenant,
	     uint32_t rights, uint64_t expires_unix_s, uint8_t *out,
	     size_t outcap, size_t *len)
{
	if (capfile_sodium() != 0)
		return MESH_EIO;
	struct tenant_cap c;
	memset(&c, 0, sizeof(c));
	if (tenant == NULL || strlen(tenant) > TENANT_ID_MAX)
		return MESH_EINVAL;
	memcpy(c.tenant, tenant, strlen(tenant) + 1);
	c.rights = rights;
	c.expires_unix_s = expires_unix_s;
	randombytes_buf(c.nonce, sizeof(c.nonce));
	return capfile_sign(seed, &c, out, outcap, len);
}

bool
capfile_verify(void *ctx, const uint8_t *pub, const uint8_t *msg, size_t len,
	       const uint8_t *sig)
{
	(void)ctx;
	return crypto_sign_verify_detached(sig, msg, len, pub) == 0;
}

/* A line without its surrounding blanks. */
static void
capfile_trim(const char **s, size_t *n)
{
	while (*n > 0 && ((*s)[0] == ' ' || (*s)[0] == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t' ||
			  (*s)[*n - 1] == '\r'))
		(*n)--;
}

static bool
capfile_starts(const char *s, size_t n, const char *prefix)
{
	size_t p = strlen(prefix);
	return n >= p && memcmp(s, prefix, p) == 0;
}

int
capfile_parse(const char *text, size_t len, struct capfile *out,
	      const char **why)
{
	const char *dummy;
	if (why == NULL)
		why = &dummy;
	struct capfile f;
	memset(&f, 0, sizeof(f));
	bool has_cap = false;
	const char *p = text, *end = text + len;
	int rc = 0;
	while (p < end && rc == 0) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line = p;
		size_t n = (size_t)((nl ? nl : end) - p);
		p = nl ? nl + 1 : end;
		capfile_trim(&line, &n);
		if (n == 0 || line[0] == '#')
			continue;
		bool is_cap = false, is_key = false;
		if (capfile_starts(line, n, "cap:")) {
			is_cap = true;
			line += 4;
			n -= 4;
			capfile_trim(&line, &n);
		} else if (capfile_starts(line, n, "key:")) {
			is_key = true;
			line += 4;
			n -= 4;
			capfile_trim(&line, &n);
		} else if (capfile_starts(line, n, CAPFILE_CAP_PREFIX)) {
			is_cap = true;
		} else if (capfile_starts(line, n, CAPFILE_KEY_PREFIX)) {
			is_key = true;
		}
		if (is_cap) {
			if (has_cap) {
				*why = "more than one cap: line";
				rc = MESH_EDECODE;
			} else if (capfile_decode_cap_text(line, n, f.cap,
							   sizeof(f.cap),
							   &f.cap_len) != 0) {
				*why = "the cap: line is not a capability "
				       "(pmcap1...)";
				rc = MESH_EDECODE;
			}
			has_cap = true;
		} else if (is_key) {
			if (f.has_key) {
				*why = "more than one key: line";
				rc = MESH_EDECODE;
			} else if (capfile_decode_key_text(line, n, f.seed) !=
				   0) {
				*why = "the key: line is not a key (pmkey1...)";
				rc = MESH_EDECODE;
			}
			f.has_key = true;
		} else {
			*why = "a line is neither cap:, key: nor a # comment";
			rc = MESH_EDECODE;
		}
	}
	if (rc == 0 && !has_cap) {
		*why = "no cap: line";
		rc = MESH_ENOENT;
	}
	if (rc == 0 &&
	    tenant_cap_decode(f.cap, f.cap_len, &f.info, NULL) != 0) {
		*why = "the capability is malformed";
		rc = MESH_EDECODE;
	}
	if (rc == 0 && capfile_sodium() != 0) {
		*why = "libsodium is unusable";
		rc = MESH_EIO;
	}
	/* Signed by the key its body names: needs nothing, expiry aside
	 * (time 0), which the agent judges. */
	if (rc == 0 &&
	    tenant_cap_check(f.cap, f.cap_len, f.info.tenant, f.info.tenant_key,
			     0, 0, capfile_verify, NULL, why) != 0)
		rc = MESH_EAUTH;
	if (rc == 0 && f.has_key) {
		uint8_t pub[crypto_sign_PUBLICKEYBYTES];
		uint8_t sk[crypto_sign_SECRETKEYBYTES];
		if (crypto_sign_seed_keypair(pub, sk, f.seed) != 0 ||
		    memcmp(pub, f.info.tenant_key, sizeof(pub)) != 0) {
			*why = "the key: line is not the capability's key";
			rc = MESH_EAUTH;
		}
		sodium_memzero(sk, sizeof(sk));
	}
	if (rc == 0) {
		*why = "";
		*out = f;
	}
	sodium_memzero(&f, sizeof(f));
	return rc;
}

int
capfile_load(const char *path, struct capfile *out, const char **why)
{
	const char *dummy;
	if (why == NULL)
		why = &dummy;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*why = "cannot open the capability file";
		return MESH_EIO;
	}
	char *buf = malloc(CAPFILE_FILE_MAX + 1);
	if (buf == NULL) {
		close(fd);
		*why = "out of memory";
		return MESH_ENOMEM;
	}
	size_t got = 0;
	int rc = 0;
	for (;;) {
		ssize_t r = read(fd, buf + got, CAPFILE_FILE_MAX + 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*why = "cannot read the capability file";
			rc = MESH_EIO;
			break;
		}
		if (r == 0)
			break;
		got += (size_t)r;
		if (got > CAPFILE_FILE_MAX) {
			*why = "the capability file is too large";
			rc = MESH_ETOOBIG;
			break;
		}
	}
	close(fd);
	if (rc == 0)
		rc = capfile_parse(buf, got, out, why);
	sodium_memzero(buf, CAPFILE_FILE_MAX + 1);
	free(buf);
	return rc;
}

int
capfile_format(const uint8_t *cap, size_t len,
	       const uint8_t seed[CAPFILE_SEED_BYTES], char *out, size_t outcap)
{
	struct tenant_cap c;
	if (tenant_cap_decode(cap, len, &c, NULL) != 0)
		return MESH_EDECODE;
	char rights[32], expires[32], ctext[CAPFILE_CAP_TEXT_MAX],
	    ktext[CAPFILE_KEY_TEXT_MAX];
	tenant_rights_format(c.rights, rights, sizeof(rights));
	if (c.expires_unix_s == 0) {
		snprintf(expires, sizeof(expires), "never");
	} else {
		time_t t = (time_t)c.expires_unix_s;
		struct tm tm;
		if ((uint64_t)t != c.expires_unix_s ||
		    gmtime_r(&t, &tm) == NULL ||
		    strftime(expires, sizeof(expires), "%Y-%m-%dT%H:%M:%SZ",
			     &tm) == 0)
			snprintf(expires, sizeof(expires), "@%llu",
				 (unsigned long long)c.expires_unix_s);
	}
	int rc = capfile_encode_cap_text(cap, len, ctext, sizeof(ctext));
	if (rc == 0 && seed != NULL)
		rc = capfile_encode_key_text(seed, ktext, sizeof(ktext));
	if (rc != 0)
		return rc;
	int n = snprintf(out, outcap,
			 "# packmesh capability for tenant %s: %s, expires %s\n"
			 "cap: %s\n"
			 "%s%s%s",
			 c.tenant, rights, expires, ctext, seed ? "key: " : "",
			 seed ? ktext : "", seed ? "\n" : "");
	sodium_memzero(ktext, sizeof(ktext));
	if (n < 0 || (size_t)n >= outcap) {
		if (outcap > 0)
			sodium_memzero(out, outcap);
		return MESH_ETOOBIG;
	}
	return 0;
}

int
capfile_ttl_parse(const char *text, uint64_t *seconds)
{
	if (text == NULL || text[0] < '0' || text[0] > '9')
		return MESH_EINVAL;
	uint64_t v = 0;
	const char *p = text;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return MESH_ERANGE;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	uint64_t unit;
	if (*p == 0 || (*p == 's' && p[1] == 0))
		unit = 1;
	else if (*p == 'm' && p[1] == 0)
		unit = 60;
	else if (*p == 'h' && p[1] == 0)
		unit = 3600;
	else if (*p == 'd' && p[1] == 0)
		unit = 86400;
	else
		return MESH_EINVAL;
	if (v == 0)
		return MESH_EINVAL;
	if (v > UINT64_MAX / unit)
		return MESH_ERANGE;
	*seconds = v * unit;
	return 0;
}
