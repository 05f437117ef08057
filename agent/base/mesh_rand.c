#include "mesh_rand.h"

static uint64_t
mesh__splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t
mesh__rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

void
mesh_rand_seed(struct mesh_rand *r, uint64_t seed)
{
	uint64_t x = seed;
	for (int i = 0; i < 4; i++)
		r->s[i] = mesh__splitmix64(&x);
}

uint64_t
mesh_rand_next(struct mesh_rand *r)
{
	uint64_t *s = r->s;
	uint64_t result = mesh__rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = mesh__rotl(s[3], 45);
	return result;
}

uint32_t
mesh_rand_below(struct mesh_rand *r, uint32_t bound)
{
	if (bound == 0)
		return 0;
	/* Lemire's multiply-and-reject: unbiased, one multiply in the common
	 * case. */
	uint64_t m = (uint64_t)(uint32_t)mesh_rand_next(r) * bound;
	uint32_t low = (uint32_t)m;
	if (low < bound) {
		uint32_t threshold = (uint32_t)(-bound) % bound;
		while (low < threshold) {
			m = (uint64_t)(uint32_t)mesh_rand_next(r) * bound;
			low = (uint32_t)m;
		}
	}
	return (uint32_t)(m >> 32);
}

double
mesh_rand_unit(struct mesh_rand *r)
{
	return (double)(mesh_rand_next(r) >> 11) * 0x1.0p-53;
}
