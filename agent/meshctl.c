/*
 * meshctl - asks the local meshd over DIR/meshd.sock.
 *
 *   meshctl [--data-dir DIR] status [--json]
 *   meshctl [--data-dir DIR] members [--json]
 *   meshctl [--data-dir DIR] packs [--json]
 *   meshctl [--data-dir DIR] place NAME [--json]
 *   meshctl [--data-dir DIR] pack add|rm|ls|show|history ...
 *   meshctl [--data-dir DIR] drain|undrain
 *   meshctl [--data-dir DIR] leave
 *   meshctl [--data-dir DIR] tenant SUBCOMMAND ...
 *   meshctl keygen [--out FILE [--force]]
 *   meshctl [--data-dir DIR] keyring list [--json] | reload
 *   meshctl keyring check FILE
 *
 * A request is one line of percent-encoded tokens (admin.h); the answer
 * ends at a NUL byte or when the agent closes.
 *
 * Tenants: `tenant create` makes the tenant's Ed25519 key pair here, so the
 * secret key never reaches an agent; `tenant grant` signs narrower
 * capabilities offline with it. Every other tenant command is forwarded
 * with the capability's text (never the key) appended as `--cap`.
 */
#include "admin.h"
#include "capfile.h"
#include "mesh_err.h"
#include "seal.h"

#include <errno.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MESHCTL_DEFAULT_DIR "/var/lib/packmesh"
#define MESHCTL_TIMEOUT_S 5
/* A tenant write with --ack all waits for every replica, and a forwarded
 * one for a hop more: give them longer than the agent's own request
 * timeout, so the agent's answer (not ours) says what went wrong. */
#define MESHCTL_TENANT_TIMEOUT_S 30

static void
meshctl_usage(FILE *f)
{
	fprintf(
	    f, "usage: meshctl [--data-dir DIR] status|members [--json]\n"
	       "       meshctl [--data-dir DIR] packs [--json]\n"
	       "       meshctl [--data-dir DIR] place NAME [--json]\n"
	       "       meshctl [--data-dir DIR] pack add NAME [--mem MiB] "
	       "[--replicas R]\n"
	       "               [--zone Z] [--region R] [--tenant T] "
	       "[--label K=V]... [--json]\n"
	       "       meshctl [--data-dir DIR] pack rm|show|history NAME "
	       "[--json]\n"
	       "       meshctl [--data-dir DIR] pack ls [--json]\n"
	       "       meshctl [--data-dir DIR] drain|undrain|leave\n"
	       "       meshctl keygen [--out FILE [--force]]\n"
	       "       meshctl [--data-dir DIR] keyring list [--json] | "
	       "keyring reload\n"
	       "       meshctl keyring check FILE\n"
	       "       meshctl [--data-dir DIR] tenant create T [--cap FILE] "
	       "[--json]\n"
	       "       meshctl tenant grant T --rights R [--ttl D] [--json]\n"
	       "       meshctl [--data-dir DIR] tenant ls [--json]\n"
	       "       meshctl [--data-dir DIR] tenant put T KEY VALUE "
	       "[--ack one|quorum|all] [--lww] [--map M] [--json]\n"
	       "       meshctl [--data-dir DIR] tenant get T KEY [--json]\n"
	       "       meshctl [--data-dir DIR] tenant inc T KEY [N] "
	       "[--json]\n"
	       "       meshctl [--data-dir DIR] tenant add T KEY ELEM "
	       "[--json]\n"
	       "       meshctl [--data-dir DIR] tenant rm T KEY [ELEM] "
	       "[--json]\n"
	       "       meshctl [--data-dir DIR] tenant keys T [--json]\n"
	       "       meshctl [--data-dir DIR] tenant digest T [--json]\n"
	       "DIR defaults to $MESH_DATA_DIR, then " MESHCTL_DEFAULT_DIR ".\n"
	       "Tenant commands take the capability from --cap FILE, else "
	       "$MESH_CAP (the\n"
	       "file's text, or its path when it starts with '/' or './'). "
	       "`tenant create`\n"
	       "prints a capability file with the tenant's secret key: keep "
	       "it; `tenant grant`\n"
	       "needs it and prints capabilities without the key. R is "
	       "read,write,admin or\n"
	       "letters (rw); D is like 30s, 15m, 24h, 7d.\n"
	       "keygen --out creates FILE with mode 0600 (never "
	       "overwrites one unless\n"
	       "--force); `keyring reload` makes the agent re-read its "
	       "--keyring file, as\n"
	       "SIGHUP does; `keyring list` shows fingerprints, never "
	       "keys.\n");
}

