/*
 * mesh_hash.h - small non-cryptographic 64-bit hashing shared by every
 * layer (member tables, view digests, simulator traces). The same input
 * gives the same value on every platform. Not for anything an attacker
 * controls the cost of beyond a hash-table bucket.
 */
#ifndef MESH_HASH_H
#define MESH_HASH_H

#include <stddef.h>
#include <stdint.h>

/** Finalises 64 bits so every input bit affects every output bit. */
static inline uint64_t
mesh_mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/** Hashes @len bytes, chained from @seed (FNV-1a, then mixed). */
static inline uint64_t
mesh_hash_bytes(const void *data, size_t len, uint64_t seed)
{
	const uint8_t *p = data;
	uint64_t h = seed ^ 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return mesh_mix64(h ^ len);
}

#endif
