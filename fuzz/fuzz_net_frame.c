/*
 * fuzz_net_frame - the stream side of agent/io/net.c as far as it is pure:
 * net.c has no framing function of its own (the length words are read in
 * its libuv read callback), so this target reads the same wire format
 * (a 4-byte big-endian length word, NET_TENANT_FLAG in its top bit, then
 * a sealed frame), applies net.c's limits, opens each frame with
 * seal_open() and a fixed keyring, and feeds what opens to the core the
 * frame is for: swim_recv_stream() or tenant_recv().
 *
 * Input: the byte stream one connection carries. The harness bit 0x40000000
 * of a length word (never set on the wire: lengths stay under 2^25) means
 * "this frame is plaintext: seal it with the cluster key first", so inputs
 * can reach the cores through a real open; without it the bytes go to
 * seal_open() as they are (wrong keys, truncation, bad versions, tampering).
 *
 * Invariants: a frame sealed here opens to the same bytes, and what opens
 * is the sealed length less the overhead of its seal version (SEAL_OVERHEAD
 * for version 2, SEAL_OVERHEAD_MAX for version 1, which older corpus
 * entries carry); a refused swim frame changes no view.
 */
#include "fuzz_common.h"

#include "mem_kv.h"
#include "net.h"
#include "seal.h"
#include "tenant.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_SEAL_FLAG 0x40000000u

static struct seal_keyring fuzz_keys;
static struct ring *fuzz_frame_ring;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (seal_init() != 0)
		abort();
	/* A fixed keyring of two keys: the second is the one being rotated
	 * out, so the opener's loop over keys runs too. */
	fuzz_keys.count = 2;
	for (unsigned k = 0; k < 2; k++)
		memset(fuzz_keys.keys[k], 0x5a + (int)k, SEAL_KEY_BYTES);
	fuzz_frame_ring = fuzz_ring();
	return 0;
}

static uint32_t
fuzz_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_env_level_for(size);
	uint64_t now = FUZZ_T0;
	struct swim *s = fuzz_swim_target(now);
	struct mem_kv kv;
	struct tenant *t = fuzz_tenant_new(0, now, &kv, fuzz_frame_ring);
	struct swim_addr peer;
	fuzz_addr(1, &peer);
	bool opened = false;
	size_t off = 0;
	while (size - off >= 4) {
		uint32_t word = fuzz_be32(data + off);
		bool seal_here = (word & FUZZ_SEAL_FLAG) != 0;
		word &= ~FUZZ_SEAL_FLAG;
		bool is_tenant = (word & NET_TENANT_FLAG) != 0;
		size_t flen = word & ~NET_TENANT_FLAG;
		/* net.c's checks, in its order. */
		if (flen > (is_tenant ? NET_TENANT_FRAME_MAX : NET_FRAME_MAX))
			break;
		if (!opened && flen > NET_FIRST_FRAME_MAX)
			break;
		if (size - off - 4 < flen)
			break; /* a partial frame: net.c waits, then counts it
				*/
		const uint8_t *frame = data + off + 4;
		off += 4 + flen;
		uint8_t *sealed = NULL;
		size_t slen = flen;
		if (seal_here) {
			sealed = malloc(flen + SEAL_OVERHEAD);
			if (sealed == NULL ||
			    seal_seal(&fuzz_keys, frame, flen, sealed,
				      flen + SEAL_OVERHEAD, &slen) != 0)
				abort();
			frame = sealed;
		}
		/* As net.c: the plaintext is shorter than the frame. */
		size_t pcap = slen > 0 ? slen : 1;
		uint8_t *plain = malloc(pcap);
		if (plain == NULL)
			abort();
		size_t plen = 0;
		int rc = seal_open(&fuzz_keys, frame, slen, plain, pcap, &plen);
		if (seal_here && (rc != 0 || plen != flen ||
				  (flen > 0 && memcmp(plain, data + off - flen,
						      flen) != 0))) {
			fprintf(stderr, "fuzz: own sealed frame did not open "
					"to its plaintext\n");
			abort();
		}
		/* frame[0] is read only once it opened (so slen > 0). */
		size_t over = rc == 0 && frame[0] == SEAL_VERSION
				  ? SEAL_OVERHEAD
				  : SEAL_OVERHEAD_MAX;
		if (rc == 0 && plen + over != slen)
			abort();
		free(sealed);
		if (rc != 0) {
			free(plain);
			break; /* net.c closes the stream */
		}
		opened = true;
		if (is_tenant) {
			if (plen > 0)
				(void)tenant_recv(t, now, plain, plen);
			fuzz_tenant_drain(t);
		} else {
			uint64_t before = fuzz_swim_view_hash(s);
			const uint8_t *reply = NULL;
			size_t reply_len = 0;
			rc = swim_recv_stream(s, now, &peer, plain, plen,
					      &reply, &reply_len);
			if (rc != 0 && fuzz_swim_view_hash(s) != before)
				abort();
			if (reply != NULL) {
				/* net.c seals the reply into the stream. */
				uint8_t *out =
				    malloc(reply_len + SEAL_OVERHEAD);
				size_t olen;
				if (out == NULL ||
				    seal_seal(&fuzz_keys, reply, reply_len, out,
					      reply_len + SEAL_OVERHEAD,
					      &olen) != 0)
					abort();
				free(out);
			}
			fuzz_swim_drain(s);
		}
		free(plain);
		/* net.c closes a stream after a refused swim frame or one
		 * without an answer; the harness reads on, so one input can
		 * carry several frames. */
		now += 10;
	}
	swim_free(s);
	tenant_free(t);
	mem_kv_destroy(&kv);
	return 0;
}