/* ---- the admin socket ---------------------------------------------------- */

/*
 * Sends the request @req (tokens, no '\n') to the agent of @dir and reads
 * the answer into @answer (NUL-terminated, NUL excluded from len). Returns
 * 0 or 1 after printing why.
 */
/* Set once meshctl_ask() has handed a whole request to the agent: after
 * that, a missing answer does not mean the request was not carried out. */
static bool meshctl_delivered;

static int
meshctl_ask(const char *dir, const struct admin_buf *req, int timeout_s,
	    struct admin_buf *answer)
{
	if (req->failed) {
		fprintf(stderr, "meshctl: out of memory\n");
		return 1;
	}
	if (req->len > ADMIN_LINE_MAX) {
		fprintf(stderr,
			"meshctl: request too long (%zu bytes encoded, at "
			"most %d)\n",
			req->len, ADMIN_LINE_MAX);
		return 1;
	}
	struct sockaddr_un sa = {0};
	sa.sun_family = AF_UNIX;
	int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir,
			 ADMIN_SOCKET_NAME);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
		fprintf(stderr, "meshctl: data dir path too long: %s\n", dir);
		return 1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "meshctl: socket: %s\n", strerror(errno));
		return 1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		fprintf(stderr, "meshctl: no agent running at %s (%s)\n",
			sa.sun_path, strerror(errno));
		close(fd);
		return 1;
	}
	struct timeval tv = {timeout_s, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	/* The line and its '\n'; then EOF, so the agent closes after the
	 * answer even if we stop reading early. */
	const char *p = req->data;
	size_t left = req->len;
	for (int part = 0; part < 2; part++) {
		while (left > 0) {
			ssize_t w = send(fd, p, left, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				fprintf(stderr,
					"meshctl: cannot send to agent: %s\n",
					strerror(errno));
				close(fd);
				return 1;
			}
			p += w;
			left -= (size_t)w;
		}
		p = "\n";
		left = part == 0 ? 1 : 0;
	}
	shutdown(fd, SHUT_WR);
	meshctl_delivered = true;
	for (;;) {
		char buf[65536];
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "meshctl: no answer from agent: %s\n",
				strerror(errno));
			close(fd);
			return 1;
		}
		if (r == 0)
			break; /* an agent of before the NUL terminator */
		char *nul = memchr(buf, 0, (size_t)r);
		size_t take = nul ? (size_t)(nul - buf) : (size_t)r;
		admin_printf(answer, "%.*s", (int)take, buf);
		if (nul != NULL)
			break;
	}
	close(fd);
	if (answer->failed) {
		fprintf(stderr, "meshctl: out of memory\n");
		return 1;
	}
	if (answer->len == 0) {
		fprintf(stderr, "meshctl: agent closed without answering\n");
		return 1;
	}
	return 0;
}

/* Prints an answer: "error: ..." to stderr (exit 1), anything else to
 * stdout (exit 0). */
static int
meshctl_print(const struct admin_buf *answer)
{
	if (strncmp(answer->data, "error: ", 7) == 0) {
		fprintf(stderr, "meshctl: %s", answer->data + 7);
		if (answer->data[answer->len - 1] != '\n')
			fputc('\n', stderr);
		return 1;
	}
	fputs(answer->data, stdout);
	return 0;
}

static int
meshctl_ask_print(const char *dir, const struct admin_buf *req, int timeout_s)
{
	struct admin_buf answer = {0};
	int rc = meshctl_ask(dir, req, timeout_s, &answer);
	if (rc == 0)
		rc = meshctl_print(&answer);
	free(answer.data);
	return rc;
}

static void
meshctl_token(struct admin_buf *b, const char *s)
{
	admin_arg_append(b, s, strlen(s));
}

/* ---- capabilities ------------------------------------------------------- */

/*
 * Loads the capability of --cap @file, else of $MESH_CAP. Returns 0 (in
 * @f), 2 when there is none, 1 after printing why it is unusable.
 */
static int
meshctl_cap_load(const char *file, struct capfile *f)
{
	const char *why = "";
	int rc;
	const char *what;
	if (file != NULL) {
		what = file;
		rc = capfile_load(file, f, &why);
	} else {
		const char *env = getenv("MESH_CAP");
		if (env == NULL || env[0] == 0)
			return 2;
		if (env[0] == '/' || strncmp(env, "./", 2) == 0) {
			what = env;
			rc = capfile_load(env, f, &why);
		} else {
			what = "$MESH_CAP";
			rc = capfile_parse(env, strlen(env), f, &why);
		}
	}
	if (rc != 0) {
		fprintf(stderr, "meshctl: %s: %s%s%s\n", what,
			why[0] ? why : mesh_strerror(rc),
			rc == MESH_EIO ? ": " : "",
			rc == MESH_EIO ? strerror(errno) : "");
		return 1;
	}
	return 0;
}

