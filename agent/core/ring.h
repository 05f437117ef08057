/*
 * ring.h - pack placement: a consistent-hashing ring with virtual nodes,
 * capacity weights, zone-aware replicas and optional bounded loads. Sans I/O.
 *
 * A struct ring is an immutable picture of one membership view. The driver
 * builds a new one whenever its view changes (ring_new() on an array of
 * struct ring_member), asks it who owns a pack (ring_lookup()), places a set
 * of packs with or without a load cap (ring_assign()) and diffs two rings
 * into moves (ring_moves()). Every node that sees the same members, in any
 * order, with the same struct ring_config builds the same ring and computes
 * the same owners. docs/placement.md explains the scheme and its numbers.
 *
 * Threading: a ring is never changed after ring_new(), so any number of
 * threads may read it at once.
 */
#ifndef RING_H
#define RING_H

#include "mesh_log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Input limits. Names and tags have the same limits as in membership, so a
 * member that membership accepts is accepted here. */
#define RING_NAME_MAX 64	/* 1..64 bytes of [A-Za-z0-9._-] */
#define RING_TAG_MAX 32		/* zone, region, cell: 0..32 printable bytes */
#define RING_MEMBERS_MAX 65536	/* members in one ring */
#define RING_REPLICAS_MAX 8	/* owners asked for at once */
#define RING_WEIGHT_DEFAULT 100 /* weight that gets cfg.vnodes points */
#define RING_WEIGHT_MAX 10000	/* 100 times the default */
#define RING_VNODES_MAX 1024	/* cfg.vnodes */
#define RING_PROBES_MAX 32	/* cfg.probes */
#define RING_POINTS_MAX (1u << 23) /* points on one ring, 8 Mi */
#define RING_ASSIGN_MAX (1u << 24) /* packs in one ring_assign() call */
#define RING_EPS_MIN 10		   /* bounded loads: smallest ε, 0.010 */
#define RING_EPS_MAX 10000	   /* bounded loads: largest ε, 10.000 */

/* "No node" in owner arrays and moves. */
#define RING_NONE UINT32_MAX

/* Room ring_moves() may need for @n packs placed on @r replicas. */
#define RING_MOVES_MAX(n, r) ((size_t)(n) * (size_t)(r))

struct ring;

/**
 * One member as the membership view knows it. Input only: the strings are
 * borrowed for the duration of ring_new() and copied.
 */
struct ring_member {
	const char *name; /* unique, 1..RING_NAME_MAX bytes of [A-Za-z0-9._-] */
	const char *zone; /* NULL or "": no zone given; same for the others */
	const char *region; /* inside zone */
	const char *cell;   /* inside region */
	uint32_t weight;    /* capacity weight; 0 means RING_WEIGHT_DEFAULT */
	bool alive;	    /* false: dead, left or suspect-and-excluded */
	bool draining;	    /* true: gets nothing new, its packs move away */
};

/**
 * What every node of a mesh must agree on; a ring built with a different
 * config places packs differently. ring_config_default() gives the values
 * measured in docs/placement.md.
 */
struct ring_config {
	uint32_t vnodes; /* points for a member of RING_WEIGHT_DEFAULT */
	uint32_t probes; /* hashes of each key (multi-probe), 1 = classic */
	uint64_t key[2]; /* SipHash-2-4 key for tokens and keys */
};

/** A member as the ring holds it. Strings live as long as the ring. */
struct ring_node_info {
	const char *name;
	const char *zone;
	const char *region;
	const char *cell;
	uint32_t weight; /* as given, 0 replaced by RING_WEIGHT_DEFAULT */
	uint32_t vnodes; /* points on the ring; 0 when not eligible */
	bool alive;
	bool draining;
	bool eligible; /* alive and not draining: holds points */
};

/** How to place a set of packs. */
struct ring_place {
	unsigned replicas;  /* owners per pack, 1..RING_REPLICAS_MAX */
	bool bounded;	    /* cap every node's load (Mirrokni et al.) */
	uint32_t eps_milli; /* when bounded: ε in thousandths, RING_EPS_MIN.. */
};

