/*
 * tenant-load - a load generator for the tenant commands of meshd's admin
 * socket (agent/io/admin.h), for bench/tenant-bench.py (issue 11 item 9).
 *
 * One thread, non-blocking unix sockets under poll(): --conns connections
 * to each --sock, each with up to --window requests in flight (the admin
 * protocol answers in order, one NUL-terminated answer per line, so the
 * send times of a connection are a FIFO). Every request gets a global
 * sequence number s; it goes to tenant s mod T and, for writes, to key
 * PREFIX-s (unique) or PREFIX-((s / T) mod K) with --keyspace K (the same
 * keys again and again, for concurrent writers). Latency is the time from
 * queuing the line on the socket to reading its answer's NUL.
 *
 *   tenant-load --sock DIR/meshd.sock [--sock ...] --tenants FILE
 *               [--op put|inc|get] [--ack one|quorum|all] [--value-size N]
 *               [--count N | --duration S] [--conns N] [--window W]
 *               [--rate R] [--prefix P] [--keyspace K] [--drain-s S]
 *   tenant-load --sock ... --op create --count N --prefix P --out FILE
 *
 * --tenants FILE holds "TENANT CAPTEXT" lines (what --op create --out
 * writes); --tenant T --cap TEXT adds one by hand. --op create makes N
 * tenants PREFIX-00000.. with fresh Ed25519 key pairs (libsodium, through
 * capfile.h) and writes the lines of those the agent created to --out.
 * It prints one JSON object: requests, answers, errors by their first
 * words, elapsed seconds (first request to last answer), rate and latency
 * percentiles in milliseconds.
 */
#include "admin.h"
#include "capfile.h"
#include "mesh_err.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define TENANT_LOAD_SOCKS_MAX 64
#define TENANT_LOAD_ERRORS_MAX 32
/* Bytes of an answer kept to classify it. */
#define TENANT_LOAD_HEAD 96

struct tenant_load_tenant {
	char *id;
	char *cap; /* pmcap1 text */
};

struct tenant_load_conn {
	int fd;
	unsigned sock;
	char *out; /* request bytes not yet written */
	size_t out_len, out_off, out_cap;
	uint64_t *sent_us; /* FIFO of send times, window entries */
	uint64_t *seq;	   /* and their sequence numbers */
	size_t head, count;
	char ans[TENANT_LOAD_HEAD + 1]; /* start of the current answer */
	size_t ans_len;
	bool dead;
};

struct tenant_load_error {
	char text[TENANT_LOAD_HEAD + 1];
	uint64_t count;
};

struct tenant_load {
	/* options */
	const char *socks[TENANT_LOAD_SOCKS_MAX];
	unsigned nsocks;
	struct tenant_load_tenant *tenants;
	size_t ntenants, captenants;
	const char *op, *ack, *prefix, *out_path;
	size_t value_size;
	uint64_t count; /* 0: --duration */
	double duration_s, rate, drain_s;
	unsigned conns_per_sock, window;
	uint64_t keyspace;
	/* state */
	struct tenant_load_conn *conns;
	size_t nconns;
	uint64_t next_seq;
	uint64_t answered, ok, unanswered;
	uint32_t *lat_us; /* latencies of ok answers */
	size_t nlat, caplat;
	struct tenant_load_error errors[TENANT_LOAD_ERRORS_MAX];
	size_t nerrors;
	uint64_t errors_other;
	/* create: generated tenants, and which ones the agent took */
	struct tenant_load_tenant *made;
	bool *made_ok;
	char *value;
};

static volatile sig_atomic_t tenant_load_stop;

static void
tenant_load_on_signal(int sig)
{
	(void)sig;
	tenant_load_stop = 1;
}

static uint64_t
tenant_load_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void *
tenant_load_xrealloc(void *p, size_t size)
{
	void *q = realloc(p, size ? size : 1);
	if (q == NULL) {
		fprintf(stderr, "tenant-load: out of memory\n");
		exit(1);
	}
	return q;
}