/* Copies the rest of an agent's JSON object answer @obj into @out as
 * more members (",..."), leaving out those named in @skip. Returns false
 * when @obj is not a JSON object. */
static bool
meshctl_json_merge(const char *obj, const char *const *skip,
		   struct admin_buf *out)
{
	const char *p = obj;
	while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
		p++;
	if (*p++ != '{')
		return false;
	for (;;) {
		while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r' ||
		       *p == ',')
			p++;
		if (*p == '}')
			return true;
		if (*p != '"')
			return false;
		const char *start = p, *key = p + 1;
		/* The key, then the value up to a ',' or '}' outside any
		 * string or nesting. */
		p++;
		while (*p && *p != '"')
			p += *p == '\\' && p[1] ? 2 : 1;
		if (*p != '"')
			return false;
		size_t klen = (size_t)(p - key);
		p++;
		int depth = 0;
		bool in_str = false;
		for (; *p; p++) {
			if (in_str) {
				if (*p == '\\' && p[1])
					p++;
				else if (*p == '"')
					in_str = false;
			} else if (*p == '"') {
				in_str = true;
			} else if (*p == '{' || *p == '[') {
				depth++;
			} else if (*p == '}' || *p == ']') {
				if (depth == 0)
					break;
				depth--;
			} else if (*p == ',' && depth == 0) {
				break;
			}
		}
		if (*p == 0)
			return false;
		bool skipped = false;
		for (size_t i = 0; skip[i] != NULL; i++)
			if (strlen(skip[i]) == klen &&
			    memcmp(skip[i], key, klen) == 0)
				skipped = true;
		if (!skipped)
			admin_printf(out, ",%.*s", (int)(p - start), start);
	}
}

/*
 * tenant create T [--cap FILE]: a fresh key pair, or the one in FILE (a
 * capability file of T with its key line) to repeat a create that may
 * have committed: the agents acknowledge the same key again.
 */
