/*
 * fuzz_common.h - what the libFuzzer targets in fuzz/ and the seed corpus
 * generator share: one quiet environment, the fixed identities of the node
 * under test and its peers, the one place a fuzzed swim is configured, and
 * the chunked input format.
 *
 * Input format of the stateful targets (swim, tenant, pack, net frames):
 * the input is split on FUZZ_SEP into chunks; each chunk is one control
 * byte followed by one message. The control byte says who sent it and how
 * far time moves before the next one (fuzz_ctrl_*), so one input replays a
 * short conversation with the node under test. A separator, not a length
 * prefix, keeps the structure when libFuzzer inserts or erases bytes; the
 * dictionaries hold it.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include "mesh_log.h"
#include "ring.h"
#include "swim.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* libFuzzer's entry points; declared for -Wmissing-prototypes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_SEP "\xf5PkM"
#define FUZZ_SEP_LEN 4

/* Node 0 is the node under test; 1..FUZZ_PEERS are members it knows;
 * FUZZ_PEERS + 1 is a stranger (in no view). */
#define FUZZ_PEERS 3
#define FUZZ_NODES (FUZZ_PEERS + 2)

/* Virtual time the targets start at: well past zero, so "now - x" never
 * wraps in code that assumes a running clock. */
#define FUZZ_T0 1000000u

/** A slice of the input. */
struct fuzz_chunk {
	uint8_t ctrl;
	const uint8_t *data;
	size_t len;
};

/**
 * Takes the next chunk off *@data and *@size (advancing them). Empty chunks
 * (two separators in a row) are skipped. False when nothing is left.
 */
bool fuzz_next_chunk(const uint8_t **data, size_t *size, struct fuzz_chunk *c);

/** Sender of a chunk: 1 .. FUZZ_NODES - 1, a peer or the stranger. */
unsigned fuzz_ctrl_from(uint8_t ctrl);
/** Milliseconds to advance before the chunk: 0..7 steps of 125 ms ... */
uint32_t fuzz_ctrl_advance_ms(uint8_t ctrl);
/** ... and whether to run the timers (tick) after it. */
bool fuzz_ctrl_tick(uint8_t ctrl);
/** The control byte that gives these values (for the generator). */
uint8_t fuzz_ctrl(unsigned from, uint32_t advance_ms, bool tick);

/** A quiet env: default allocator, a sink that drops every line. */
const struct mesh_env *fuzz_env(void);

/**
 * Sets the env's level for one input: debug (every log line formatted,
 * with whatever names the input carries) for one input in four, by its
 * size, warn for the rest, which runs about 1.6 times faster.
 */
void fuzz_env_level_for(size_t size);

/** Name and address of node @i (0..FUZZ_NODES-1): "fz0", 198.18.0.1:7946. */
const char *fuzz_name(unsigned i);
void fuzz_addr(unsigned i, struct swim_addr *a);

/**
 * The one place a fuzzed swim is configured: node @i with fixed seed and
 * the default tunables. When swim_config gains fields (identity keys, a
 * 64-bit incarnation), update this function only.
 * Returns swim_new()'s codes.
 */
int fuzz_swim_new(unsigned i, uint64_t now_ms, struct swim **out);

/**
 * Adds node @k to @s as known and alive at incarnation 1, with the record
 * node @k signs. Returns swim_add_known()'s code.
 */
int fuzz_add_known(struct swim *s, uint64_t now_ms, unsigned k);

/**
 * Node 0 as the targets use it: fuzz_swim_new(0) knowing peers
 * 1..FUZZ_PEERS as alive at incarnation 1. Aborts on failure (the harness
 * is broken, not the input).
 */
struct swim *fuzz_swim_target(uint64_t now_ms);

/** Takes every output and event of @s; checks output sizes. */
void fuzz_swim_drain(struct swim *s);

/** An order-dependent hash of @s's view (names, states, incarnations,
 * addresses, metadata): equal views give equal hashes. */
uint64_t fuzz_swim_view_hash(const struct swim *s);

/** A ring of nodes 0..FUZZ_PEERS, all alive. Aborts on failure. */
struct ring *fuzz_ring(void);

struct tenant;
struct mem_kv;

/**
 * The tenant core of node @i with an in-memory store @kv (caller storage,
 * initialised here), fixed seeds, RF 3 and a signature check that accepts
 * every signature (so inputs reach what a capability guards; the
 * capability is still decoded and matched to its tenant and key), viewing
 * @ring. Aborts on failure.
 */
struct tenant *fuzz_tenant_new(unsigned i, uint64_t now_ms, struct mem_kv *kv,
			       const struct ring *ring);

/** Takes every output, reply and change of @t; checks what it can. */
void fuzz_tenant_drain(struct tenant *t);

/** FNV-1a, for file names and hashes. */
uint64_t fuzz_fnv(uint64_t h, const void *p, size_t n);

#endif
