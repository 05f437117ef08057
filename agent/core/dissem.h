/*
 * dissem.h - the dissemination queue: infection-style piggybacking.
 *
 * Each pending update is an already-encoded protobuf Update. Packing takes
 * the least-transmitted updates first, as many as fit, and retires an update
 * once it has been sent `limit` times. Items live in buckets by transmit
 * count, so picking is O(1) per update whatever the queue length.
 *
 * Every item is tied to an owner slot (a pointer inside the member it is
 * about): pushing a new update for the same slot replaces the old one, and
 * the slot is cleared when the item retires. So there is at most one
 * pending update per member, always the newest.
 */
#ifndef DISSEM_H
#define DISSEM_H

#include "mesh_log.h"

#include <stddef.h>
#include <stdint.h>

/* A retransmit limit above this is clamped; log10(N+1) * mult stays far
 * below it for any N we run. */
#define DISSEM_MAX_TRANSMITS 64

struct dissem_item;

struct dissem {
	const struct mesh_env *env;
	struct dissem_item *head[DISSEM_MAX_TRANSMITS];
	struct dissem_item *tail[DISSEM_MAX_TRANSMITS];
	size_t count;
};

/** Sets up an empty queue; @env is borrowed. */
void dissem_init(struct dissem *d, const struct mesh_env *env);

/** Frees every item and clears its owner slot. */
void dissem_destroy(struct dissem *d);

/**
 * Queues a copy of @len bytes (one encoded Update) owned by *@slot,
 * replacing the item *@slot points to, if any. Returns 0 or MESH_ENOMEM
 * (the old item is then kept).
 */
int dissem_push(struct dissem *d, struct dissem_item **slot,
		const uint8_t *bytes, size_t len);

/** Drops the item in *@slot, if any, and clears the slot. */
void dissem_drop(struct dissem *d, struct dissem_item **slot);

/**
 * Appends queued updates to @buf as repeated field @field of the enclosing
 * message, least-sent first, while they fit in @cap bytes. @first, if not
 * NULL, is packed before all others (Lifeguard's buddy system: tell a
 * suspect it is suspected). Each packed item counts one transmission and is
 * retired at @limit. Returns the number of bytes written.
 */
size_t dissem_pack(struct dissem *d, uint32_t field, uint32_t limit,
		   struct dissem_item *first, uint8_t *buf, size_t cap);

/** Number of queued updates. */
size_t dissem_count(const struct dissem *d);

/**
 * Writes @len bytes as field @field (tag, length, data) at @buf, which must
 * hold dissem_field_size(@field, @len) bytes. Returns the bytes written.
 */
size_t dissem_put_field(uint32_t field, const uint8_t *bytes, size_t len,
			uint8_t *buf);

/** Bytes a field of @len payload bytes takes: tag + length varint + data. */
size_t dissem_field_size(uint32_t field, size_t len);

#endif
