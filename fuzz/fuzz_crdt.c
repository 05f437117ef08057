/*
 * fuzz_crdt - every decoder of crdt/: crdt_{cc,gcounter,pncounter,lww,
 * mvreg,orset,ormap}_decode() and crdt_ormap_decode_parts(). The first
 * byte of the input picks the decoder (modulo 8); the rest is the encoded
 * state. For decode_parts the rest is split on FUZZ_SEP: every piece but
 * the last is a field record, the last is the causal context.
 *
 * Invariants, for what decodes: encoding it and decoding that gives an
 * equal state and the same bytes again (canonical form); joining it with
 * itself, or into bottom, gives an equal state; memory held while decoding
 * stays within a constant times the input (crdt.h promises so).
 */
#include "fuzz_common.h"

#include "crdt.h"
#include "mesh_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A malloc allocator that knows the live and peak bytes. */
struct fuzz_count {
	struct mesh_allocator base;
	size_t live, peak;
};

#define FUZZ_HDR 16

static void *
fuzz_count_alloc(void *ctx, size_t size)
{
	struct fuzz_count *c = ctx;
	uint8_t *p = malloc(size + FUZZ_HDR);
	if (p == NULL)
		return NULL;
	memcpy(p, &size, sizeof(size));
	c->live += size;
	if (c->live > c->peak)
		c->peak = c->live;
	return p + FUZZ_HDR;
}

static void
fuzz_count_free(void *ctx, void *ptr)
{
	struct fuzz_count *c = ctx;
	if (ptr == NULL)
		return;
	uint8_t *p = (uint8_t *)ptr - FUZZ_HDR;
	size_t size;
	memcpy(&size, p, sizeof(size));
	c->live -= size;
	free(p);
}

static void *
fuzz_count_realloc(void *ctx, void *ptr, size_t size)
{
	if (ptr == NULL)
		return fuzz_count_alloc(ctx, size);
	struct fuzz_count *c = ctx;
	uint8_t *p = (uint8_t *)ptr - FUZZ_HDR;
	size_t old;
	memcpy(&old, p, sizeof(old));
	uint8_t *q = realloc(p, size + FUZZ_HDR);
	if (q == NULL)
		return NULL;
	memcpy(q, &size, sizeof(size));
	c->live = c->live - old + size;
	if (c->live > c->peak)
		c->peak = c->live;
	return q + FUZZ_HDR;
}

static struct fuzz_count fuzz_alloc;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_alloc.base.alloc_fn = fuzz_count_alloc;
	fuzz_alloc.base.realloc_fn = fuzz_count_realloc;
	fuzz_alloc.base.free_fn = fuzz_count_free;
	fuzz_alloc.base.ctx = &fuzz_alloc;
	return 0;
}

static _Noreturn void
fuzz_fail(const char *type, const char *what)
{
	fprintf(stderr, "fuzz: crdt %s: %s\n", type, what);
	abort();
}

/*
 * Decodes with T's decoder and checks the invariants. One macro for every
 * type: the seven APIs have the same shape (crdt.h's conventions).
 */