static char *
tenant_load_xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = tenant_load_xrealloc(NULL, n);
	memcpy(p, s, n);
	return p;
}

static void
tenant_load_add_tenant(struct tenant_load *L, const char *id, const char *cap)
{
	if (L->ntenants == L->captenants) {
		L->captenants = L->captenants ? L->captenants * 2 : 64;
		L->tenants = tenant_load_xrealloc(
		    L->tenants, L->captenants * sizeof(*L->tenants));
	}
	L->tenants[L->ntenants].id = tenant_load_xstrdup(id);
	L->tenants[L->ntenants].cap = tenant_load_xstrdup(cap);
	L->ntenants++;
}

static int
tenant_load_read_tenants(struct tenant_load *L, const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		fprintf(stderr, "tenant-load: %s: %s\n", path, strerror(errno));
		return -1;
	}
	char line[4096], id[256], cap[2048];
	while (fgets(line, sizeof(line), f) != NULL) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (sscanf(line, "%255s %2047s", id, cap) != 2) {
			fprintf(stderr, "tenant-load: %s: bad line\n", path);
			fclose(f);
			return -1;
		}
		tenant_load_add_tenant(L, id, cap);
	}
	fclose(f);
	return 0;
}

/* ---- requests -------------------------------------------------------- */

static void
tenant_load_put(struct tenant_load_conn *c, const void *data, size_t len)
{
	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 65536;
		while (cap < c->out_len + len)
			cap *= 2;
		c->out = tenant_load_xrealloc(c->out, cap);
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
}

/* One token, percent-encoded as admin.h says, after a space unless first. */
static void
tenant_load_token(struct tenant_load_conn *c, const char *s, bool first)
{
	if (!first)
		tenant_load_put(c, " ", 1);
	size_t len = strlen(s);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch >= 0x21 && ch <= 0x7e && ch != '%') {
			tenant_load_put(c, &s[i], 1);
		} else {
			char esc[4];
			snprintf(esc, sizeof(esc), "%%%02X", ch);
			tenant_load_put(c, esc, 3);
		}
	}
}

static void
tenant_load_key(const struct tenant_load *L, uint64_t seq, char *out,
		size_t cap)
{
	uint64_t k =
	    L->keyspace == 0
		? seq
		: (seq / (L->ntenants ? L->ntenants : 1)) % L->keyspace;
	snprintf(out, cap, "%s-%" PRIu64, L->prefix, k);
}

static void
tenant_load_issue(struct tenant_load *L, struct tenant_load_conn *c)
{
	uint64_t seq = L->next_seq++;
	char key[160], num[32];
	if (strcmp(L->op, "create") == 0) {
		const struct tenant_load_tenant *t = &L->made[seq];
		char pub[CAPFILE_PUBKEY_TEXT_MAX];
		/* made[].cap holds the public key text until created. */
		snprintf(pub, sizeof(pub), "%s", t->cap + strlen(t->cap) + 1);
		tenant_load_token(c, "tenant", true);
		tenant_load_token(c, "create", false);
		tenant_load_token(c, t->id, false);
		tenant_load_token(c, "--key", false);
		tenant_load_token(c, pub, false);
		tenant_load_token(c, "--ack", false);
		tenant_load_token(c, L->ack, false);
	} else {
		const struct tenant_load_tenant *t =
		    &L->tenants[seq % L->ntenants];
		tenant_load_key(L, seq, key, sizeof(key));
		tenant_load_token(c, "tenant", true);
		tenant_load_token(c, L->op, false);
		tenant_load_token(c, t->id, false);
		tenant_load_token(c, key, false);
		if (strcmp(L->op, "put") == 0) {
			/* The sequence number up front: every value differs. */
			int n = snprintf(num, sizeof(num), "%" PRIu64, seq);
			size_t keep = (size_t)n < L->value_size ? (size_t)n
								: L->value_size;
			memcpy(L->value, num, keep);
			tenant_load_token(c, L->value, false);
		} else if (strcmp(L->op, "inc") == 0) {
			tenant_load_token(c, "1", false);
		}
		if (strcmp(L->op, "get") != 0) {
			tenant_load_token(c, "--ack", false);
			tenant_load_token(c, L->ack, false);
		}
		tenant_load_token(c, "--cap", false);
		tenant_load_token(c, t->cap, false);
	}
	tenant_load_put(c, "\n", 1);
	size_t slot = (c->head + c->count) % L->window;
	c->sent_us[slot] = tenant_load_now_us();
	c->seq[slot] = seq;
	c->count++;
}

