/*
 * fuzz_admin - what the admin socket parses: a connection's bytes cut into
 * request lines as agent/io/admin.c cuts them ('\n', a trailing '\r'
 * dropped, at most ADMIN_LINE_MAX bytes), each split and %-decoded by
 * admin_line_split(). The dispatch of commands lives in meshd.c (static),
 * so each decoded token is handed instead to the library parsers that the
 * handlers call on tokens: net_parse_addr() (join, seeds),
 * tenant_rights_parse() (grant), capfile_decode_pubkey() and
 * capfile_decode_cap_text() (tenant create and every tenant operation),
 * capfile_decode_key_text(). The whole input also goes to the two file parsers
 * an operator feeds: seal_keyring_parse() and capfile_parse().
 *
 * Invariants: tokens are NUL-terminated and within the line; encoding the
 * tokens again (admin_arg_encode) and splitting that gives the same tokens;
 * admin_arg_encoded_len() is the length admin_arg_encode() writes; JSON
 * answers (admin_json_bytes) hold no control byte.
 */
#define _GNU_SOURCE /* RTLD_NEXT */
#include "fuzz_common.h"

#include "admin.h"
#include "capfile.h"
#include "mesh_err.h"
#include "net.h"
#include "seal.h"
#include "tenant_cap.h"

#include <dlfcn.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * net_parse_addr() resolves names with getaddrinfo(): a fuzzed token would
 * make DNS queries (slow, and traffic to a resolver this machine must not
 * send). This wrapper, found before libc's, lets only numeric hosts
 * through, which is all the parser's own logic needs.
 */
int getaddrinfo(const char *node, const char *service,
		const struct addrinfo *hints, struct addrinfo **res);

int
getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
	    struct addrinfo **res)
{
	typedef int real_fn(const char *, const char *, const struct addrinfo *,
			    struct addrinfo **);
	static real_fn *real;
	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "getaddrinfo");
	if (real == NULL)
		return EAI_FAIL;
	struct addrinfo h = {0};
	if (hints != NULL)
		h = *hints;
	h.ai_flags |= AI_NUMERICHOST;
	return real(node, service, &h, res);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (seal_init() != 0)
		abort();
	return 0;
}

static _Noreturn void
fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz: admin: %s\n", what);
	abort();
}

/* The library parsers a handler runs on one token. */
static void
fuzz_token(const struct admin_arg *a)
{
	struct swim_addr addr;
	(void)net_parse_addr(a->data, 7946, &addr);
	uint32_t rights;
	if (tenant_rights_parse(a->data, &rights) == 0 &&
	    (rights & ~(uint32_t)(TENANT_READ | TENANT_WRITE | TENANT_ADMIN)))
		fuzz_fail("rights outside the known bits");
	uint8_t pub[TENANT_PUBKEY_BYTES];
	(void)capfile_decode_pubkey(a->data, a->len, pub);
	uint8_t cap[TENANT_CAP_MAX];
	size_t cap_len = 0;
	if (capfile_decode_cap_text(a->data, a->len, cap, sizeof(cap),
				    &cap_len) == 0 &&
	    (cap_len == 0 || cap_len > sizeof(cap)))
		fuzz_fail("capability length");
	uint8_t seed[CAPFILE_SEED_BYTES];
	(void)capfile_decode_key_text(a->data, a->len, seed);
}

static void
fuzz_line(const uint8_t *p, size_t len)
{
	if (len > 0 && p[len - 1] == '\r')
		len--;
	/* admin.c splits in place and needs one spare byte for the NUL. */
	char *line = malloc(len + 1);
	if (line == NULL)
		abort();
	memcpy(line, p, len);
	line[len] = 'X';
	struct admin_arg argv[ADMIN_ARGS_MAX];
	size_t argc = 0;
	const char *why = NULL;
	int rc = admin_line_split(line, len, argv, ADMIN_ARGS_MAX, &argc, &why);
	if (rc != 0) {
		if (why == NULL)
			fuzz_fail("error without a reason");
		free(line);
		return;
	}
	if (argc > ADMIN_ARGS_MAX)
		fuzz_fail("more tokens than asked for");
	struct admin_buf again = {0};
	for (size_t i = 0; i < argc; i++) {
		const char *d = argv[i].data;
		if (d < line || d + argv[i].len > line + len ||
		    d[argv[i].len] != 0)
			fuzz_fail("token outside the line or not terminated");
		size_t need = admin_arg_encoded_len(d, argv[i].len);
		char *enc = malloc(need + 1);
		if (enc == NULL)
			abort();
		int n = admin_arg_encode(d, argv[i].len, enc, need + 1);
		if (n < 0 || (size_t)n != need || enc[n] != 0)
			fuzz_fail("encoded length");
		free(enc);
		admin_arg_append(&again, d, argv[i].len);
		struct admin_buf js = {0};
		admin_json_bytes(&js, d, argv[i].len);
		for (size_t k = 0; k < js.len; k++)
			if ((unsigned char)js.data[k] < 0x20)
				fuzz_fail("control byte in JSON");
		free(js.data);
		fuzz_token(&argv[i]);
	}
	if (again.failed)
		abort();
	/* admin_arg_append() writes no space before a first token, so an
	 * empty first token vanishes (harmless: argv[0] is the command and
	 * never empty); compare only lines whose first token has bytes. */
	if (argc > 0 && argv[0].len > 0) {
		char *l2 = malloc(again.len + 1);
		if (l2 == NULL)
			abort();
		memcpy(l2, again.data, again.len);
		struct admin_arg argv2[ADMIN_ARGS_MAX];
		size_t argc2 = 0;
		if (admin_line_split(l2, again.len, argv2, ADMIN_ARGS_MAX,
				     &argc2, &why) != 0 ||
		    argc2 != argc)
			fuzz_fail("re-encoded line does not split the same");
		for (size_t i = 0; i < argc; i++)
			if (argv2[i].len != argv[i].len ||
			    memcmp(argv2[i].data, argv[i].data, argv[i].len))
				fuzz_fail("re-encoded token differs");
		free(l2);
	}
	free(again.data);
	free(line);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data;
	size_t left = size;
	while (left > 0) {
		const uint8_t *nl = memchr(p, '\n', left);
		size_t len = nl != NULL ? (size_t)(nl - p) : left;
		if (len <= ADMIN_LINE_MAX)
			fuzz_line(p, len);
		size_t used = nl != NULL ? len + 1 : len;
		p += used;
		left -= used;
	}
	struct seal_keyring ring;
	int err_line = 0;
	if (seal_keyring_parse(&ring, (const char *)data, size, &err_line) ==
		0 &&
	    (ring.count == 0 || ring.count > SEAL_MAX_KEYS))
		fuzz_fail("keyring count");
	struct capfile cf;
	const char *why = NULL;
	(void)capfile_parse((const char *)data, size, &cf, &why);
	return 0;
}
