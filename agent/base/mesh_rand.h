/*
 * mesh_rand.h - a small seeded PRNG (xoshiro256**, seeded through splitmix64).
 *
 * Protocol code takes its randomness from an instance of this, seeded by the
 * driver: meshd from libsodium, the simulator from its master seed and the
 * node index, tests from a fixed number. The same seed gives the same stream
 * on every platform. Not for cryptography.
 */
#ifndef MESH_RAND_H
#define MESH_RAND_H

#include <stdint.h>

struct mesh_rand {
	uint64_t s[4];
};

/** Seeds @r from one 64-bit number; any value (0 too) gives a good state. */
void mesh_rand_seed(struct mesh_rand *r, uint64_t seed);

/** Next 64 random bits. */
uint64_t mesh_rand_next(struct mesh_rand *r);

/** Uniform in [0, @bound) without modulo bias; 0 when @bound is 0. */
uint32_t mesh_rand_below(struct mesh_rand *r, uint32_t bound);

/** Uniform double in [0, 1). */
double mesh_rand_unit(struct mesh_rand *r);

#endif