/* ---- answers --------------------------------------------------------- */

static void
tenant_load_error(struct tenant_load *L, const char *text)
{
	char t[TENANT_LOAD_HEAD + 1];
	size_t n = 0;
	/* The first words: up to the details in parentheses or after ';'. */
	while (text[n] != 0 && text[n] != '(' && text[n] != ';' &&
	       text[n] != '\n' && n < TENANT_LOAD_HEAD)
		n++;
	while (n > 0 && text[n - 1] == ' ')
		n--;
	memcpy(t, text, n);
	t[n] = 0;
	for (size_t i = 0; i < L->nerrors; i++) {
		if (strcmp(L->errors[i].text, t) == 0) {
			L->errors[i].count++;
			return;
		}
	}
	if (L->nerrors == TENANT_LOAD_ERRORS_MAX) {
		L->errors_other++;
		return;
	}
	memcpy(L->errors[L->nerrors].text, t, n + 1);
	L->errors[L->nerrors++].count = 1;
}

static void
tenant_load_answer(struct tenant_load *L, struct tenant_load_conn *c,
		   uint64_t now)
{
	c->ans[c->ans_len] = 0;
	uint64_t sent = c->sent_us[c->head], seq = c->seq[c->head];
	c->head = (c->head + 1) % L->window;
	c->count--;
	c->ans_len = 0;
	L->answered++;
	if (strncmp(c->ans, "error", 5) == 0) {
		tenant_load_error(L, c->ans);
		return;
	}
	L->ok++;
	if (L->made_ok != NULL)
		L->made_ok[seq] = true;
	if (L->nlat == L->caplat) {
		L->caplat = L->caplat ? L->caplat * 2 : 65536;
		L->lat_us = tenant_load_xrealloc(L->lat_us,
						 L->caplat * sizeof(uint32_t));
	}
	uint64_t d = now - sent;
	L->lat_us[L->nlat++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

static void
tenant_load_close(struct tenant_load *L, struct tenant_load_conn *c,
		  const char *why)
{
	if (c->dead)
		return;
	c->dead = true;
	close(c->fd);
	c->fd = -1;
	for (size_t i = 0; i < c->count; i++)
		tenant_load_error(L, why);
	L->unanswered += c->count;
	c->count = 0;
}

static void
tenant_load_read(struct tenant_load *L, struct tenant_load_conn *c)
{
	char buf[65536];
	for (;;) {
		ssize_t n = read(c->fd, buf, sizeof(buf));
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			tenant_load_close(L, c, "error: connection closed");
			return;
		}
		uint64_t now = tenant_load_now_us();
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == 0) {
				if (c->count == 0) {
					tenant_load_close(
					    L, c, "error: answer to nothing");
					return;
				}
				tenant_load_answer(L, c, now);
			} else if (c->ans_len < TENANT_LOAD_HEAD) {
				c->ans[c->ans_len++] = buf[i];
			}
		}
	}
}

static void
tenant_load_write(struct tenant_load *L, struct tenant_load_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n =
		    write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			tenant_load_close(L, c, "error: write failed");
			return;
		}
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
}