static int
meshctl_tenant_create(const char *dir, const char *tenant, bool json,
		      const char *cap_file)
{
	uint8_t seed[CAPFILE_SEED_BYTES], pub[TENANT_PUBKEY_BYTES];
	uint8_t cap[TENANT_CAP_MAX];
	size_t cap_len;
	char pubtext[CAPFILE_PUBKEY_TEXT_MAX];
	uint32_t all = TENANT_READ | TENANT_WRITE | TENANT_ADMIN;
	int rc;
	if (cap_file != NULL) {
		struct capfile f;
		if (meshctl_cap_load(cap_file, &f) != 0)
			return 1;
		if (!f.has_key || strcmp(f.info.tenant, tenant) != 0) {
			fprintf(stderr,
				"meshctl: %s: not the key of tenant '%s' (it "
				"needs the key line that create printed)\n",
				cap_file, tenant);
			sodium_memzero(&f, sizeof(f));
			return 1;
		}
		memcpy(seed, f.seed, sizeof(seed));
		memcpy(pub, f.info.tenant_key, sizeof(pub));
		sodium_memzero(&f, sizeof(f));
		rc = 0;
	} else {
		rc = capfile_keypair(seed, pub);
	}
	if (rc == 0)
		rc = capfile_make(seed, tenant, all, 0, cap, sizeof(cap),
				  &cap_len);
	if (rc == 0)
		rc = capfile_encode_pubkey(pub, pubtext, sizeof(pubtext));
	if (rc == MESH_EINVAL) {
		fprintf(stderr,
			"meshctl: a tenant id is 1..%d printable ASCII "
			"bytes\n",
			TENANT_ID_MAX);
		sodium_memzero(seed, sizeof(seed));
		return 2;
	}
	if (rc != 0) {
		fprintf(stderr, "meshctl: cannot make the tenant's key: %s\n",
			mesh_strerror(rc));
		sodium_memzero(seed, sizeof(seed));
		return 1;
	}
	struct admin_buf req = {0}, answer = {0};
	meshctl_token(&req, "tenant");
	meshctl_token(&req, "create");
	meshctl_token(&req, tenant);
	meshctl_token(&req, "--key");
	meshctl_token(&req, pubtext);
	if (json)
		meshctl_token(&req, "--json");
	rc = meshctl_ask(dir, &req, MESHCTL_TENANT_TIMEOUT_S, &answer);
	free(req.data);
	/* Refused for certain (taken, bad id, no access) or never sent:
	 * the key pair is forgotten. Otherwise (no quorum in time, no
	 * replica answered, no answer at all) the create may have committed
	 * somewhere: the capability file is printed all the same, so the key
	 * is not lost, and a retry with it (--cap) is safe. */
	bool unsure = rc != 0 && meshctl_delivered;
	if (rc == 0 && strncmp(answer.data, "error: ", 7) == 0) {
		rc = meshctl_print(&answer);
		unsure = strstr(answer.data, "(MESH_EEXIST)") == NULL &&
			 strstr(answer.data, "(MESH_EINVAL)") == NULL &&
			 strstr(answer.data, "(MESH_EAUTH)") == NULL;
	}
	if (rc != 0 && !unsure) {
		free(answer.data);
		sodium_memzero(seed, sizeof(seed));
		return rc;
	}
	if (unsure) {
		fprintf(stderr,
			"meshctl: the create may have been applied on some "
			"replicas: keep the capability printed, and retry "
			"with: meshctl tenant create %s --cap FILE\n",
			tenant);
		free(answer.data);
		answer = (struct admin_buf){0};
		admin_printf(&answer, "{\"applied\":\"unknown\"}");
	}
	char text[CAPFILE_TEXT_MAX];
	if (json) {
		char ctext[CAPFILE_CAP_TEXT_MAX], ktext[CAPFILE_KEY_TEXT_MAX];
		struct admin_buf out = {0};
		capfile_encode_cap_text(cap, cap_len, ctext, sizeof(ctext));
		capfile_encode_key_text(seed, ktext, sizeof(ktext));
		admin_printf(&out, "{\"tenant\":");
		admin_json_str(&out, tenant);
		admin_printf(&out,
			     ",\"cap\":\"%s\",\"key\":\"%s\","
			     "\"rights\":\"read,write,admin\"",
			     ctext, ktext);
		static const char *const ours[] = {"tenant", "cap", "key",
						   "rights", NULL};
		if (!meshctl_json_merge(answer.data, ours, &out)) {
			admin_printf(&out, ",\"agent\":");
			admin_json_str(&out, answer.data);
		}
		admin_printf(&out, "}\n");
		if (!out.failed)
			fputs(out.data, stdout);
		else
			rc = 1;
		sodium_memzero(ktext, sizeof(ktext));
		if (out.data != NULL)
			sodium_memzero(out.data, out.cap);
		free(out.data);
	} else {
		/* stdout is the capability file; the agent's words go to
		 * the terminal. */
		if (!unsure) {
			fputs(answer.data, stderr);
			if (answer.data[answer.len - 1] != '\n')
				fputc('\n', stderr);
		}
		rc = capfile_format(cap, cap_len, seed, text, sizeof(text));
		if (rc == 0)
			fputs(text, stdout);
		sodium_memzero(text, sizeof(text));
	}
	if (rc != 0)
		fprintf(stderr, "meshctl: cannot print the capability\n");
	free(answer.data);
	sodium_memzero(seed, sizeof(seed));
	return rc == 0 && !unsure ? 0 : 1;
}

