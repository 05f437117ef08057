/*
 * fuzz_tenant - the tenant channel into the tenant core: frames another
 * node sent (tenant.Frame: deltas, acks, forwarded requests and replies,
 * digests, pulls, handoff, follow) fed to tenant_recv() of node fz0, which
 * holds a ring of four nodes (RF 3) and an in-memory store. Time moves and
 * timers run between frames, so anti-entropy, pulls and timeouts that a
 * frame sets off run too. Along the way this exercises every decoder the
 * frames reach: tenant.proto, capabilities (tenant_cap_decode) and the
 * OR-maps inside deltas and pulls (crdt/).
 *
 * Invariants: a refused frame (decode, version) holds no new tenant and
 * applies no delta; outputs name a node.
 */
#include "fuzz_common.h"

#include "mem_kv.h"
#include "tenant.h"
#include "tenant_cap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct ring *fuzz_tenant_ring;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_tenant_ring = fuzz_ring();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_env_level_for(size);
	uint64_t now = FUZZ_T0;
	struct mem_kv kv;
	struct tenant *t = fuzz_tenant_new(0, now, &kv, fuzz_tenant_ring);
	fuzz_tenant_drain(t);
	struct fuzz_chunk c;
	while (fuzz_next_chunk(&data, &size, &c)) {
		now += fuzz_ctrl_advance_ms(c.ctrl);
		size_t held = tenant_count(t);
		uint64_t applied = tenant_stats(t)->deltas_applied;
		int rc = tenant_recv(t, now, c.data, c.len);
		if (rc != 0 && (tenant_count(t) != held ||
				tenant_stats(t)->deltas_applied != applied)) {
			fprintf(stderr,
				"fuzz: refused frame (%d) changed "
				"the state\n",
				rc);
			abort();
		}
		fuzz_tenant_drain(t);
		if (fuzz_ctrl_tick(c.ctrl)) {
			tenant_tick(t, now);
			fuzz_tenant_drain(t);
		}
		/* Capabilities come inside requests; decode the chunk as one
		 * too, so the decoder sees bytes protobuf-c would not pass
		 * through a Request. */
		struct tenant_cap cap;
		uint8_t sig[TENANT_SIG_BYTES];
		if (tenant_cap_decode(c.data, c.len, &cap, sig) == 0 &&
		    memchr(cap.tenant, 0, sizeof(cap.tenant)) == NULL)
			abort();
	}
	tenant_free(t);
	mem_kv_destroy(&kv);
	return 0;
}
