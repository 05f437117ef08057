/*
 * fuzz_swim_datagram - the UDP path into membership: plaintext datagrams
 * (what seal_open() hands over) fed to swim_recv_datagram() of a node that
 * knows three peers, with time moving and timers running between them, so
 * acks, ping-reqs, suspicions and refutations that a datagram sets off run
 * too. Input: chunks (fuzz_common.h), each one datagram from a peer or a
 * stranger.
 *
 * Invariants: a refused datagram changes no view (member table hash and
 * count); self stays member 0, alive; every output fits its budget;
 * swim_self_check() holds after every call.
 */
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_env_level_for(size);
	uint64_t now = FUZZ_T0;
	struct swim *s = fuzz_swim_target(now);
	struct fuzz_chunk c;
	while (fuzz_next_chunk(&data, &size, &c)) {
		now += fuzz_ctrl_advance_ms(c.ctrl);
		struct swim_addr from;
		fuzz_addr(fuzz_ctrl_from(c.ctrl), &from);
		uint64_t before = fuzz_swim_view_hash(s);
		int rc = swim_recv_datagram(s, now, &from, c.data, c.len);
		if (rc != 0 && fuzz_swim_view_hash(s) != before) {
			fprintf(stderr,
				"fuzz: refused datagram (%d) changed "
				"the view\n",
				rc);
			abort();
		}
		fuzz_swim_drain(s);
		if (fuzz_ctrl_tick(c.ctrl)) {
			swim_tick(s, now);
			fuzz_swim_drain(s);
		}
		struct swim_member_info self;
		swim_member_at(s, 0, &self);
		if (!self.is_self || self.state != SWIM_ALIVE)
			abort();
	}
	swim_free(s);
	return 0;
}
