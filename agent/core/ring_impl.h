/*
 * ring_impl.h - internals of the placement ring, for ring.c and the unit
 * tests that look inside. Not a public API.
 */
#ifndef RING_IMPL_H
#define RING_IMPL_H

#include "ring.h"

/* Failure-domain levels, widest first: the order owners are spread in. */
enum ring__level {
	RING__ZONE = 0,
	RING__REGION = 1, /* a (zone, region) pair */
	RING__CELL = 2,	  /* a (zone, region, cell) triple */
	RING__LEVELS = 3,
};

struct ring__node {
	struct ring_node_info info; /* strings point at the arrays below */
	char name[RING_NAME_MAX + 1];
	char zone[RING_TAG_MAX + 1];
	char region[RING_TAG_MAX + 1];
	char cell[RING_TAG_MAX + 1];
	uint32_t dom[RING__LEVELS]; /* domain number at each level */
};

struct ring {
	const struct mesh_allocator *alloc;
	struct ring_config cfg;
	uint32_t nnodes;
	uint32_t neligible;
	struct ring__node *nodes; /* sorted by name */
	uint32_t *dom;		  /* [nnodes][RING__LEVELS], compact copy */
	uint32_t npoints;
	uint64_t *tok;	   /* [npoints] ascending */
	uint32_t *own;	   /* [npoints] node of each token */
	unsigned ix_shift; /* 64 - index bits */
	uint32_t *ix;	   /* [2^bits + 1]: first point whose top bits >= b */
	uint32_t ndom[RING__LEVELS];	  /* domains over all members */
	uint32_t ndom_elig[RING__LEVELS]; /* domains with an eligible member */
	/* Domain order: nodes sorted by (zone, region, cell), then name, so
	 * that every domain at every level is one range of positions. */
	uint32_t *dorder;		/* [nnodes] node at each position */
	uint32_t *dpos;			/* [nnodes] position of each node */
	uint32_t *dstart[RING__LEVELS]; /* [ndom[L] + 1] first position */
	uint32_t *delig;		/* [nnodes + 1] eligible before pos */
	uint32_t *dblk;			/* the one allocation behind these */
	size_t bytes;
	uint64_t digest;
};

/* SipHash-2-4 (Aumasson, Bernstein 2012) with key k[0], k[1] as the two
 * little-endian halves of the 16-byte key. */
uint64_t ring__siphash(const uint64_t k[2], const void *msg, size_t len);

/* The probes of one key: where each lands and its successor point. */
struct ring__probes {
	uint32_t k;
	uint64_t p[RING_PROBES_MAX];
	uint32_t at[RING_PROBES_MAX]; /* first point >= p[j], wrapping */
};

/* Fills @ps for the key with placement hash @h. */
void ring__probes(const struct ring *r, uint64_t h, struct ring__probes *ps);

/* The point (index into tok/own) of the primary owner of key hash @h when
 * nothing is excluded: the successor closest to its probe, over all probes. */
uint32_t ring__winner(const struct ring *r, uint64_t h);

/* Token of vnode @v of the member called @name. */
uint64_t ring__token(const struct ring_config *cfg, const char *name,
		     uint32_t v);

#endif
