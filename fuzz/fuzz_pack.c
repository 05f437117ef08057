/*
 * fuzz_pack - the pack core's decoders and what they feed: encoded
 * pack.Spec records (pack_spec_decode(), pack_set_spec()) and pack.Run
 * reports (pack_report()) as they arrive from the system tenant, mixed with
 * placement updates on a four-node ring, hook results, adoption, deletion
 * and timers. Input: chunks (fuzz_common.h); the control byte picks the
 * operation (bits 0..2), the pack (bits 3..4) and the reporting node
 * (bits 5..6); the rest is the record.
 *
 * Invariants: a spec that decodes encodes again and decodes to the same
 * fields; a refused spec adds no pack; hooks name a valid pack; counts add
 * up (placed + short + unplaceable = desired).
 */
#include "fuzz_common.h"

#include "mesh_err.h"
#include "pack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct ring *fuzz_pack_ring;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_pack_ring = fuzz_ring();
	return 0;
}

static _Noreturn void
fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz: pack: %s\n", what);
	abort();
}

static bool
fuzz_str_eq(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Decodes @data as a spec; when it decodes, checks the round trip. */
static void
fuzz_spec_roundtrip(const uint8_t *data, size_t len)
{
	struct pack_spec sp;
	void *buf = NULL;
	const char *why = NULL;
	if (pack_spec_decode(data, len, &sp, &buf, &why) != 0) {
		if (buf != NULL || why == NULL)
			fuzz_fail("refused spec without a reason, or kept");
		return;
	}
	uint8_t *enc = NULL;
	size_t elen = 0;
	if (pack_spec_encode(&sp, &enc, &elen, &why) != 0)
		fuzz_fail("a decoded spec does not encode");
	struct pack_spec sp2;
	void *buf2 = NULL;
	if (pack_spec_decode(enc, elen, &sp2, &buf2, &why) != 0)
		fuzz_fail("own encoding refused");
	if (!fuzz_str_eq(sp.tenant, sp2.tenant) || sp.mem_mib != sp2.mem_mib ||
	    sp.replicas != sp2.replicas || !fuzz_str_eq(sp.zone, sp2.zone) ||
	    !fuzz_str_eq(sp.region, sp2.region) ||
	    sp.created_unix_ms != sp2.created_unix_ms ||
	    sp.nlabels != sp2.nlabels)
		fuzz_fail("round trip changed the spec");
	for (size_t i = 0; i < sp.nlabels; i++)
		if (!fuzz_str_eq(sp.label_key[i], sp2.label_key[i]) ||
		    !fuzz_str_eq(sp.label_value[i], sp2.label_value[i]))
			fuzz_fail("round trip changed a label");
	free(enc);
	pack_spec_release(buf);
	pack_spec_release(buf2);
}

static void
fuzz_pack_drain(struct pack *pk, uint64_t now, int status)
{
	struct pack_hook h;
	uint64_t ids[64];
	size_t n = 0;
	while (pack_poll_hook(pk, &h)) {
		/* A hook may name a pack no longer desired: its local
		 * run outlives the spec until the next update stops it. */
		if (h.name == NULL || !pack_name_ok(h.name))
			fuzz_fail("hook without a valid pack name");
		if (n < 64)
			ids[n++] = h.id;
	}
	struct pack_event ev;
	while (pack_poll_event(pk, &ev)) {
		if (ev.name == NULL)
			fuzz_fail("event without a pack");
	}
	for (size_t i = 0; i < n; i++)
		pack_hook_done(pk, now, ids[i], status, "fuzz");
	while (pack_poll_event(pk, &ev)) {
	}
	while (pack_poll_hook(pk, &h)) {
	}
	struct pack_counts pc;
	pack_counts(pk, &pc);
	if (pc.placed + pc.short_owned + pc.unplaceable != pc.desired)
		fuzz_fail("counts do not add up");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_env_level_for(size);
	static const char *const packs[4] = {"web", "db", "cache", "q.1"};
	struct pack_config cfg;
	pack_config_default(&cfg);
	snprintf(cfg.name, sizeof(cfg.name), "%s", fuzz_name(0));
	cfg.hook = true;
	cfg.wall_offset_ms = 1700000000000LL;
	struct pack *pk = NULL;
	if (pack_new(&cfg, fuzz_env(), &pk) != 0)
		abort();
	uint64_t now = FUZZ_T0;
	struct fuzz_chunk c;
	while (fuzz_next_chunk(&data, &size, &c)) {
		const char *name = packs[(c.ctrl >> 3) & 3];
		const char *node = fuzz_name((c.ctrl >> 5) & 3);
		int status = c.len > 0 ? (int)(int8_t)c.data[0] : 0;
		switch (c.ctrl & 7) {
		case 0: {
			fuzz_spec_roundtrip(c.data, c.len);
			size_t before = pack_count(pk);
			struct pack_info info;
			bool had = pack_info(pk, name, &info) == 0;
			int rc = pack_set_spec(pk, name, c.data, c.len);
			if (rc != 0 && pack_count(pk) != before)
				fuzz_fail("refused spec changed the packs");
			if (rc == 0 && pack_count(pk) != before + !had)
				fuzz_fail("accepted spec, wrong count");
			break;
		}
		case 1:
			pack_report(pk, name, node, c.data, c.len);
			break;
		case 2:
			(void)pack_del(pk, name);
			break;
		case 3:
			now += 100;
			if (pack_update(pk, now, fuzz_pack_ring) != 0)
				fuzz_fail("update failed");
			fuzz_pack_drain(pk, now, status);
			break;
		case 4:
			(void)pack_adopt(pk, now, name);
			break;
		case 5:
			now += (uint64_t)(c.len > 0 ? c.data[0] : 1) * 500;
			pack_tick(pk, now);
			fuzz_pack_drain(pk, now, status);
			break;
		case 6: {
			/* A name that came from a key of the system tenant. */
			char nm[PACK_NAME_MAX + 2];
			size_t n =
			    c.len < sizeof(nm) - 1 ? c.len : sizeof(nm) - 1;
			memcpy(nm, c.data, n);
			nm[n] = 0;
			if (pack_name_ok(nm))
				(void)pack_set_spec(pk, nm, c.data, 0);
			pack_report(pk, nm, node, NULL, 0);
			(void)pack_del(pk, nm);
			break;
		}
		case 7:
			pack_report(pk, name, NULL, NULL, 0);
			if (pack_update(pk, now, NULL) != 0)
				fuzz_fail("update without a ring failed");
			fuzz_pack_drain(pk, now, status);
			break;
		}
	}
	for (size_t i = 0; i < pack_count(pk); i++) {
		struct pack_info info;
		if (pack_info_at(pk, i, &info) != 0 || info.name == NULL)
			fuzz_fail("pack_info_at");
	}
	pack_free(pk);
	return 0;
}