static int
meshctl_tenant_grant(const char *tenant, const char *rights_text,
		     const char *ttl_text, const char *cap_file, bool json)
{
	uint32_t rights;
	uint64_t ttl = 0;
	if (rights_text == NULL) {
		fprintf(stderr, "meshctl: tenant grant needs --rights\n");
		return 2;
	}
	if (tenant_rights_parse(rights_text, &rights) != 0) {
		fprintf(stderr,
			"meshctl: --rights '%s': say read,write,admin or "
			"letters such as rw\n",
			rights_text);
		return 2;
	}
	if (ttl_text != NULL && capfile_ttl_parse(ttl_text, &ttl) != 0) {
		fprintf(stderr,
			"meshctl: --ttl '%s': say 30s, 15m, 24h or 7d\n",
			ttl_text);
		return 2;
	}
	struct capfile issuer;
	int rc = meshctl_cap_load(cap_file, &issuer);
	if (rc == 2) {
		fprintf(stderr, "meshctl: tenant grant needs the capability "
				"file of `tenant create` (--cap FILE or "
				"$MESH_CAP)\n");
		return 1;
	}
	if (rc != 0)
		return 1;
	char have[32], want[32];
	tenant_rights_format(issuer.info.rights, have, sizeof(have));
	tenant_rights_format(rights, want, sizeof(want));
	uint64_t now = (uint64_t)time(NULL);
	uint64_t expires = ttl ? now + ttl : 0;
	uint64_t limit = issuer.info.expires_unix_s;
	const char *refuse = NULL;
	if (!issuer.has_key)
		refuse = "the capability has no key: line (only `tenant "
			 "create` prints one)";
	else if (strcmp(issuer.info.tenant, tenant) != 0)
		refuse = "the capability is for another tenant";
	else if (!(issuer.info.rights & TENANT_ADMIN))
		refuse = "the capability lacks admin";
	else if ((rights & ~issuer.info.rights) != 0)
		refuse = "cannot grant rights the capability lacks";
	else if (limit != 0 && now >= limit)
		refuse = "the capability expired";
	else if (limit != 0 && expires > limit)
		refuse = "the grant would outlive the capability (shorter "
			 "--ttl)";
	if (refuse != NULL) {
		fprintf(stderr, "meshctl: %s (it is for tenant '%s', %s)\n",
			refuse, issuer.info.tenant, have);
		sodium_memzero(&issuer, sizeof(issuer));
		return 1;
	}
	if (expires == 0)
		expires = limit; /* no --ttl: as long as the issuer */
	uint8_t cap[TENANT_CAP_MAX];
	size_t cap_len;
	rc = capfile_make(issuer.seed, tenant, rights, expires, cap,
			  sizeof(cap), &cap_len);
	sodium_memzero(&issuer, sizeof(issuer));
	if (rc != 0) {
		fprintf(stderr, "meshctl: cannot sign: %s\n",
			mesh_strerror(rc));
		return 1;
	}
	if (json) {
		char ctext[CAPFILE_CAP_TEXT_MAX];
		struct admin_buf out = {0};
		capfile_encode_cap_text(cap, cap_len, ctext, sizeof(ctext));
		admin_printf(&out, "{\"tenant\":");
		admin_json_str(&out, tenant);
		admin_printf(&out,
			     ",\"cap\":\"%s\",\"rights\":\"%s\","
			     "\"expires_unix_s\":%llu}\n",
			     ctext, want, (unsigned long long)expires);
		rc = out.failed ? 1 : 0;
		if (rc == 0)
			fputs(out.data, stdout);
		free(out.data);
		return rc;
	}
	char text[CAPFILE_TEXT_MAX];
	if (capfile_format(cap, cap_len, NULL, text, sizeof(text)) != 0) {
		fprintf(stderr, "meshctl: cannot print the capability\n");
		return 1;
	}
	fputs(text, stdout);
	return 0;
}

static bool
meshctl_is(const char *s, const char *const *set)
{
	for (size_t i = 0; set[i] != NULL; i++)
		if (strcmp(s, set[i]) == 0)
			return true;
	return false;
}