static int
tenant_load_connect(const char *path)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "tenant-load: socket path too long: %s\n",
			path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		fprintf(stderr, "tenant-load: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

/* ---- the run --------------------------------------------------------- */

static int
tenant_load_u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static double
tenant_load_pct(const uint32_t *v, size_t n, double q)
{
	if (n == 0)
		return 0;
	size_t i = (size_t)(q * (double)n);
	if (i >= n)
		i = n - 1;
	return v[i] / 1000.0;
}

/* May another request go out now? */
static bool
tenant_load_may_issue(const struct tenant_load *L, uint64_t now, uint64_t t0,
		      uint64_t *wait_us)
{
	if (tenant_load_stop)
		return false;
	if (L->count > 0 && L->next_seq >= L->count)
		return false;
	if (L->count == 0 && now - t0 >= (uint64_t)(L->duration_s * 1e6))
		return false;
	if (L->rate > 0) {
		uint64_t due =
		    t0 + (uint64_t)((double)L->next_seq * 1e6 / L->rate);
		if (due > now) {
			if (due - now < *wait_us)
				*wait_us = due - now;
			return false;
		}
	}
	return true;
}

static int
tenant_load_run(struct tenant_load *L)
{
	L->nconns = (size_t)L->nsocks * L->conns_per_sock;
	L->conns = calloc(L->nconns, sizeof(*L->conns));
	struct pollfd *pf = calloc(L->nconns, sizeof(*pf));
	if (L->conns == NULL || pf == NULL)
		return -1;
	for (size_t i = 0; i < L->nconns; i++) {
		struct tenant_load_conn *c = &L->conns[i];
		c->sock = (unsigned)(i % L->nsocks);
		c->fd = tenant_load_connect(L->socks[c->sock]);
		if (c->fd < 0)
			return -1;
		c->sent_us = calloc(L->window, sizeof(uint64_t));
		c->seq = calloc(L->window, sizeof(uint64_t));
		if (c->sent_us == NULL || c->seq == NULL)
			return -1;
	}
	uint64_t t0 = tenant_load_now_us(), last_answer = t0;
	uint64_t drain_end = 0;
	for (;;) {
		uint64_t now = tenant_load_now_us(), wait_us = 100000;
		bool more = true, busy = false;
		/* Round-robin over connections so that a rate limit or a
		 * count spreads evenly. */
		while (more) {
			more = false;
			for (size_t i = 0; i < L->nconns; i++) {
				struct tenant_load_conn *c = &L->conns[i];
				if (c->dead || c->count >= L->window)
					continue;
				if (!tenant_load_may_issue(L, now, t0,
							   &wait_us))
					break;
				tenant_load_issue(L, c);
				more = true;
			}
		}
		/* Requests still to come, whatever the rate limit says. */
		bool issuing =
		    !tenant_load_stop &&
		    (L->count > 0 ? L->next_seq < L->count
				  : now - t0 < (uint64_t)(L->duration_s * 1e6));
		for (size_t i = 0; i < L->nconns; i++) {
			struct tenant_load_conn *c = &L->conns[i];
			if (!c->dead && c->out_len > c->out_off)
				tenant_load_write(L, c);
			busy |= !c->dead && c->count > 0;
		}
		size_t live = 0;
		for (size_t i = 0; i < L->nconns; i++)
			live += !L->conns[i].dead;
		if ((!busy && !issuing) || live == 0)
			break;
		if (!issuing && busy) {
			if (drain_end == 0)
				drain_end = now + (uint64_t)(L->drain_s * 1e6);
			if (now >= drain_end) {
				for (size_t i = 0; i < L->nconns; i++)
					tenant_load_close(
					    L, &L->conns[i],
					    "error: no answer in time");
				break;
			}
		}
		for (size_t i = 0; i < L->nconns; i++) {
			struct tenant_load_conn *c = &L->conns[i];
			pf[i].fd = c->dead ? -1 : c->fd;
			pf[i].events = POLLIN;
			if (!c->dead && c->out_len > c->out_off)
				pf[i].events |= POLLOUT;
			pf[i].revents = 0;
		}
		int timeout_ms = (int)((wait_us + 999) / 1000);
		int n = poll(pf, L->nconns, timeout_ms);
		if (n < 0 && errno != EINTR)
			return -1;
		uint64_t before = L->answered;
		for (size_t i = 0; n > 0 && i < L->nconns; i++) {
			struct tenant_load_conn *c = &L->conns[i];
			if (c->dead)
				continue;
			if (pf[i].revents & (POLLIN | POLLHUP | POLLERR))
				tenant_load_read(L, c);
			if (!c->dead && (pf[i].revents & POLLOUT))
				tenant_load_write(L, c);
		}
		if (L->answered != before)
			last_answer = tenant_load_now_us();
	}
	double elapsed = (double)(last_answer - t0) / 1e6;
	for (size_t i = 0; i < L->nconns; i++) {
		if (!L->conns[i].dead)
			close(L->conns[i].fd);
		free(L->conns[i].out);
		free(L->conns[i].sent_us);
		free(L->conns[i].seq);
	}
	free(pf);
	free(L->conns);

	qsort(L->lat_us, L->nlat, sizeof(uint32_t), tenant_load_u32_cmp);
	double sum = 0;
	for (size_t i = 0; i < L->nlat; i++)
		sum += L->lat_us[i];
	printf("{\"op\":\"%s\",\"ack\":\"%s\",\"sockets\":%u,\"conns\":%zu,"
	       "\"window\":%u,\"tenants\":%zu,\"value_size\":%zu,"
	       "\"requests\":%" PRIu64 ",\"answered\":%" PRIu64
	       ",\"ok\":%" PRIu64 ",\"unanswered\":%" PRIu64
	       ",\"elapsed_s\":%.3f,\"ops_per_s\":%.1f,\"ok_per_s\":%.1f,"
	       "\"lat_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
	       "\"p999\":%.3f,\"max\":%.3f,\"mean\":%.3f},\"errors\":{",
	       L->op, L->ack, L->nsocks, L->nconns, L->window,
	       strcmp(L->op, "create") == 0 ? (size_t)L->count : L->ntenants,
	       L->value_size, L->next_seq, L->answered, L->ok, L->unanswered,
	       elapsed, elapsed > 0 ? (double)L->answered / elapsed : 0,
	       elapsed > 0 ? (double)L->ok / elapsed : 0,
	       tenant_load_pct(L->lat_us, L->nlat, 0.5),
	       tenant_load_pct(L->lat_us, L->nlat, 0.9),
	       tenant_load_pct(L->lat_us, L->nlat, 0.99),
	       tenant_load_pct(L->lat_us, L->nlat, 0.999),
	       L->nlat ? L->lat_us[L->nlat - 1] / 1000.0 : 0,
	       L->nlat ? sum / (double)L->nlat / 1000.0 : 0);
	for (size_t i = 0; i < L->nerrors; i++) {
		struct admin_buf b = {0};
		admin_json_str(&b, L->errors[i].text);
		printf("%s%s:%" PRIu64, i ? "," : "",
		       b.failed ? "\"?\"" : b.data, L->errors[i].count);
		free(b.data);
	}
	if (L->errors_other)
		printf("%s\"(other)\":%" PRIu64, L->nerrors ? "," : "",
		       L->errors_other);
	printf("}}\n");
	return 0;
}

/* --op create: key pairs and capabilities before the clock starts. */
static int
tenant_load_make(struct tenant_load *L)
{
	L->made = calloc(L->count, sizeof(*L->made));
	L->made_ok = calloc(L->count, sizeof(bool));
	if (L->made == NULL || L->made_ok == NULL)
		return -1;
	for (uint64_t i = 0; i < L->count; i++) {
		uint8_t seed[CAPFILE_SEED_BYTES], pub[TENANT_PUBKEY_BYTES];
		uint8_t cap[TENANT_CAP_MAX];
		size_t cap_len;
		char id[TENANT_ID_MAX + 1], ctext[CAPFILE_CAP_TEXT_MAX];
		char ptext[CAPFILE_PUBKEY_TEXT_MAX];
		snprintf(id, sizeof(id), "%s-%05" PRIu64, L->prefix, i);
		uint32_t all = TENANT_READ | TENANT_WRITE | TENANT_ADMIN;
		int rc = capfile_keypair(seed, pub);
		if (rc == 0)
			rc = capfile_make(seed, id, all, 0, cap, sizeof(cap),
					  &cap_len);
		if (rc == 0)
			rc = capfile_encode_cap_text(cap, cap_len, ctext,
						     sizeof(ctext));
		if (rc == 0)
			rc = capfile_encode_pubkey(pub, ptext, sizeof(ptext));
		if (rc != 0) {
			fprintf(stderr, "tenant-load: key pair: %s\n",
				mesh_strerror(rc));
			return -1;
		}
		/* cap text, NUL, public key text, NUL. */
		size_t cl = strlen(ctext), pl = strlen(ptext);
		char *both = tenant_load_xrealloc(NULL, cl + pl + 2);
		memcpy(both, ctext, cl + 1);
		memcpy(both + cl + 1, ptext, pl + 1);
		L->made[i].id = tenant_load_xstrdup(id);
		L->made[i].cap = both;
	}
	return 0;
}

static int
tenant_load_write_made(const struct tenant_load *L)
{
	FILE *f = fopen(L->out_path, "w");
	if (f == NULL) {
		fprintf(stderr, "tenant-load: %s: %s\n", L->out_path,
			strerror(errno));
		return -1;
	}
	for (uint64_t i = 0; i < L->count; i++)
		if (L->made_ok[i])
			fprintf(f, "%s %s\n", L->made[i].id, L->made[i].cap);
	return fclose(f) == 0 ? 0 : -1;
}

static void
tenant_load_usage(FILE *f)
{
	fprintf(f,
		"usage: tenant-load --sock PATH [--sock PATH ...] [options]\n"
		"  --tenants FILE      \"TENANT CAPTEXT\" lines\n"
		"  --tenant T --cap TEXT   one tenant (repeatable)\n"
		"  --op put|inc|get|create   (default put)\n"
		"  --ack one|quorum|all      (default one)\n"
		"  --value-size N      put value bytes (default 100)\n"
		"  --count N | --duration S  (default --duration 10)\n"
		"  --conns N           connections per socket (default 2)\n"
		"  --window W          requests in flight per connection "
		"(default 256)\n"
		"  --rate R            requests per second in all (default: "
		"no limit)\n"
		"  --prefix P          key prefix; create: tenant prefix\n"
		"  --keyspace K        reuse K keys per tenant (default: "
		"unique keys)\n"
		"  --drain-s S         wait for answers after the last "
		"request (default 15)\n"
		"  --out FILE          create: where the tenants go\n");
}

int
main(int argc, char **argv)
{
	static struct tenant_load L;
	L.op = "put";
	L.ack = "one";
	L.prefix = "k";
	L.value_size = 100;
	L.duration_s = 10;
	L.drain_s = 15;
	L.conns_per_sock = 2;
	L.window = 256;
	const char *pending_tenant = NULL;
	enum {
		O_SOCK = 1,
		O_TENANTS,
		O_TENANT,
		O_CAP,
		O_OP,
		O_ACK,
		O_VSIZE,
		O_COUNT,
		O_DUR,
		O_CONNS,
		O_WINDOW,
		O_RATE,
		O_PREFIX,
		O_KEYSPACE,
		O_DRAIN,
		O_OUT,
		O_HELP,
	};
	static const struct option opts[] = {
	    {"sock", required_argument, 0, O_SOCK},
	    {"tenants", required_argument, 0, O_TENANTS},
	    {"tenant", required_argument, 0, O_TENANT},
	    {"cap", required_argument, 0, O_CAP},
	    {"op", required_argument, 0, O_OP},
	    {"ack", required_argument, 0, O_ACK},
	    {"value-size", required_argument, 0, O_VSIZE},
	    {"count", required_argument, 0, O_COUNT},
	    {"duration", required_argument, 0, O_DUR},
	    {"conns", required_argument, 0, O_CONNS},
	    {"window", required_argument, 0, O_WINDOW},
	    {"rate", required_argument, 0, O_RATE},
	    {"prefix", required_argument, 0, O_PREFIX},
	    {"keyspace", required_argument, 0, O_KEYSPACE},
	    {"drain-s", required_argument, 0, O_DRAIN},
	    {"out", required_argument, 0, O_OUT},
	    {"help", no_argument, 0, O_HELP},
	    {0, 0, 0, 0},
	};
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case O_SOCK:
			if (L.nsocks == TENANT_LOAD_SOCKS_MAX) {
				fprintf(stderr, "tenant-load: too many "
						"sockets\n");
				return 2;
			}
			L.socks[L.nsocks++] = optarg;
			break;
		case O_TENANTS:
			if (tenant_load_read_tenants(&L, optarg) != 0)
				return 2;
			break;
		case O_TENANT:
			pending_tenant = optarg;
			break;
		case O_CAP:
			if (pending_tenant == NULL) {
				fprintf(stderr, "tenant-load: --cap needs a "
						"--tenant before it\n");
				return 2;
			}
			tenant_load_add_tenant(&L, pending_tenant, optarg);
			pending_tenant = NULL;
			break;
		case O_OP:
			L.op = optarg;
			break;
		case O_ACK:
			L.ack = optarg;
			break;
		case O_VSIZE:
			L.value_size = strtoull(optarg, NULL, 10);
			break;
		case O_COUNT:
			L.count = strtoull(optarg, NULL, 10);
			break;
		case O_DUR:
			L.duration_s = atof(optarg);
			break;
		case O_CONNS:
			L.conns_per_sock = (unsigned)atoi(optarg);
			break;
		case O_WINDOW:
			L.window = (unsigned)atoi(optarg);
			break;
		case O_RATE:
			L.rate = atof(optarg);
			break;
		case O_PREFIX:
			L.prefix = optarg;
			break;
		case O_KEYSPACE:
			L.keyspace = strtoull(optarg, NULL, 10);
			break;
		case O_DRAIN:
			L.drain_s = atof(optarg);
			break;
		case O_OUT:
			L.out_path = optarg;
			break;
		case O_HELP:
			tenant_load_usage(stdout);
			return 0;
		default:
			tenant_load_usage(stderr);
			return 2;
		}
	}
	bool create = strcmp(L.op, "create") == 0;
	const char *bad = NULL;
	if (L.nsocks == 0)
		bad = "no --sock";
	else if (strcmp(L.op, "put") != 0 && strcmp(L.op, "inc") != 0 &&
		 strcmp(L.op, "get") != 0 && !create)
		bad = "--op must be put, inc, get or create";
	else if (strcmp(L.ack, "one") != 0 && strcmp(L.ack, "quorum") != 0 &&
		 strcmp(L.ack, "all") != 0)
		bad = "--ack must be one, quorum or all";
	else if (create && (L.count == 0 || L.out_path == NULL))
		bad = "--op create needs --count and --out";
	else if (!create && L.ntenants == 0)
		bad = "no tenants: --tenants FILE or --tenant T --cap TEXT";
	else if (L.conns_per_sock < 1 || L.window < 1)
		bad = "--conns and --window must be at least 1";
	else if (L.value_size < 1 || L.value_size > TENANT_VALUE_MAX)
		bad = "--value-size must be 1..65536";
	if (bad != NULL) {
		fprintf(stderr, "tenant-load: %s\n", bad);
		tenant_load_usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, tenant_load_on_signal);
	signal(SIGTERM, tenant_load_on_signal);
	L.value = tenant_load_xrealloc(NULL, L.value_size + 1);
	for (size_t i = 0; i < L.value_size; i++)
		L.value[i] = (char)('a' + i % 26);
	L.value[L.value_size] = 0;
	if (create && tenant_load_make(&L) != 0)
		return 1;
	if (tenant_load_run(&L) != 0) {
		fprintf(stderr, "tenant-load: %s\n", strerror(errno));
		return 1;
	}
	if (create && tenant_load_write_made(&L) != 0)
		return 1;
	return L.ok == L.answered && L.unanswered == 0 ? 0 : 3;
}
