/*
 * test_ident.c - deterministic Ed25519 identities for unit tests.
 */
#include "test_ident.h"

#include "mesh_hash.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

void
test_ident_make(struct test_ident *id, const char *name)
{
	uint8_t seed[crypto_sign_SEEDBYTES];
	for (size_t i = 0; i < sizeof(seed); i += 8) {
		uint64_t h = mesh_hash_bytes(name, strlen(name), i);
		memcpy(seed + i, &h, 8);
	}
	if (sodium_init() < 0)
		abort();
	crypto_sign_seed_keypair(id->pk, id->sk, seed);
}

void
test_ident_sign(const struct test_ident *id, const uint8_t *msg, size_t len,
		uint8_t sig[SWIM_SIG_BYTES])
{
	crypto_sign_detached(sig, NULL, msg, len, id->sk);
}

static void
test_ident__sign(void *ctx, const uint8_t *msg, size_t len,
		 uint8_t sig[SWIM_SIG_BYTES])
{
	test_ident_sign(ctx, msg, len, sig);
}

bool
test_ident_verify(void *ctx, const uint8_t *key, const uint8_t *msg, size_t len,
		  const uint8_t *sig)
{
	(void)ctx;
	return crypto_sign_verify_detached(sig, msg, len, key) == 0;
}

void
test_ident_apply(const struct test_ident *id, struct swim_config *cfg)
{
	memcpy(cfg->key, id->pk, SWIM_KEY_BYTES);
	cfg->crypto.sign = test_ident__sign;
	cfg->crypto.verify = test_ident_verify;
	cfg->crypto.ctx = (void *)id;
}