/* meshctl [...] tenant SUB ARGS... (@argv[0] is SUB). */
static int
meshctl_tenant(const char *dir, int argc, char **argv)
{
	if (argc < 1) {
		fprintf(stderr, "meshctl: tenant needs a subcommand\n");
		meshctl_usage(stderr);
		return 2;
	}
	const char *sub = argv[0];
	const char *cap_file = NULL, *rights = NULL, *ttl = NULL;
	bool json = false;
	/* Arguments meshctl keeps to itself come out; the rest goes to the
	 * agent in order. */
	const char **fwd = calloc((size_t)argc + 1, sizeof(*fwd));
	if (fwd == NULL) {
		fprintf(stderr, "meshctl: out of memory\n");
		return 1;
	}
	int nfwd = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--cap") == 0 && i + 1 < argc)
			cap_file = argv[++i];
		else if (strncmp(a, "--cap=", 6) == 0)
			cap_file = a + 6;
		else if (strcmp(a, "--data-dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(sub, "grant") == 0 &&
			 strcmp(a, "--rights") == 0 && i + 1 < argc)
			rights = argv[++i];
		else if (strcmp(sub, "grant") == 0 && strcmp(a, "--ttl") == 0 &&
			 i + 1 < argc)
			ttl = argv[++i];
		else {
			if (strcmp(a, "--json") == 0)
				json = true;
			fwd[nfwd++] = a;
		}
	}
	int rc;
	if (strcmp(sub, "create") == 0 || strcmp(sub, "grant") == 0) {
		/* T and perhaps --json, nothing else. */
		const char *tenant = NULL;
		bool bad = false;
		for (int i = 0; i < nfwd; i++) {
			if (strcmp(fwd[i], "--json") == 0)
				continue;
			if (tenant == NULL && fwd[i][0] != '-')
				tenant = fwd[i];
			else
				bad = true;
		}
		if (tenant == NULL || bad) {
			fprintf(stderr, "meshctl: usage: tenant %s\n",
				strcmp(sub, "create") == 0
				    ? "create T [--cap FILE] [--json]"
				    : "grant T --rights R [--ttl D] "
				      "[--cap FILE] [--json]");
			rc = 2;
		} else if (strcmp(sub, "create") == 0) {
			rc = meshctl_tenant_create(dir, tenant, json, cap_file);
		} else {
			rc = meshctl_tenant_grant(tenant, rights, ttl, cap_file,
						  json);
		}
		free(fwd);
		return rc;
	}
	struct admin_buf req = {0};
	meshctl_token(&req, "tenant");
	meshctl_token(&req, sub);
	for (int i = 0; i < nfwd; i++)
		meshctl_token(&req, fwd[i]);
	/* `tenant ls` lists what this node holds: no tenant, no cap. */
	if (strcmp(sub, "ls") != 0) {
		struct capfile f;
		rc = meshctl_cap_load(cap_file, &f);
		if (rc == 1) {
			free(fwd);
			free(req.data);
			return 1;
		}
		if (rc == 0) {
			/* A capability of another tenant opens nothing: say
			 * so here rather than have the agent refuse it. */
			static const char *const with_tenant[] = {
			    "put", "get",  "inc",    "add",
			    "rm",  "keys", "digest", NULL};
			if (meshctl_is(sub, with_tenant) && nfwd > 0 &&
			    fwd[0][0] != '-' &&
			    strcmp(fwd[0], f.info.tenant) != 0) {
				fprintf(stderr,
					"meshctl: the capability is for "
					"tenant '%s', not '%s'\n",
					f.info.tenant, fwd[0]);
				sodium_memzero(&f, sizeof(f));
				free(fwd);
				free(req.data);
				return 1;
			}
			char ctext[CAPFILE_CAP_TEXT_MAX];
			capfile_encode_cap_text(f.cap, f.cap_len, ctext,
						sizeof(ctext));
			meshctl_token(&req, "--cap");
			meshctl_token(&req, ctext);
			sodium_memzero(&f, sizeof(f));
		}
	}
	free(fwd);
	rc = meshctl_ask_print(dir, &req, MESHCTL_TENANT_TIMEOUT_S);
	free(req.data);
	return rc;
}

/* ---- keys ---------------------------------------------------------------- */

/* Writes all of @text to @fd: 0 or an errno. */
static int
meshctl_write_all(int fd, const char *text, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, text, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return errno;
		text += w;
		len -= (size_t)w;
	}
	return 0;
}

/*
 * Writes the keyring @text to a new file @path, mode 0600 from its
 * creation (O_EXCL: an existing file is refused). With @force an existing
 * @path is replaced at once by a rename, so an agent re-reading it sees
 * the old file or the new one, never half of one. Returns 0 or 1 after
 * printing why.
 */
static int
meshctl_write_keyring(const char *path, const char *text, bool force)
{
	char tmp[4096];
	const char *target = path;
	int fd;
	if (force) {
		int n = snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
		if (n < 0 || (size_t)n >= sizeof(tmp)) {
			fprintf(stderr, "meshctl: path too long: %s\n", path);
			return 1;
		}
		fd = mkstemp(tmp); /* 0600, O_EXCL */
		target = tmp;
	} else {
		fd = open(path,
			  O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			  0600);
	}
	if (fd < 0) {
		if (errno == EEXIST)
			fprintf(stderr,
				"meshctl: %s exists: not overwriting a keyring "
				"(--force replaces it)\n",
				path);
		else
			fprintf(stderr, "meshctl: cannot create %s: %s\n",
				target, strerror(errno));
		return 1;
	}
	/* The umask only takes bits away; a strict one must not leave the
	 * owner unable to read the key. */
	int err = fchmod(fd, 0600) != 0 ? errno : 0;
	if (err == 0)
		err = meshctl_write_all(fd, text, strlen(text));
	if (err == 0 && fsync(fd) != 0)
		err = errno;
	if (close(fd) != 0 && err == 0)
		err = errno;
	if (err == 0 && force && rename(tmp, path) != 0)
		err = errno;
	if (err != 0) {
		fprintf(stderr, "meshctl: cannot write %s: %s\n", path,
			strerror(err));
		unlink(target);
		return 1;
	}
	return 0;
}

/* Keeps a key printed to a regular file from landing where group or others
 * can read it: a file of ours is set to 0600 before the key is written
 * (`meshctl keygen > keyring` under the usual umask), another is warned
 * about. Pipes and terminals are left alone. */