/** What ring_assign() did. */
struct ring_assign_stats {
	uint64_t placed;    /* owner slots filled */
	uint32_t owners;    /* owners per pack: min(replicas, eligible) */
	uint32_t max_load;  /* largest number of slots on one node */
	uint32_t max_cap;   /* bounded: largest per-node cap, else 0 */
	uint64_t displaced; /* bounded: packs whose first owner is not the
			       unbounded one */
	uint64_t over_cap;  /* bounded: slots placed over a cap because too
			       few nodes had room (tiny, skewed meshes only) */
};

/** One change of owner: @pack leaves @from and goes to @to. */
struct ring_move {
	uint64_t pack;
	uint32_t from; /* node index in the old ring, RING_NONE: a new copy */
	uint32_t to;   /* node index in the new ring, RING_NONE: copy dropped */
};

/** Sizes of a ring, for status output and the benchmark. */
struct ring_stats {
	uint32_t nodes;	   /* members given */
	uint32_t eligible; /* members holding points */
	uint32_t points;   /* virtual nodes on the ring */
	uint32_t zones;	   /* distinct zones among eligible members */
	uint32_t regions;  /* distinct (zone, region) pairs among them */
	uint32_t cells;	   /* distinct (zone, region, cell) among them */
	size_t bytes;	   /* heap held by the ring */
	uint64_t digest; /* equal digests: equal placement (see ring_digest) */
};

/**
 * Fills @cfg with the defaults (64 vnodes, 8 probes, the fixed packmesh
 * SipHash key). Never fails.
 */
void ring_config_default(struct ring_config *cfg);

/**
 * Checks @cfg. Returns 0, MESH_EINVAL (NULL) or MESH_ERANGE (vnodes or
 * probes out of range); *@why, when @why is not NULL, gets a static reason.
 */
int ring_config_check(const struct ring_config *cfg, const char **why);

/**
 * Builds the ring of @members[0..@count). Members that are not alive or are
 * draining are kept (they can be looked up by name) but hold no points.
 *
 * @env:     borrowed; its allocator is used for the ring and must outlive it.
 * @cfg:     borrowed for the call; NULL means ring_config_default().
 * @members: borrowed for the call, in any order.
 * @out:     on success the new ring, owned by the caller (ring_free()).
 *
 * Returns 0, or (and then *@out is NULL and nothing was allocated):
 * MESH_EINVAL  NULL argument, @count 0, bad name or tag, bad @cfg;
 * MESH_ERANGE  @count > RING_MEMBERS_MAX or weight > RING_WEIGHT_MAX;
 * MESH_EEXIST  two members with the same name;
 * MESH_ETOOBIG more than RING_POINTS_MAX points in all;
 * MESH_ENOMEM  out of memory.
 * A ring with no eligible member is valid; lookups then give MESH_ENOENT.
 */
int ring_new(const struct mesh_env *env, const struct ring_config *cfg,
	     const struct ring_member *members, size_t count,
	     struct ring **out);

/** Frees @r and everything it owns (NULL is fine). */
void ring_free(struct ring *r);

/** Number of members given to ring_new(); node indices are 0..count-1. */
uint32_t ring_node_count(const struct ring *r);

/**
 * Member @idx; nodes are numbered in byte order of their names, so the same
 * members give the same numbers. Returns a pointer valid until ring_free(),
 * or NULL when @idx is out of range.
 */
const struct ring_node_info *ring_node(const struct ring *r, uint32_t idx);

/** Index of the member called @name, or MESH_ENOENT / MESH_EINVAL (NULL). */
int ring_find(const struct ring *r, const char *name);

/** Fills @st with the sizes of @r. */
void ring_stats(const struct ring *r, struct ring_stats *st);

/**
 * A 64-bit fingerprint of everything placement depends on: config and the
 * eligible members with weights and tags. Two nodes with equal digests place
 * every pack the same; meshd can gossip it to spot diverging views.
 */
uint64_t ring_digest(const struct ring *r);

