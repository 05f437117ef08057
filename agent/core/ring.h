/*
 * ring.h - pack placement: a consistent-hashing ring with virtual nodes,
 * capacity weights, zone-aware replicas, optional bounded loads, memory
 * limits and zone/region constraints. Sans I/O.
 *
 * A struct ring is an immutable picture of one membership view. The driver
 * builds a new one whenever its view changes (ring_new() on an array of
 * struct ring_member), asks it who owns a pack (ring_lookup()), places a set
 * of packs with or without a load cap (ring_assign()), or under memory
 * limits and zone/region constraints (ring_assign_fit()), and diffs two
 * rings into moves (ring_moves()). Every node that sees the same members, in
 * any order, with the same struct ring_config builds the same ring and computes
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

/* "No zone or region asked for" in struct ring_pack. */
#define RING_ANY UINT32_MAX

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
	uint32_t mem;	    /* MiB packs may use on it; 0: unlimited */
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
	uint32_t mem;	 /* as given: MiB for packs, 0: unlimited */
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

/**
 * One pack for ring_assign_fit(). A zone or region other than RING_ANY
 * that has no eligible member in this ring (a stale id from an older ring,
 * or any out-of-range value stored when ring_zone_id() failed) names no
 * domain: the pack gets no owner and RING_FIT_DOMAIN.
 */
struct ring_pack {
	uint64_t hash;	  /* ring_hash_key() or ring_hash_id() of the pack */
	uint32_t mem;	  /* MiB needed on each owner; 0: none */
	uint32_t zone;	  /* RING_ANY or ring_zone_id() */
	uint32_t region;  /* RING_ANY or ring_region_id(); implies its zone */
	uint8_t replicas; /* owners wanted, 1..stride */
};

/** Why a pack got fewer owners than it asked for (ring_assign_fit()). */
enum ring_fit {
	RING_FIT_OK = 0,     /* every replica placed */
	RING_FIT_NODES = 1,  /* fewer eligible nodes (in its domain) than
				replicas; each of them got a copy */
	RING_FIT_DOMAIN = 2, /* no eligible node in the zone/region asked for */
	RING_FIT_MEM = 3,    /* eligible nodes exist, but too few with enough
				free memory */
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
 * eligible members with weights, memory and tags. Two nodes with equal
 * digests place every pack the same; meshd can gossip it to spot diverging
 * views. A member without memory (0) adds what it added before memory
 * existed, so rings without it keep their digests across the upgrade.
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
 * The id of zone @zone among the members of @r, for struct ring_pack.
 * NULL means "" (members without a zone). Ids are only meaningful for @r:
 * look them up again for every new ring. O(log members).
 * Returns the id (>= 0), MESH_EINVAL (@r NULL) or MESH_ENOENT (no eligible
 * member is in that zone).
 */
int ring_zone_id(const struct ring *r, const char *zone);

/**
 * The id of region @region inside zone @zone, as ring_zone_id() does for
 * zones; a region name means nothing without its zone.
 */
int ring_region_id(const struct ring *r, const char *zone, const char *region);

/**
 * Places @packs[0..@n) one after the other, in the order given, and writes
 * the owners of pack i into @owners[i * @stride ..), @packs[i].replicas of
 * them at most; unused slots are RING_NONE. Every node must give the packs
 * in the same order (sort them by (hash, name), say): a pack's owners
 * depend on the packs placed before it.
 *
 * Each replica slot is chosen as ring_lookup() chooses it, among the nodes
 * that also (1) lie in the pack's zone or region, when it names one, the
 * replicas then spreading over the regions, cells and nodes inside it; (2)
 * have @packs[i].mem MiB free: the memory of a node (ring_member.mem) is a
 * hard limit that the packs placed on it never exceed together; and (3)
 * with @opt->bounded, are below their cap, computed as in ring_assign()
 * over all the slots asked for (sum of min(replicas, eligible nodes of the
 * pack's domain)). A node that fails one of them is passed over clockwise.
 * When too few nodes are below their cap, the missing slots are filled
 * ignoring caps (but never memory) and counted in @st->over_cap.
 * Without memory, domain or bounded loads a pack gets ring_lookup()'s
 * owners; bounded without the others, packs in ring_assign()'s order
 * (hash, id) get ring_assign()'s owners.
 *
 * @packs, @opt: borrowed for the call; @opt NULL means unbounded, and
 *    @opt->replicas is not used (@stride and each pack's replicas are).
 * @owners: caller storage of @n * @stride.
 * @why: NULL or caller storage of @n: an enum ring_fit for each pack.
 * @mem_used: NULL or caller storage of ring_node_count(@r): the MiB placed
 *    on each node.
 * @st: NULL or the counts of ring_assign(); owners is min(@stride,
 *    eligible), displaced counts packs whose first owner is not
 *    ring_lookup()'s primary, whatever the reason.
 * Cost: about one ring_lookup() per pack and O(log members) per owner; a
 * pack that fits nowhere costs a few O(log members) reads, not a walk.
 * Scratch memory, O(members + points), comes from the ring's allocator;
 * nothing is allocated per pack.
 * Returns 0 or MESH_EINVAL (NULL, @stride 0 or > RING_REPLICAS_MAX, a
 * pack's replicas 0 or > @stride, bad @opt->eps_milli), MESH_ERANGE (@n >
 * RING_ASSIGN_MAX) or MESH_ENOMEM; on error nothing is written. Packs that
 * cannot be placed are not errors: see @why.
 */
int ring_assign_fit(const struct ring *r, const struct ring_pack *packs,
		    size_t n, unsigned stride, const struct ring_place *opt,
		    uint32_t *owners, uint8_t *why, uint64_t *mem_used,
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