static void
meshctl_guard_stdout(void)
{
	struct stat st;
	if (fstat(STDOUT_FILENO, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (st.st_mode & 077) == 0)
		return;
	unsigned mode = (unsigned)(st.st_mode & 07777);
	if (st.st_uid == geteuid() && fchmod(STDOUT_FILENO, 0600) == 0) {
		fprintf(stderr,
			"meshctl: stdout is a file of mode %04o: set it to "
			"0600 before writing the key (--out FILE creates it "
			"0600)\n",
			mode);
		return;
	}
	fprintf(stderr,
		"meshctl: warning: stdout is a file of mode %04o that group or "
		"others can read, and it cannot be changed here (%s): the key "
		"is exposed; use --out FILE\n",
		mode, st.st_uid == geteuid() ? strerror(errno) : "not ours");
}

/* meshctl keygen [--out FILE [--force]] (@argv after "keygen"). */
static int
meshctl_keygen(int argc, char **argv)
{
	const char *out = NULL;
	bool force = false;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--out") == 0 && i + 1 < argc && !out) {
			out = argv[++i];
		} else if (strncmp(argv[i], "--out=", 6) == 0 && !out) {
			out = argv[i] + 6;
		} else if (strcmp(argv[i], "--force") == 0) {
			force = true;
		} else {
			fprintf(stderr, "meshctl: usage: keygen [--out FILE "
					"[--force]]\n");
			return 2;
		}
	}
	if (force && out == NULL) {
		fprintf(stderr, "meshctl: --force goes with --out FILE\n");
		return 2;
	}
	if (out != NULL && out[0] == 0) {
		fprintf(stderr, "meshctl: --out needs a file name\n");
		return 2;
	}
	char text[256];
	struct seal_keyring ring;
	if (seal_init() != 0 ||
	    seal_keyring_generate(text, sizeof(text)) != 0 ||
	    seal_keyring_parse(&ring, text, strlen(text), NULL) != 0) {
		fprintf(stderr, "meshctl: cannot generate a key\n");
		return 1;
	}
	char fp[SEAL_FINGERPRINT_HEX + 1];
	seal_key_fingerprint(ring.keys[0], fp);
	sodium_memzero(&ring, sizeof(ring));
	int rc = 0;
	if (out != NULL) {
		rc = meshctl_write_keyring(out, text, force);
		if (rc == 0)
			printf("wrote %s (mode 0600): 1 key, fingerprint %s\n",
			       out, fp);
	} else {
		meshctl_guard_stdout();
		if (fputs(text, stdout) == EOF || fflush(stdout) != 0) {
			fprintf(stderr, "meshctl: cannot write the key: %s\n",
				strerror(errno));
			rc = 1;
		}
	}
	sodium_memzero(text, sizeof(text));
	return rc;
}

/* meshctl keyring check FILE: what an agent would say of FILE, with no
 * agent; lists fingerprints. */
static int
meshctl_keyring_check(const char *path)
{
	struct seal_keyring ring;
	struct seal_file f;
	if (seal_init() != 0) {
		fprintf(stderr, "meshctl: libsodium failed to initialise\n");
		return 1;
	}
	int rc = seal_keyring_read(&ring, path, geteuid(),
				   SEAL_FILE_INSECURE_OK, &f);
	if (rc != 0) {
		if (rc == MESH_EIO)
			fprintf(stderr, "meshctl: %s: %s\n", path,
				strerror(f.sys_errno));
		else if (f.err_line > 0)
			fprintf(stderr, "meshctl: %s line %d: %s\n", path,
				f.err_line,
				rc == MESH_ERANGE ? "too many keys"
						  : "not a base64 32-byte key");
		else
			fprintf(stderr, "meshctl: %s: %s\n", path,
				f.not_regular	    ? "not a regular file"
				: rc == MESH_ENOENT ? "no key in the file"
						    : mesh_strerror(rc));
		return 1;
	}
	printf("%s (mode %04o): %u key%s\n", path, f.mode, ring.count,
	       ring.count == 1 ? "" : "s");
	for (unsigned i = 0; i < ring.count; i++) {
		char fp[SEAL_FINGERPRINT_HEX + 1];
		seal_key_fingerprint(ring.keys[i], fp);
		printf("  %-10s %s\n", i == 0 ? "primary" : "accepted", fp);
	}
	sodium_memzero(&ring, sizeof(ring));
	if (f.loose)
		fprintf(stderr,
			"meshctl: %s: mode %04o lets group or others read or "
			"change it; meshd refuses it (chmod 600 %s)\n",
			path, f.mode, path);
	if (f.foreign)
		fprintf(stderr,
			"meshctl: %s: owned by uid %lu, not by us (uid %lu) or "
			"root; meshd running as us refuses it\n",
			path, f.uid, (unsigned long)geteuid());
	return f.loose || f.foreign ? 1 : 0;
}