/** The placement hash of pack id @id (SipHash-2-4 of its 8 LE bytes). */
uint64_t ring_hash_id(const struct ring *r, uint64_t id);

/** The placement hash of @len bytes at @key (NULL is fine when @len is 0). */
uint64_t ring_hash_key(const struct ring *r, const void *key, size_t len);

/**
 * Writes the owners of the key with placement hash @hash into
 * @owners[0..@replicas): distinct eligible nodes, first the primary, then
 * nodes in zones not used yet, then in new regions, new cells, and then any.
 * Allocates nothing.
 *
 * Returns the number written, min(@replicas, eligible members), or
 * MESH_EINVAL (NULL, @replicas 0 or > RING_REPLICAS_MAX) or MESH_ENOENT (no
 * eligible member).
 */
int ring_lookup(const struct ring *r, uint64_t hash, unsigned replicas,
		uint32_t *owners);

/**
 * Places the packs @ids[0..@n) as @opt says and writes their owners into
 * @owners, @opt->replicas slots per pack (pack i at @owners[i * replicas]);
 * slots beyond min(replicas, eligible) are RING_NONE. Without bounded loads
 * this is ring_lookup() for each pack. With them, packs are placed one by
 * one in order of (hash, id) and a node whose load reached its cap,
 * ceil((1 + ε) · replicas · n · vnodes(node) / points), is passed over
 * clockwise (Mirrokni, Thorup, Zadimoghaddam 2017); the outcome is the same
 * for any order of @ids.
 *
 * @ids and @opt are borrowed; @owners is caller storage of n * replicas;
 * @st may be NULL. Scratch memory comes from the ring's allocator.
 * Returns 0 or MESH_EINVAL (NULL, bad @opt), MESH_ERANGE (@n >
 * RING_ASSIGN_MAX), MESH_EEXIST (an id twice), MESH_ENOMEM. No eligible
 * member is not an error: every slot is RING_NONE.
 */
int ring_assign(const struct ring *r, const uint64_t *ids, size_t n,
		const struct ring_place *opt, uint32_t *owners,
		struct ring_assign_stats *st);

/**
 * The moves that take the packs @ids[0..@n) from their owners on @old to
 * their owners on @cur, both placed as @opt says. Nodes are matched by name.
 * A pack that loses owner A and gains owner B gives (pack, A, B); owners
 * that appear or vanish without a partner give RING_NONE on the other side.
 * Moves come in order of @ids, then replica slot.
 *
 * @moves: caller storage for @cap entries; RING_MOVES_MAX(n, replicas) is
 * always enough. *@count gets the number of moves (also when it is more
 * than @cap). Scratch memory comes from @cur's allocator.
 * Returns 0 or the errors of ring_assign(), or MESH_EFULL when @cap is too
 * small (the first @cap moves are written).
 */
int ring_moves(const struct ring *old, const struct ring *cur,
	       const uint64_t *ids, size_t n, const struct ring_place *opt,
	       struct ring_move *moves, size_t cap, size_t *count);

/**
 * Keeps, of the packs @ids[0..@n), those that node @node owns (in any
 * replica slot) when placed as @opt says: what `meshctl packs` lists.
 * @out: caller storage for @n ids; *@count gets how many were kept.
 * Returns 0, MESH_ENOENT (@node out of range) or the errors of ring_assign().
 */
int ring_owned(const struct ring *r, uint32_t node, const uint64_t *ids,
	       size_t n, const struct ring_place *opt, uint64_t *out,
	       size_t *count);

/**
 * Formats @owners[0..@n) (as from ring_lookup()) for people, one line per
 * owner: "name zone=.. region=.. cell=..[ draining]", or with @json as one
 * JSON array of objects. Returns the length written to @buf (NUL-terminated),
 * MESH_EINVAL (NULL, bad index) or MESH_ETOOBIG (@size too small; @buf then
 * holds a truncated, still terminated text).
 */
int ring_format_owners(const struct ring *r, const uint32_t *owners, unsigned n,
		       bool json, char *buf, size_t size);

#endif
