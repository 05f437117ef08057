/*
 * sim_heap.h - the simulator's event queue: a binary min-heap keyed by
 * (virtual time, sequence number). Sequence numbers are unique and given
 * in the order events are scheduled, so events due at the same
 * millisecond run in scheduling order and every run with the same seed
 * pops them in the same order.
 */
#ifndef SIM_HEAP_H
#define SIM_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sim_ev_kind {
	SIM_EV_DATAGRAM = 1, /* deliver buf to node `to` */
	SIM_EV_FRAME,	     /* deliver a stream frame to node `to` */
	SIM_EV_WAKE,	     /* tick node `to` if `aux` is its current token */
};

/** One scheduled event: 40 bytes, copied in and out of the heap. */
struct sim_event {
	uint64_t at;
	uint64_t seq;
	uint8_t *buf; /* owned by the event while queued; NULL for wakes */
	uint32_t len;
	uint32_t from, to;
	uint32_t aux; /* wake token, or frame number within a stream */
	uint8_t kind; /* enum sim_ev_kind */
};

struct sim_heap {
	struct sim_event *v;
	size_t n, cap;
	uint64_t next_seq;
	size_t peak;
};

/** Frees the heap's array (not the buffers of queued events). */
void sim_heap_destroy(struct sim_heap *h);

/**
 * Schedules a copy of @ev, giving it the next sequence number.
 * Returns 0 or MESH_ENOMEM.
 */
int sim_heap_push(struct sim_heap *h, struct sim_event *ev);

/** Takes the earliest event into @out; false when empty. */
bool sim_heap_pop(struct sim_heap *h, struct sim_event *out);

/** Time of the earliest event; UINT64_MAX when empty. */
uint64_t sim_heap_next_at(const struct sim_heap *h);

#endif