/* meshctl [...] keyring list|reload|check ... (@argv after "keyring"). */
static int
meshctl_keyring(const char *dir, int argc, char **argv)
{
	const char *sub = argc > 0 ? argv[0] : "";
	bool json = false, bad = false;
	const char *file = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0 && strcmp(sub, "list") == 0)
			json = true;
		else if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(sub, "check") == 0 && file == NULL)
			file = argv[i];
		else
			bad = true;
	}
	if (strcmp(sub, "check") == 0 && !bad && file != NULL)
		return meshctl_keyring_check(file);
	if (bad || (strcmp(sub, "list") != 0 && strcmp(sub, "reload") != 0)) {
		fprintf(stderr, "meshctl: usage: keyring list [--json] | "
				"keyring reload | keyring check FILE\n");
		return 2;
	}
	struct admin_buf req = {0};
	meshctl_token(&req, "keyring");
	meshctl_token(&req, sub);
	if (json)
		meshctl_token(&req, "--json");
	int rc = meshctl_ask_print(dir, &req, MESHCTL_TIMEOUT_S);
	free(req.data);
	return rc;
}

/* ---- main ---------------------------------------------------------------- */

int
main(int argc, char **argv)
{
	const char *dir = getenv("MESH_DATA_DIR");
	if (dir == NULL || dir[0] == 0)
		dir = MESHCTL_DEFAULT_DIR;
	int i = 1;
	while (i < argc && strncmp(argv[i], "--", 2) == 0) {
		if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc) {
			dir = argv[i + 1];
			i += 2;
		} else if (strncmp(argv[i], "--data-dir=", 11) == 0) {
			dir = argv[i] + 11;
			i++;
		} else if (strcmp(argv[i], "--help") == 0) {
			meshctl_usage(stdout);
			return 0;
		} else {
			break;
		}
	}
	if (i >= argc) {
		meshctl_usage(stderr);
		return 2;
	}
	const char *cmd = argv[i++];
	if (strcmp(cmd, "keygen") == 0)
		return meshctl_keygen(argc - i, argv + i);
	if (strcmp(cmd, "keyring") == 0)
		return meshctl_keyring(dir, argc - i, argv + i);
	if (strcmp(cmd, "tenant") == 0)
		return meshctl_tenant(dir, argc - i, argv + i);
	if (strcmp(cmd, "pack") == 0) {
		/* The agent checks the arguments: forward them as they are. */
		if (i == argc) {
			fprintf(stderr, "meshctl: pack needs a subcommand\n");
			meshctl_usage(stderr);
			return 2;
		}
		struct admin_buf req = {0};
		meshctl_token(&req, "pack");
		for (; i < argc; i++)
			meshctl_token(&req, argv[i]);
		int rc = meshctl_ask_print(dir, &req, MESHCTL_TIMEOUT_S);
		free(req.data);
		return rc;
	}
	const char *arg = NULL;
	int json = 0;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = 1;
		} else if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc) {
			dir = argv[++i];
		} else if (strcmp(cmd, "place") == 0 && arg == NULL &&
			   argv[i][0] != '-' && strlen(argv[i]) <= 128) {
			arg = argv[i];
		} else {
			fprintf(stderr, "meshctl: unexpected argument '%s'\n",
				argv[i]);
			meshctl_usage(stderr);
			return 2;
		}
	}
	bool with_json = strcmp(cmd, "status") == 0 ||
			 strcmp(cmd, "members") == 0 ||
			 strcmp(cmd, "packs") == 0 || strcmp(cmd, "place") == 0;
	if (!with_json && strcmp(cmd, "leave") != 0 &&
	    strcmp(cmd, "drain") != 0 && strcmp(cmd, "undrain") != 0) {
		fprintf(stderr, "meshctl: unknown command '%s'\n", cmd);
		meshctl_usage(stderr);
		return 2;
	}
	if (json && !with_json) {
		fprintf(stderr, "meshctl: %s takes no --json\n", cmd);
		return 2;
	}
	if (strcmp(cmd, "place") == 0 && arg == NULL) {
		fprintf(stderr, "meshctl: place needs a pack name\n");
		return 2;
	}
	struct admin_buf req = {0};
	meshctl_token(&req, cmd);
	if (arg != NULL)
		meshctl_token(&req, arg);
	if (json)
		meshctl_token(&req, "--json");
	int rc = meshctl_ask_print(dir, &req, MESHCTL_TIMEOUT_S);
	free(req.data);
	return rc;
}
