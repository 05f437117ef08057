/*
 * test_ident.h - Ed25519 identities for unit tests: a key pair derived
 * from a node name (the same name always gives the same key), and the
 * signer and verifier the membership core asks its driver for.
 */
#ifndef TEST_IDENT_H
#define TEST_IDENT_H

#include "swim.h"

#include <stddef.h>
#include <stdint.h>

struct test_ident {
	uint8_t pk[SWIM_KEY_BYTES];
	uint8_t sk[64];
};

/** Derives @id from @name (libsodium's seeded key pair). */
void test_ident_make(struct test_ident *id, const char *name);

/**
 * Gives @cfg the key of @id and a signer using it. @id is borrowed: it
 * must outlive every swim made from @cfg.
 */
void test_ident_apply(const struct test_ident *id, struct swim_config *cfg);

/** Signs @msg with @id into @sig. */
void test_ident_sign(const struct test_ident *id, const uint8_t *msg,
		     size_t len, uint8_t sig[SWIM_SIG_BYTES]);

/** The verifier meshd uses: Ed25519 from libsodium. */
bool test_ident_verify(void *ctx, const uint8_t *key, const uint8_t *msg,
		       size_t len, const uint8_t *sig);

#endif
