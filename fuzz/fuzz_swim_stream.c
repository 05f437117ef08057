/*
 * fuzz_swim_stream - push-pull: plaintext stream frames fed to
 * swim_recv_stream() of a node that knows three peers and is joining
 * through fz1 (so a reply from fz1 completes the join). Frames that ask
 * for an answer get one; it must fit the stream budget. Input: chunks
 * (fuzz_common.h), each one frame from a peer or a stranger.
 *
 * Invariants: a refused frame changes no view and gets no reply; self
 * stays member 0, alive; replies and outputs fit their budgets;
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
	struct swim_addr seed;
	fuzz_addr(1, &seed);
	if (swim_join(s, now, &seed, 1) != 0)
		abort();
	fuzz_swim_drain(s);
	struct fuzz_chunk c;
	while (fuzz_next_chunk(&data, &size, &c)) {
		now += fuzz_ctrl_advance_ms(c.ctrl);
		struct swim_addr from;
		fuzz_addr(fuzz_ctrl_from(c.ctrl), &from);
		uint64_t before = fuzz_swim_view_hash(s);
		const uint8_t *reply = NULL;
		size_t reply_len = 0;
		int rc = swim_recv_stream(s, now, &from, c.data, c.len, &reply,
					  &reply_len);
		if (rc != 0 && fuzz_swim_view_hash(s) != before) {
			fprintf(stderr,
				"fuzz: refused frame (%d) changed "
				"the view\n",
				rc);
			abort();
		}
		if (rc != 0 && reply != NULL)
			abort();
		if (reply != NULL && (reply_len == 0 || reply_len > (4u << 20)))
			abort();
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