#define FUZZ_CRDT(T, buf, len)                                                 \
	do {                                                                   \
		const struct mesh_allocator *fz_a = &fuzz_alloc.base;          \
		struct crdt_##T *fz_x = NULL, *fz_y = NULL, *fz_z = NULL;      \
		int fz_rc = crdt_##T##_decode(fz_a, (buf), (len), &fz_x);      \
		if (fz_rc != 0) {                                              \
			if (fz_x != NULL)                                      \
				fuzz_fail(#T, "output on error");              \
			break;                                                 \
		}                                                              \
		uint8_t *fz_e1 = NULL, *fz_e2 = NULL;                          \
		size_t fz_l1 = 0, fz_l2 = 0;                                   \
		if (crdt_##T##_encode(fz_x, &fz_e1, &fz_l1) != 0)              \
			fuzz_fail(#T, "encode of fz_a decoded state");         \
		if (crdt_##T##_decode(fz_a, fz_e1, fz_l1, &fz_y) != 0)         \
			fuzz_fail(#T, "own encoding refused");                 \
		if (!crdt_##T##_equal(fz_x, fz_y))                             \
			fuzz_fail(#T, "round trip changed the state");         \
		if (crdt_##T##_encode(fz_y, &fz_e2, &fz_l2) != 0 ||            \
		    fz_l1 != fz_l2 ||                                          \
		    (fz_l1 > 0 && memcmp(fz_e1, fz_e2, fz_l1) != 0))           \
			fuzz_fail(#T, "encoding not canonical");               \
		if (crdt_##T##_join(fz_y, fz_x) != 0 ||                        \
		    !crdt_##T##_equal(fz_x, fz_y))                             \
			fuzz_fail(#T, "join not idempotent");                  \
		if ((fz_z = crdt_##T##_new(fz_a)) == NULL ||                   \
		    crdt_##T##_join(fz_z, fz_x) != 0 ||                        \
		    !crdt_##T##_equal(fz_x, fz_z))                             \
			fuzz_fail(#T, "join into bottom");                     \
		mesh_free(fz_a, fz_e1);                                        \
		mesh_free(fz_a, fz_e2);                                        \
		crdt_##T##_free(fz_x);                                         \
		crdt_##T##_free(fz_y);                                         \
		crdt_##T##_free(fz_z);                                         \
	} while (0)

/* Reads what a decoded map holds, the way the tenant core reads it. */
static void
fuzz_ormap_walk(const uint8_t *buf, size_t len)
{
	const struct mesh_allocator *a = &fuzz_alloc.base;
	struct crdt_ormap *m = NULL;
	if (crdt_ormap_decode(a, buf, len, &m) != 0)
		return;
	size_t n = crdt_ormap_count(m, NULL, 0);
	for (size_t i = 0; i < n; i++) {
		enum crdt_kind kind;
		const void *key;
		size_t klen;
		if (crdt_ormap_field(m, NULL, 0, i, &kind, &key, &klen) != 0)
			fuzz_fail("ormap", "field index");
		struct crdt_key path = {key, klen};
		if (!crdt_ormap_has(m, &path, 1, kind))
			fuzz_fail("ormap", "listed field missing");
		int64_t v;
		const void *val;
		size_t vlen;
		switch (kind) {
		case CRDT_GCOUNTER:
		case CRDT_PNCOUNTER:
			(void)crdt_ormap_counter_value(m, &path, 1, kind, &v);
			break;
		case CRDT_LWW:
			(void)crdt_ormap_lww_get(m, &path, 1, &val, &vlen);
			break;
		case CRDT_MV:
			for (size_t k = 0;
			     crdt_ormap_mv_value(m, &path, 1, k, &val, &vlen) ==
			     0;
			     k++) {
			}
			break;
		case CRDT_ORSET:
			for (size_t k = 0;
			     k < crdt_ormap_orset_count(m, &path, 1); k++)
				if (crdt_ormap_orset_element(m, &path, 1, k,
							     &val, &vlen) != 0)
					fuzz_fail("ormap", "set element");
			break;
		case CRDT_ORMAP:
			(void)crdt_ormap_count(m, &path, 1);
			break;
		}
		uint8_t *f = NULL;
		size_t flen;
		if (crdt_ormap_field_encode(m, kind, key, klen, &f, &flen) != 0)
			fuzz_fail("ormap", "field encode");
		mesh_free(a, f);
	}
	struct crdt_dot dot;
	size_t field;
	(void)crdt_ormap_only_dot(m, &dot, &field);
	(void)crdt_ormap_narrow_context(m, NULL, 0);
	crdt_ormap_free(m);
}

#define FUZZ_PARTS_MAX 64

static void
fuzz_parts(const uint8_t *data, size_t size)
{
	const uint8_t *fields[FUZZ_PARTS_MAX];
	size_t lens[FUZZ_PARTS_MAX];
	size_t n = 0;
	/* Pieces are split on FUZZ_SEP by hand: a field may be empty. */
	const uint8_t *p = data;
	size_t left = size;
	while (n < FUZZ_PARTS_MAX) {
		const uint8_t *sep = NULL;
		for (size_t i = 0; i + FUZZ_SEP_LEN <= left; i++)
			if (memcmp(p + i, FUZZ_SEP, FUZZ_SEP_LEN) == 0) {
				sep = p + i;
				break;
			}
		if (sep == NULL)
			break;
		fields[n] = p;
		lens[n] = (size_t)(sep - p);
		n++;
		left -= lens[n - 1] + FUZZ_SEP_LEN;
		p = sep + FUZZ_SEP_LEN;
	}
	struct crdt_ormap *m = NULL;
	int rc = crdt_ormap_decode_parts(&fuzz_alloc.base, fields, lens, n, p,
					 left, &m);
	if (rc != 0 && m != NULL)
		fuzz_fail("ormap parts", "output on error");
	if (rc == 0) {
		uint8_t *e = NULL;
		size_t elen;
		if (crdt_ormap_encode(m, &e, &elen) != 0)
			fuzz_fail("ormap parts", "encode");
		FUZZ_CRDT(ormap, e, elen);
		mesh_free(&fuzz_alloc.base, e);
	}
	crdt_ormap_free(m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	const uint8_t *buf = data + 1;
	size_t len = size - 1;
	fuzz_alloc.live = fuzz_alloc.peak = 0;
	switch (data[0] % 8) {
	case 0:
		FUZZ_CRDT(cc, buf, len);
		break;
	case 1:
		FUZZ_CRDT(gcounter, buf, len);
		break;
	case 2:
		FUZZ_CRDT(pncounter, buf, len);
		break;
	case 3:
		FUZZ_CRDT(lww, buf, len);
		break;
	case 4:
		FUZZ_CRDT(mvreg, buf, len);
		break;
	case 5:
		FUZZ_CRDT(orset, buf, len);
		break;
	case 6:
		FUZZ_CRDT(ormap, buf, len);
		fuzz_ormap_walk(buf, len);
		break;
	case 7:
		fuzz_parts(buf, len);
		break;
	}
	if (fuzz_alloc.live != 0)
		fuzz_fail("any", "bytes still held after every free");
	/* The decode budget is 64 x input + 64 KiB for protobuf-c's tree; the
	 * objects built and the re-encodings checked above are of the same
	 * order. Four times the budget catches a blow-up, not a constant. */
	if (fuzz_alloc.peak >
	    4 * ((size_t)CRDT_DECODE_BUDGET_FACTOR * size + (64u << 10)))
		fuzz_fail("any", "memory out of proportion to the input");
	return 0;
}
