/*
 * hash_sig.h - stand-in signatures for the simulator and the fuzzers.
 *
 * The membership core asks its driver to sign and to check what nodes say
 * about themselves (struct swim_crypto). meshd and the unit tests use
 * Ed25519. The simulator checks N^2 records between its nodes and has no
 * attacker; the fuzzers are not attackers that could forge Ed25519 either,
 * and a real check costs ~50 us. Both use this instead: a node's "key" is
 * a hash of its name, and a "signature" is a keyed hash of the record,
 * spread over 64 bytes. A record made by one of their nodes verifies; one
 * made up by the fuzzer does not. Never for anything an attacker reaches.
 */
#ifndef HASH_SIG_H
#define HASH_SIG_H

#include "mesh_hash.h"
#include "swim.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/** The key of the node named @name. */
static inline void
hash_sig_key(const char *name, uint8_t key[SWIM_KEY_BYTES])
{
	for (size_t k = 0; k < SWIM_KEY_BYTES; k += 8) {
		uint64_t h = mesh_hash_bytes(name, strlen(name), k);
		memcpy(key + k, &h, 8);
	}
}

/** The signature of @msg under @key. */
static inline void
hash_sig(const uint8_t *key, const uint8_t *msg, size_t len,
	 uint8_t sig[SWIM_SIG_BYTES])
{
	uint64_t k0;
	memcpy(&k0, key, 8);
	uint64_t h = mesh_hash_bytes(msg, len, k0);
	for (size_t i = 0; i < SWIM_SIG_BYTES; i += 8) {
		uint64_t ki, v;
		memcpy(&ki, key + (i % SWIM_KEY_BYTES), 8);
		v = mesh_mix64(h ^ ki ^ i);
		memcpy(sig + i, &v, 8);
	}
}

/** A swim_verify_fn for hash_sig() signatures (@ctx unused). */
static inline bool
hash_sig_verify(void *ctx, const uint8_t *key, const uint8_t *msg, size_t len,
		const uint8_t *sig)
{
	(void)ctx;
	uint8_t want[SWIM_SIG_BYTES];
	hash_sig(key, msg, len, want);
	return memcmp(want, sig, SWIM_SIG_BYTES) == 0;
}

#endif
