/*
 * meshd - the packmesh agent: SWIM membership over sealed UDP/TCP, node
 * identity and incarnation in LMDB, and the admin socket for meshctl.
 */
#include "admin.h"
#include "capfile.h"
#include "keyfile.h"
#include "mesh_err.h"
#include "net.h"
#include "pack_svc.h"
#include "place.h"
#include "seal.h"
#include "store.h"
#include "swim.h"
#include "tenant_svc.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How long a leaving node keeps gossiping its departure at most. */
#define MESHD_LEAVE_GRACE_MS 3000
#define MESHD_DEFAULT_PORT 7946
/*
 * A view change rebuilds the ring at once after a quiet spell; changes
 * that follow within MESHD_REPLACE_GAP_MS (or 20 times the duration of
 * the last rebuild, if longer) wait and are taken in by one rebuild at
 * the end of the gap. A rebuild costs O(members x vnodes), milliseconds
 * at N = 1,000, and a join storm brings an event with nearly every
 * datagram: rebuilding for each took half of all CPU and kept a thousand
 * agents on one machine from converging. Whatever reads placement (an
 * admin command, a tenant message) first takes in a pending change
 * (meshd_fresh()), so nothing is decided on a ring older than the view.
 */
#define MESHD_REPLACE_GAP_MS 1000
/* Anti-entropy rounds between two periodic offers of our copy of the
 * system tenant (tenant_config.follow_rounds). */
#define MESHD_FOLLOW_ROUNDS 60
#define MESHD_REPLACE_SPACING 20

/*
 * Exit statuses. 0: stopped cleanly; 2: bad command line; 1: any other
 * failure. A storage fault has a status of its own, at start or while
 * running, so a supervisor can tell what the operator must do without
 * reading the log (docs/storage.md), and stop restarting a node that will
 * fail the same way (systemd: RestartPreventExitStatus=3 4 5).
 */
#define MESHD_EXIT_STORE_CORRUPT 3 /* damaged data file: move the dir aside */
#define MESHD_EXIT_STORE_NOSPC 4   /* disk full: free space */
#define MESHD_EXIT_STORE_IO 5	   /* cannot read or write: disk, permissions */

struct meshd {
	uv_loop_t *loop;
	struct mesh_env env;
	struct swim *swim;
	struct place *place;
	struct store *store;
	struct store_identity id;
	struct seal_keyring ring;
	struct net net;
	struct admin admin;
	struct tenant_svc tsvc;
	struct pack_svc psvc;
	/* Rebuilds the ring: at a damped member's readmission, or when a
	 * view change had to wait for MESHD_REPLACE_GAP_MS. */
	uv_timer_t place_timer;
	uint64_t replace_ok_us; /* uv_hrtime() / 1000 of the next rebuild */
	bool replace_pending;	/* the view changed since the last rebuild */
	int64_t wall_offset_ms; /* wall clock = net_now_ms() + this */
	uv_signal_t sigterm, sigint, sighup;
	struct keyfile keys; /* the file of ring, reloaded at run time */
	uv_timer_t leave_timer;
	uint64_t leave_started;
	bool leaving;
	uint64_t started_ms;
	const char *data_dir;
	int lock_fd;
};

/* Drop counters listed in status (meshd_drops()). */
#define MESHD_DROPS_MAX 32

static void
meshd_log(void *ctx, enum mesh_log_level level, const char *line)
{
	(void)ctx;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s\n",
		tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
		mesh_log_level_name(level), line);
}

static void
meshd_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: meshd --data-dir DIR --keyring FILE [options]\n"
	    "  --name NAME            node name (default: host name)\n"
	    "  --bind HOST:PORT       UDP+TCP address (default "
	    "0.0.0.0:7946)\n"
	    "  --advertise HOST:PORT  address others use (default: bind)\n"
	    "  --join H:P[,H:P...]    seed nodes, tried in turn\n"
	    "  --zone Z --region R --cell C   place in the hierarchy\n"
	    "  --tag KEY=VALUE        free tag (up to 8)\n"
	    "  --log-level LEVEL      debug, info, warn, error (default "
	    "info)\n"
	    "  --capacity W           placement weight 1..10000 (default 100)\n"
	    "  --capacity-mem MiB     memory for packs here (hard; default:\n"
	    "                         unlimited)\n"
	    "  --pack-hook EXEC       runs `EXEC start|stop|check PACK` for\n"
	    "                         the packs this node owns\n"
	    "  --hook-timeout-ms N    kill a hook run after N ms (default "
	    "30000)\n"
	    "  --pack-check-ms N      check a running pack every N ms "
	    "(default 10000)\n"
	    "  --flap-half-life-ms N  flap damping half-life (default 60000;\n"
	    "                         0: off)\n"
	    "  --packs FILE           pack names to add once when absent, one\n"
	    "                         per line (a bootstrap)\n"
	    "  --replicas R           owners `place NAME` shows for a name "
	    "that\n"
	    "                         is not a pack, 1..8 (default 3)\n"
	    "  --tenant-replicas R    replicas per tenant, 1..8 (default 3)\n"
	    "  --store-max-mb N       LMDB map size in MiB (default 1024); a\n"
	    "                         full map refuses writes, restart larger\n"
	    "  --tenant-quota-keys N, --tenant-quota-mb N  per tenant (0: "
	    "none)\n"
	    "  --tenant-rate N        writes per second per tenant (default "
	    "none)\n"
	    "  --anti-entropy-ms N    tenant digest exchange period (default "
	    "2000)\n"
	    "  --probe-interval-ms N, --push-pull-interval-ms N  tunables\n"
	    "  --profile memberlist   memberlist's LAN timing instead of ours\n"
	    "                         (for side-by-side measurements)\n"
	    "  --insecure-keyring     accept a keyring that group or others\n"
	    "                         may access, or of another owner (warns)\n"
	    "SIGHUP or `meshctl keyring reload` re-reads the keyring.\n"
	    "Exit status 3: the data file is damaged; 4: the disk is full;\n"
	    "5: the data directory cannot be read or written (see\n"
	    "docs/storage.md).\n");
}

/* The exit status for a store error @rc (MESHD_EXIT_STORE_...). */
static int
meshd_store_exit(int rc)
{
	switch (rc) {
	case MESH_ECORRUPT:
		return MESHD_EXIT_STORE_CORRUPT;
	case MESH_ENOSPC:
		return MESHD_EXIT_STORE_NOSPC;
	case MESH_EIO:
		return MESHD_EXIT_STORE_IO;
	default:
		return 1;
	}
}

/* Says why the store failed, what to do, and returns the exit status. */
static int
meshd_store_failed(const char *dir, const char *what, int rc)
{
	static const char *const remedy[] = {
	    [MESHD_EXIT_STORE_CORRUPT] = "move the data directory aside and "
					 "start again",
	    [MESHD_EXIT_STORE_NOSPC] = "free space on its filesystem and "
				       "start again",
	    [MESHD_EXIT_STORE_IO] = "check the disk and the directory's "
				    "permissions",
	};
	int status = meshd_store_exit(rc);
	fprintf(stderr, "meshd: %s %s: %s (%s)%s%s%s\n", what, dir,
		mesh_strerror(rc), mesh_errname(rc), status > 1 ? ": " : "",
		status > 1 ? remedy[status] : "",
		status > 1 ? " (docs/storage.md)" : "");
	return status;
}

static int
meshd_copy(char *dst, size_t cap, const char *src, const char *what)
{
	if (strlen(src) >= cap) {
		fprintf(stderr, "meshd: %s is longer than %zu bytes\n", what,
			cap - 1);
		return -1;
	}
	strcpy(dst, src);
	return 0;
}

/* ---- status answers ------------------------------------------------------ */

static void
meshd_meta_json(struct admin_buf *b, const struct swim_meta *m)
{
	admin_printf(b, "\"zone\":");
	admin_json_str(b, m->zone);
	admin_printf(b, ",\"region\":");
	admin_json_str(b, m->region);
	admin_printf(b, ",\"cell\":");
	admin_json_str(b, m->cell);
	admin_printf(b, ",\"tags\":{");
	for (unsigned i = 0; i < m->kv_count; i++) {
		admin_printf(b, i ? "," : "");
		admin_json_str(b, m->kv[i].key);
		admin_printf(b, ":");
		admin_json_str(b, m->kv[i].value);
	}
	admin_printf(b, "}");
}

static void
meshd_members_json(struct meshd *d, struct admin_buf *b, uint64_t now)
{
	admin_printf(b, "\"members\":[");
	size_t n = swim_member_count(d->swim);
	for (size_t i = 0; i < n; i++) {
		struct swim_member_info mi;
		char addr[64];
		swim_member_at(d->swim, i, &mi);
		uint32_t score = 0;
		bool damped = false;
		place_flap_info(d->place, mi.name, now, &score, &damped);
		admin_printf(b, "%s{\"name\":", i ? "," : "");
		admin_json_str(b, mi.name);
		/* The node id, as in status: its key's first 8 bytes. */
		admin_printf(b, ",\"id\":\"");
		for (int k = 0; k < 8; k++)
			admin_printf(b, "%02x", mi.key[k]);
		admin_printf(b,
			     "\",\"addr\":\"%s\",\"state\":\"%s\","
			     "\"incarnation\":%llu,\"self\":%s,"
			     "\"state_age_ms\":%llu,\"flap_score\":%u,"
			     "\"damped\":%s,",
			     swim_addr_format(&mi.addr, addr, sizeof(addr)),
			     swim_state_name(mi.state),
			     (unsigned long long)mi.incarnation,
			     mi.is_self ? "true" : "false",
			     (unsigned long long)(now - mi.state_since_ms),
			     score, damped ? "true" : "false");
		meshd_meta_json(b, mi.meta);
		admin_printf(b, "}");
	}
	admin_printf(b, "]");
}

/* Drop counters of both layers, with one name each for JSON and text. */
static void
meshd_drops(struct meshd *d, const char *names[], uint64_t values[], size_t *n)
{
	const struct swim_stats *st = swim_stats(d->swim);
	const struct net_counters *c = &d->net.c;
	size_t i = 0;
#define MESHD_DROP(name, value)                                                \
	do {                                                                   \
		names[i] = name;                                               \
		values[i++] = value;                                           \
	} while (0)
	MESHD_DROP("truncated", c->drop_truncated);
	MESHD_DROP("wrong_key", c->drop_auth);
	MESHD_DROP("seal_version", c->drop_seal_version);
	MESHD_DROP("oversize", c->drop_oversize);
	MESHD_DROP("malformed", st->drop_decode);
	MESHD_DROP("protocol_version", st->drop_version);
	MESHD_DROP("misaddressed", st->drop_misaddressed);
	MESHD_DROP("bad_update", st->drop_bad_update);
	MESHD_DROP("bad_signature", st->drop_bad_signature);
	MESHD_DROP("key_conflict", st->drop_key_conflict);
	MESHD_DROP("unseen_incarnation", st->drop_unseen_incarnation);
	MESHD_DROP("relay_full", st->drop_relay_full);
	MESHD_DROP("outbox_full", st->drop_outbox_full);
	MESHD_DROP("partial_frame", c->drop_partial);
	MESHD_DROP("first_frame_oversize", c->drop_first_oversize);
	MESHD_DROP("first_frame_budget", c->drop_first_budget);
	MESHD_DROP("frame_deadline", c->drop_deadline);
	MESHD_DROP("inbound_cap", c->drop_cap_total);
	MESHD_DROP("inbound_cap_source", c->drop_cap_source);
	MESHD_DROP("emfile", c->drop_emfile);
	MESHD_DROP("tenant_queue_full", c->tenant_drop_queue);
	MESHD_DROP("tenant_peer_down", c->tenant_drop_down);
	MESHD_DROP("tenant_refused", c->tenant_drop_core);
#undef MESHD_DROP
	*n = i;
}

static unsigned
meshd_eligible(const struct ring *r)
{
	unsigned n = 0;
	for (uint32_t i = 0; r != NULL && i < ring_node_count(r); i++)
		n += ring_node(r, i)->vnodes > 0;
	return n;
}

static void
meshd_status_json(struct meshd *d, struct admin_buf *b, bool with_members)
{
	uint64_t now = net_now_ms();
	struct swim_member_info self;
	char addr[64];
	swim_member_at(d->swim, 0, &self);
	size_t counts[4];
	swim_state_counts(d->swim, counts);
	const struct swim_stats *st = swim_stats(d->swim);
	const struct net_counters *c = &d->net.c;
	struct swim_timing tm;
	swim_timing(d->swim, &tm);
	admin_printf(b, "{\"name\":");
	admin_json_str(b, self.name);
	admin_printf(
	    b,
	    ",\"id\":\"%s\",\"addr\":\"%s\",\"state\":\"%s\","
	    "\"incarnation\":%llu,\"health\":%u,\"health_max\":8,"
	    "\"joined\":%s,\"uptime_ms\":%llu,",
	    d->id.node_id, swim_addr_format(&self.addr, addr, sizeof(addr)),
	    swim_state_name(self.state), (unsigned long long)self.incarnation,
	    swim_health(d->swim), swim_is_joined(d->swim) ? "true" : "false",
	    (unsigned long long)(now - d->started_ms));
	meshd_meta_json(b, self.meta);
	const struct ring *r = place_ring(d->place);
	admin_printf(b,
		     ",\"draining\":%s,\"placement\":{\"eligible\":%u,"
		     "\"damped\":%zu,\"ring_digest\":\"%016llx\"},",
		     place_meta_is_draining(self.meta) ? "true" : "false",
		     meshd_eligible(r), place_damped_count(d->place),
		     (unsigned long long)(r ? ring_digest(r) : 0));
	pack_svc_status_json(&d->psvc, b);
	admin_printf(b, ",");
	tenant_svc_status_json(&d->tsvc, b);
	admin_printf(b, ",");
	keyfile_status_json(&d->keys, b);
	admin_printf(b,
		     ",\"counts\":{\"alive\":%zu,\"suspect\":%zu,\"dead\":%zu,"
		     "\"left\":%zu},\"dropped\":{",
		     counts[0], counts[1], counts[2], counts[3]);
	const char *names[MESHD_DROPS_MAX];
	uint64_t values[MESHD_DROPS_MAX];
	size_t n;
	meshd_drops(d, names, values, &n);
	for (size_t i = 0; i < n; i++)
		admin_printf(b, "%s\"%s\":%llu", i ? "," : "", names[i],
			     (unsigned long long)values[i]);
	admin_printf(b,
		     "},\"traffic\":{\"udp_sent\":%llu,\"udp_sent_bytes\":%llu,"
		     "\"udp_recv\":%llu,\"udp_recv_bytes\":%llu,"
		     "\"tcp_frames_sent\":%llu,\"tcp_sent_bytes\":%llu,"
		     "\"tcp_frames_recv\":%llu,\"tcp_recv_bytes\":%llu,"
		     "\"stream_errors\":%llu,\"send_errors\":%llu,"
		     "\"tenant_frames_sent\":%llu,\"tenant_bytes_sent\":%llu,"
		     "\"tenant_frames_recv\":%llu,\"tenant_bytes_recv\":%llu,"
		     "\"tenant_writes\":%llu,\"tenant_connects\":%llu},",
		     (unsigned long long)c->udp_sent,
		     (unsigned long long)c->udp_sent_bytes,
		     (unsigned long long)c->udp_recv,
		     (unsigned long long)c->udp_recv_bytes,
		     (unsigned long long)c->tcp_frames_sent,
		     (unsigned long long)c->tcp_sent_bytes,
		     (unsigned long long)c->tcp_frames_recv,
		     (unsigned long long)c->tcp_recv_bytes,
		     (unsigned long long)c->stream_errors,
		     (unsigned long long)c->send_errors,
		     (unsigned long long)c->tenant_frames_sent,
		     (unsigned long long)c->tenant_bytes_sent,
		     (unsigned long long)c->tenant_frames_recv,
		     (unsigned long long)c->tenant_bytes_recv,
		     (unsigned long long)c->tenant_writes,
		     (unsigned long long)c->tenant_connects);
	admin_printf(b,
		     "\"swim\":{\"probes\":%llu,\"probe_failures\":%llu,"
		     "\"indirect_probes\":%llu,\"suspicions\":%llu,"
		     "\"refutations\":%llu,\"deaths_declared\":%llu,"
		     "\"confirmations\":%llu,\"nack_confirmations\":%llu,"
		     "\"last_calls\":%llu,\"syncs_sent\":%llu,"
		     "\"syncs_differed\":%llu,\"rtt_ms\":%u,"
		     "\"probe_timeout_ms\":%u,\"period_ms\":%llu,"
		     "\"late_share\":%.3f,\"suspicion_stretch\":%.3f,"
		     "\"pending_updates\":%zu}",
		     (unsigned long long)st->probes,
		     (unsigned long long)st->probe_failures,
		     (unsigned long long)st->indirect_probes,
		     (unsigned long long)st->suspicions,
		     (unsigned long long)st->refutations,
		     (unsigned long long)st->deaths_declared,
		     (unsigned long long)st->confirmations,
		     (unsigned long long)st->nack_confirmations,
		     (unsigned long long)st->last_calls,
		     (unsigned long long)st->syncs_sent,
		     (unsigned long long)st->syncs_differed, tm.srtt_ms,
		     tm.probe_timeout_ms, (unsigned long long)tm.period_ms,
		     tm.late_share, tm.suspicion_stretch,
		     swim_pending_updates(d->swim));
	if (with_members) {
		admin_printf(b, ",");
		meshd_members_json(d, b, now);
	}
	admin_printf(b, "}\n");
}

static void
meshd_meta_text(struct admin_buf *b, const struct swim_meta *m)
{
	admin_printf(b, "zone=%s region=%s cell=%s", m->zone[0] ? m->zone : "-",
		     m->region[0] ? m->region : "-",
		     m->cell[0] ? m->cell : "-");
	for (unsigned i = 0; i < m->kv_count; i++)
		admin_printf(b, " %s=%s", m->kv[i].key, m->kv[i].value);
}

static void
meshd_status_text(struct meshd *d, struct admin_buf *b)
{
	struct swim_member_info self;
	char addr[64];
	swim_member_at(d->swim, 0, &self);
	size_t counts[4];
	swim_state_counts(d->swim, counts);
	admin_printf(b, "node         %s (id %s)\n", self.name, d->id.node_id);
	admin_printf(b, "address      %s\n",
		     swim_addr_format(&self.addr, addr, sizeof(addr)));
	admin_printf(
	    b, "state        %s%s\n", swim_state_name(self.state),
	    swim_is_joined(d->swim) ? "" : " (joining: no seed answered yet)");
	admin_printf(b, "incarnation  %llu (boot %llu, raised %llu)\n",
		     (unsigned long long)self.incarnation,
		     (unsigned long long)(self.incarnation >> 32),
		     (unsigned long long)(self.incarnation & 0xffffffffu));
	admin_printf(b, "tags         ");
	meshd_meta_text(b, self.meta);
	admin_printf(b, "\nhealth       %u/8 (0 is healthy)\n",
		     swim_health(d->swim));
	struct swim_timing tm;
	swim_timing(d->swim, &tm);
	admin_printf(b,
		     "timing       rtt %u ms (+-%u), probe timeout %u ms, "
		     "period %llu ms, %.0f%% of answers late, suspicion "
		     "x%.2f\n",
		     tm.srtt_ms, tm.rttvar_ms, tm.probe_timeout_ms,
		     (unsigned long long)tm.period_ms, tm.late_share * 100.0,
		     tm.suspicion_stretch);
	admin_printf(
	    b, "placement    %u eligible members, %zu damped (flapping)%s\n",
	    meshd_eligible(place_ring(d->place)), place_damped_count(d->place),
	    place_meta_is_draining(self.meta) ? "; this node is DRAINING" : "");
	pack_svc_status_text(&d->psvc, b);
	admin_printf(
	    b, "members      %zu alive, %zu suspect, %zu dead, %zu left\n",
	    counts[0], counts[1], counts[2], counts[3]);
	tenant_svc_status_text(&d->tsvc, b);
	keyfile_status_text(&d->keys, b);
	const char *names[MESHD_DROPS_MAX];
	uint64_t values[MESHD_DROPS_MAX];
	size_t n;
	meshd_drops(d, names, values, &n);
	admin_printf(b, "dropped     ");
	for (size_t i = 0; i < n; i++)
		admin_printf(b, " %s=%llu", names[i],
			     (unsigned long long)values[i]);
	const struct net_counters *c = &d->net.c;
	admin_printf(b,
		     "\ntraffic      udp %llu sent (%llu B), %llu received "
		     "(%llu B); tcp %llu frames sent, %llu received\n",
		     (unsigned long long)c->udp_sent,
		     (unsigned long long)c->udp_sent_bytes,
		     (unsigned long long)c->udp_recv,
		     (unsigned long long)c->udp_recv_bytes,
		     (unsigned long long)c->tcp_frames_sent,
		     (unsigned long long)c->tcp_frames_recv);
}

static void
meshd_members_text(struct meshd *d, struct admin_buf *b)
{
	admin_printf(b, "%-20s %-22s %-8s %5s %6s  %s\n", "NAME", "ADDRESS",
		     "STATE", "INC", "FLAP", "TAGS");
	uint64_t now = net_now_ms();
	size_t n = swim_member_count(d->swim);
	for (size_t i = 0; i < n; i++) {
		struct swim_member_info mi;
		char addr[64];
		swim_member_at(d->swim, i, &mi);
		uint32_t score = 0;
		bool damped = false;
		place_flap_info(d->place, mi.name, now, &score, &damped);
		admin_printf(b, "%-20s %-22s %-8s %5llu.%-3llu %5u%s  ",
			     mi.name,
			     swim_addr_format(&mi.addr, addr, sizeof(addr)),
			     swim_state_name(mi.state),
			     (unsigned long long)(mi.incarnation >> 32),
			     (unsigned long long)(mi.incarnation & 0xffffffffu),
			     score, damped ? "D" : " ");
		meshd_meta_text(b, mi.meta);
		admin_printf(b, "\n");
	}
}

static void meshd_leave(struct meshd *d);
static void meshd_fresh(void *ctx);

/* `place NAME`: a desired pack's owners, or where any other name would go
 * (the ring's owners, --replicas of them). */
static void
meshd_place(struct meshd *d, const char *arg, bool json, struct admin_buf *out)
{
	if (!pack_name_ok(arg)) {
		admin_printf(out,
			     "error: a pack name is 1..%d printable bytes, "
			     "no spaces or '/'\n",
			     PACK_NAME_MAX);
		return;
	}
	if (pack_svc_place(&d->psvc, arg, json, out))
		return;
	const struct ring *r = place_ring(d->place);
	uint32_t owners[RING_REPLICAS_MAX];
	int n = r == NULL ? MESH_ESTATE
			  : ring_lookup(r, ring_hash_key(r, arg, strlen(arg)),
					place_replicas(d->place), owners);
	if (n < 0) {
		admin_printf(out,
			     "error: no eligible member to place on (%s)\n",
			     mesh_strerror(n));
		return;
	}
	char buf[4096];
	if (ring_format_owners(r, owners, (unsigned)n, json, buf, sizeof(buf)) <
	    0) {
		admin_printf(out, "error: owners do not fit the answer\n");
		return;
	}
	size_t len = strlen(buf);
	if (json) {
		admin_printf(out, "{\"pack\":");
		admin_json_str(out, arg);
		admin_printf(out, ",\"desired\":false,\"owners\":%s}\n", buf);
	} else {
		admin_printf(out,
			     "%s is not a desired pack; it would go to "
			     "(primary first):\n%s%s",
			     arg, buf,
			     len > 0 && buf[len - 1] == '\n' ? "" : "\n");
	}
}

/* drain (@on) or undrain: the tag drain=1 in our record, stored first so
 * that what the operator was told survives a restart. */
static void
meshd_drain(struct meshd *d, bool on, struct admin_buf *out)
{
	struct swim_member_info self;
	swim_member_at(d->swim, 0, &self);
	if (place_meta_is_draining(self.meta) == on) {
		admin_printf(out, on ? "already draining\n" : "not draining\n");
		return;
	}
	struct swim_meta m = *self.meta;
	if (on) {
		if (m.kv_count == SWIM_KV_MAX) {
			admin_printf(out, "error: no room for the drain tag "
					  "(8 tags)\n");
			return;
		}
		strcpy(m.kv[m.kv_count].key, PLACE_TAG_DRAIN);
		strcpy(m.kv[m.kv_count].value, "1");
		m.kv_count++;
	} else {
		unsigned k = 0;
		for (unsigned i = 0; i < m.kv_count; i++)
			if (strcmp(m.kv[i].key, PLACE_TAG_DRAIN) != 0)
				m.kv[k++] = m.kv[i];
		m.kv_count = k;
	}
	int rc = store_flag_set(d->store, PLACE_TAG_DRAIN, on);
	if (rc == 0)
		rc = swim_set_meta(d->swim, net_now_ms(), &m);
	if (rc != 0) {
		admin_printf(out, "error: %s\n", mesh_strerror(rc));
		return;
	}
	net_flush(&d->net);
	admin_printf(out, on ? "draining: this node gets no new packs and its "
			       "packs move away\n"
			     : "undrained: this node takes packs again\n");
}

static void
meshd_admin(void *ctx, struct admin_req *req, size_t argc,
	    const struct admin_arg *argv)
{
	struct meshd *d = ctx;
	struct admin_buf *out = admin_req_out(req);
	meshd_fresh(d);
	if (argc == 0) {
		admin_printf(out, "error: empty command\n");
		admin_req_done(req);
		return;
	}
	/* Tokens may hold any byte; a command name with a NUL names none. */
	const char *cmd =
	    argv[0].len == strlen(argv[0].data) ? argv[0].data : "";
	if (strcmp(cmd, "status") == 0 || strcmp(cmd, "members") == 0 ||
	    strcmp(cmd, "place") == 0 || strcmp(cmd, "packs") == 0 ||
	    strcmp(cmd, "drain") == 0 || strcmp(cmd, "undrain") == 0 ||
	    strcmp(cmd, "leave") == 0) {
		/* Membership and placement: CMD [ARG] [--json]. */
		bool json = false, bad = false;
		const char *arg = NULL;
		for (size_t i = 1; i < argc; i++) {
			const char *a = argv[i].data;
			if (argv[i].len != strlen(a))
				bad = true;
			else if (strcmp(a, "--json") == 0 && !json)
				json = true;
			else if (strcmp(a, "--json") != 0 && arg == NULL)
				arg = a;
			else
				bad = true;
		}
		bool takes_arg = strcmp(cmd, "place") == 0;
		if (bad || takes_arg != (arg != NULL)) {
			admin_printf(out, "error: bad arguments for '%s'\n",
				     cmd);
		} else if (strcmp(cmd, "status") == 0) {
			if (json)
				meshd_status_json(d, out, true);
			else
				meshd_status_text(d, out);
		} else if (strcmp(cmd, "members") == 0) {
			if (json) {
				admin_printf(out, "{");
				meshd_members_json(d, out, net_now_ms());
				admin_printf(out, "}\n");
			} else {
				meshd_members_text(d, out);
			}
		} else if (strcmp(cmd, "place") == 0) {
			meshd_place(d, arg, json, out);
		} else if (strcmp(cmd, "packs") == 0) {
			pack_svc_owned(&d->psvc, json, out);
		} else if (strcmp(cmd, "drain") == 0 && !json) {
			meshd_drain(d, true, out);
		} else if (strcmp(cmd, "undrain") == 0 && !json) {
			meshd_drain(d, false, out);
		} else if (strcmp(cmd, "leave") == 0 && !json) {
			admin_printf(out, "leaving: announcing departure, then "
					  "exiting\n");
			meshd_leave(d);
		} else {
			admin_printf(out, "error: unknown command '%s'\n", cmd);
		}
		admin_req_done(req);
		return;
	}

	if (argv[0].len == 4 && memcmp(argv[0].data, "pack", 4) == 0) {
		pack_svc_admin(&d->psvc, req, argc, argv);
		return;
	}

	if (strcmp(cmd, "keyring") == 0) {
		keyfile_admin(&d->keys, &d->net.c, argc, argv, out);
		admin_req_done(req);
		return;
	}

	/* Tenant commands answer once replicas have (tenant_svc.c). */
	if (argv[0].len == 6 && memcmp(argv[0].data, "tenant", 6) == 0) {
		tenant_svc_admin(&d->tsvc, req, argc, argv);
		return;
	}

	/* Fall-through: nothing above knew the command. */
	bool printable = argv[0].len > 0 && argv[0].len <= 31;
	for (size_t i = 0; printable && i < argv[0].len; i++)
		printable = argv[0].data[i] > 0x20 && argv[0].data[i] < 0x7f;
	if (printable)
		admin_printf(out, "error: unknown command '%s'\n",
			     argv[0].data);
	else
		admin_printf(out, "error: unknown command\n");
	admin_req_done(req);
}

/* ---- life cycle ---------------------------------------------------------- */

static void meshd_place_timer(uv_timer_t *t);

/* Flap damping is shared through the system tenant: "damp/NAME" -> {node:
 * damped until, wall ms in decimal}; every node, NAME included, keeps NAME
 * out of its ring until the latest of them. */
#define MESHD_DAMP_PREFIX "damp/"

static void
meshd_damp_publish(struct meshd *d)
{
	struct place_damp pd;
	struct swim_member_info self;
	swim_member_at(d->swim, 0, &self);
	while (place_poll_damp(d->place, &pd)) {
		char key[sizeof(MESHD_DAMP_PREFIX) + SWIM_NAME_MAX], val[24];
		snprintf(key, sizeof(key), "%s%s", MESHD_DAMP_PREFIX, pd.name);
		snprintf(val, sizeof(val), "%lld",
			 (long long)pd.until_ms + (long long)d->wall_offset_ms);
		if (d->tsvc.t != NULL)
			tenant_svc_system(
			    &d->tsvc, NULL, false, NULL, TENANT_OP_PUT,
			    self.name, (const uint8_t *)val, strlen(val), key);
	}
}

struct meshd_damp_read {
	int64_t until_wall;
};

static void
meshd_damp_visit(void *ctx, const uint8_t *sub, size_t sublen,
		 const uint8_t *val, size_t len)
{
	struct meshd_damp_read *r = ctx;
	char buf[24];
	(void)sub;
	(void)sublen;
	if (len == 0 || len >= sizeof(buf))
		return;
	memcpy(buf, val, len);
	buf[len] = 0;
	char *end;
	long long v = strtoll(buf, &end, 10);
	if (*end == 0 && v > r->until_wall)
		r->until_wall = v;
}

/* A field of the system tenant changed: damping decisions are ours, the
 * rest the pack service's. */
static void
meshd_changed(void *ctx, const uint8_t *key, size_t len)
{
	struct meshd *d = ctx;
	/* Our acks tell every prober what our copy is now. */
	swim_set_app_digest(d->swim, tenant_system_digest(d->tsvc.t));
	size_t plen = strlen(MESHD_DAMP_PREFIX);
	if (len <= plen || len - plen > SWIM_NAME_MAX ||
	    memcmp(key, MESHD_DAMP_PREFIX, plen) != 0) {
		pack_svc_changed(&d->psvc, key, len);
		return;
	}
	char name[SWIM_NAME_MAX + 1];
	memcpy(name, key + plen, len - plen);
	name[len - plen] = 0;
	struct meshd_damp_read r = {0};
	tenant_system_read(d->tsvc.t, key, len, meshd_damp_visit, &r);
	int64_t mono = r.until_wall - d->wall_offset_ms;
	if (mono <= 0 ||
	    place_damp_until(d->place, name, (uint64_t)mono, net_now_ms()) != 0)
		return;
	/* Not from inside the commit that reported it: at once, from the
	 * loop. */
	uv_timer_start(&d->place_timer, meshd_place_timer, 0, 0);
}

/* Keys of damping decisions found at start (read after the scan: the
 * store allows no read inside its own scan). */
struct meshd_keys {
	char **k;
	size_t n, cap;
};

static void
meshd_damp_scanned(void *ctx, const uint8_t *key, size_t len)
{
	struct meshd_keys *ks = ctx;
	char *c = malloc(len + 1);
	if (c == NULL ||
	    (ks->n == ks->cap &&
	     mesh_grow(mesh_alloc_default(), (void **)&ks->k, &ks->cap,
		       ks->n + 1, sizeof(*ks->k)) != 0)) {
		free(c);
		return;
	}
	memcpy(c, key, len);
	c[len] = 0;
	ks->k[ks->n++] = c;
}

/* The decisions the store holds already (a restart). */
static void
meshd_damp_load(struct meshd *d)
{
	struct meshd_keys ks = {0};
	tenant_system_scan(d->tsvc.t, MESHD_DAMP_PREFIX, meshd_damp_scanned,
			   &ks);
	for (size_t i = 0; i < ks.n; i++) {
		meshd_changed(d, (const uint8_t *)ks.k[i], strlen(ks.k[i]));
		free(ks.k[i]);
	}
	free(ks.k);
}

/* Rebuilds the ring from the view and hands it to the services. */
static void
meshd_replace(struct meshd *d)
{
	uint64_t t0 = uv_hrtime() / 1000;
	int rc = place_update(d->place, d->swim, net_now_ms(), NULL);
	if (rc != 0) {
		MESH_LOG(&d->env, MESH_LOG_ERROR,
			 "place: cannot rebuild the ring: %s",
			 mesh_strerror(rc));
	} else {
		const struct ring *r = place_ring(d->place);
		if (d->tsvc.t != NULL)
			tenant_svc_set_view(&d->tsvc, r, d->swim);
		/* Packs wait for the first exchange with a seed: before it
		 * the view holds only us, and we would start every pack. */
		if (d->psvc.pk != NULL && swim_is_joined(d->swim))
			pack_svc_set_view(&d->psvc, r);
		/* After the services hold the new ring: publishing writes
		 * the system tenant. */
		meshd_damp_publish(d);
	}
	uint64_t t1 = uv_hrtime() / 1000,
		 spacing = MESHD_REPLACE_SPACING * (t1 - t0);
	d->replace_ok_us = t1 + (spacing > MESHD_REPLACE_GAP_MS * 1000
				     ? spacing
				     : MESHD_REPLACE_GAP_MS * 1000);
	d->replace_pending = false;
	uint64_t next = place_next_deadline(d->place), now = net_now_ms();
	if (next != UINT64_MAX && d->place_timer.data != NULL)
		uv_timer_start(&d->place_timer, meshd_place_timer,
			       next > now ? next - now : 0, 0);
}

/* Signs what we say about ourselves (swim_crypto) with our identity. */
static void
meshd_sign(void *ctx, const uint8_t *msg, size_t len,
	   uint8_t sig[SWIM_SIG_BYTES])
{
	const struct meshd *d = ctx;
	crypto_sign_detached(sig, NULL, msg, len, d->id.secret_key);
}

static void
meshd_place_timer(uv_timer_t *t)
{
	meshd_replace(t->data);
}

static void
meshd_after(void *ctx)
{
	struct meshd *d = ctx;
	struct swim_event ev;
	bool changed = false;
	while (swim_poll_event(d->swim, &ev)) {
		if (ev.kind == SWIM_EV_APP_DIFFERS) {
			/* Not a view change: a copy of the system tenant
			 * that differs from ours. */
			if (d->tsvc.t != NULL)
				tenant_svc_follow(&d->tsvc, ev.name);
			continue;
		}
		MESH_LOG(&d->env, MESH_LOG_DEBUG, "event %d %s inc=%llu",
			 ev.kind, ev.name, (unsigned long long)ev.incarnation);
		changed = true;
	}
	/* The ring follows the view; events and the end of a member's
	 * flap damping are the only ways it changes. */
	d->replace_pending |= changed;
	uint64_t now = uv_hrtime() / 1000;
	if (place_ring(d->place) == NULL ||
	    (d->replace_pending && now >= d->replace_ok_us)) {
		meshd_replace(d);
	} else if (d->replace_pending && d->place_timer.data != NULL) {
		/* Not yet (MESHD_REPLACE_GAP_MS): the timer rebuilds, at
		 * the end of the gap or at a readmission if that comes
		 * first (each rebuild takes in every change so far). */
		uint64_t wait = (d->replace_ok_us - now + 999) / 1000;
		if (!uv_is_active((uv_handle_t *)&d->place_timer) ||
		    uv_timer_get_due_in(&d->place_timer) > wait)
			uv_timer_start(&d->place_timer, meshd_place_timer, wait,
				       0);
	}
}

/* Before anything reads placement: a view change waiting for the end of
 * its gap is taken in now. */
static void
meshd_fresh(void *ctx)
{
	struct meshd *d = ctx;
	if (d->replace_pending)
		meshd_replace(d);
}

static void
meshd_shutdown(struct meshd *d)
{
	pack_svc_stop(&d->psvc);
	tenant_svc_stop(&d->tsvc);
	uv_close((uv_handle_t *)&d->place_timer, NULL);
	net_stop(&d->net);
	admin_stop(&d->admin);
	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->sigint, NULL);
	uv_close((uv_handle_t *)&d->sighup, NULL);
	uv_close((uv_handle_t *)&d->leave_timer, NULL);
}

static void
meshd_leave_tick(uv_timer_t *t)
{
	struct meshd *d = t->data;
	if (swim_pending_updates(d->swim) == 0 ||
	    net_now_ms() - d->leave_started >= MESHD_LEAVE_GRACE_MS) {
		MESH_LOG(&d->env, MESH_LOG_INFO, "meshd: left, exiting");
		uv_timer_stop(t);
		meshd_shutdown(d);
	}
}

static void
meshd_leave(struct meshd *d)
{
	if (d->leaving)
		return;
	d->leaving = true;
	d->leave_started = net_now_ms();
	swim_leave(d->swim, d->leave_started);
	net_flush(&d->net);
	uv_timer_start(&d->leave_timer, meshd_leave_tick, 100, 100);
}

static void
meshd_signal(uv_signal_t *h, int signum)
{
	struct meshd *d = h->data;
	MESH_LOG(&d->env, MESH_LOG_INFO, "meshd: signal %d, leaving", signum);
	meshd_leave(d);
}

/* SIGHUP re-reads the keyring (it used to end the agent, leaving nothing
 * announced). */
static void
meshd_sighup(uv_signal_t *h, int signum)
{
	(void)signum;
	struct meshd *d = h->data;
	keyfile_reload(&d->keys, "SIGHUP", NULL);
}

static int
meshd_lock(struct meshd *d, const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/meshd.lock", dir);
	d->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (d->lock_fd < 0) {
		int e = errno;
		fprintf(stderr, "meshd: cannot open %s: %s%s\n", path,
			strerror(e),
			e == ENOTDIR ? " (the data directory is a file)"
			: e == EROFS ? " (the data directory is read-only)"
				     : "");
		return e == ENOSPC || e == EDQUOT ? MESHD_EXIT_STORE_NOSPC
						  : MESHD_EXIT_STORE_IO;
	}
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		fprintf(stderr,
			"meshd: another meshd is running with data dir %s\n",
			dir);
		return 1;
	}
	return 0;
}

static int
meshd_parse_tag(struct swim_meta *m, const char *arg)
{
	const char *eq = strchr(arg, '=');
	if (eq == NULL || eq == arg || m->kv_count == SWIM_KV_MAX ||
	    (size_t)(eq - arg) > SWIM_KV_KEY_MAX ||
	    strlen(eq + 1) > SWIM_KV_VALUE_MAX) {
		fprintf(stderr,
			"meshd: bad --tag '%s' (KEY=VALUE, key <= 32, "
			"value <= 64 bytes, at most 8 tags)\n",
			arg);
		return -1;
	}
	struct swim_kv *kv = &m->kv[m->kv_count++];
	memcpy(kv->key, arg, (size_t)(eq - arg));
	kv->key[eq - arg] = 0;
	strcpy(kv->value, eq + 1);
	return 0;
}

static int
meshd_parse_seeds(const char *list, struct swim_addr *seeds, size_t *n)
{
	char buf[4096];
	if (meshd_copy(buf, sizeof(buf), list, "--join") != 0)
		return -1;
	*n = 0;
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (*n == 64) {
			fprintf(stderr, "meshd: at most 64 seeds\n");
			return -1;
		}
		if (net_parse_addr(tok, MESHD_DEFAULT_PORT, &seeds[*n]) != 0) {
			fprintf(stderr, "meshd: bad seed address '%s'\n", tok);
			return -1;
		}
		(*n)++;
	}
	return 0;
}

/* Reads pack names, one per line; '#' starts a comment line. */
static int
meshd_load_packs(const char *path, char ***out, size_t *count)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		fprintf(stderr, "meshd: --packs %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	size_t n = 0, cap = 0;
	char **names = NULL;
	char line[PACK_NAME_MAX + 64];
	int line_no = 0, rc = 0;
	while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
		line_no++;
		char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		size_t len = strcspn(p, "\r\n");
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		p[len] = 0;
		if (*p == '#' || *p == 0)
			continue;
		if (!pack_name_ok(p)) {
			fprintf(stderr,
				"meshd: --packs %s line %d: not a pack name "
				"(1..%d printable bytes, no spaces or '/')\n",
				path, line_no, PACK_NAME_MAX);
			rc = -1;
		} else if (n == PACK_PACKS_MAX) {
			fprintf(stderr,
				"meshd: --packs %s: more than %d packs\n", path,
				PACK_PACKS_MAX);
			rc = -1;
		} else {
			if (n == cap) {
				cap = cap ? cap * 2 : 1024;
				char **grown =
				    realloc(names, cap * sizeof(*names));
				if (grown == NULL) {
					rc = -1;
					break;
				}
				names = grown;
			}
			if ((names[n] = strdup(p)) == NULL)
				rc = -1;
			else
				n++;
		}
	}
	fclose(f);
	if (rc != 0) {
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		free(names);
		return rc;
	}
	*out = names;
	*count = n;
	return 0;
}

static enum mesh_log_level
meshd_level(const char *s)
{
	if (strcmp(s, "debug") == 0)
		return MESH_LOG_DEBUG;
	if (strcmp(s, "warn") == 0)
		return MESH_LOG_WARN;
	if (strcmp(s, "error") == 0)
		return MESH_LOG_ERROR;
	if (strcmp(s, "info") == 0)
		return MESH_LOG_INFO;
	return MESH_LOG_OFF;
}

static bool
meshd_addr_is_any(const struct swim_addr *a)
{
	static const uint8_t zero[16];
	return memcmp(a->ip, zero, a->family == 4 ? 4 : 16) == 0;
}

static int
meshd_parse_uint(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (*s == 0 || *end != 0 || v == 0 || v > 3600000)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* Tag @key=N from @text, N in 1..@max: 0, 1 (bad value, not yet said)
 * or -1 (meshd_parse_tag said why). */
static int
meshd_number_tag(struct swim_meta *meta, const char *key, const char *text,
		 uint32_t max)
{
	uint32_t v;
	char *end;
	unsigned long long n = strtoull(text, &end, 10);
	if (*text == 0 || *end != 0 || n == 0 || n > max)
		return 1;
	v = (uint32_t)n;
	char tag[96];
	snprintf(tag, sizeof(tag), "%s=%u", key, v);
	return meshd_parse_tag(meta, tag) ? -1 : 0;
}

int
main(int argc, char **argv)
{
	static struct meshd d;
	/* SIGHUP reloads the keyring once the loop runs; until then (the
	 * store check at start can take a while) it must not end us. */
	signal(SIGHUP, SIG_IGN);
	struct swim_config cfg;
	swim_config_default(&cfg);
	const char *bind_s = "0.0.0.0:7946", *adv_s = NULL, *join_s = NULL;
	const char *keyring = NULL, *packs_file = NULL, *hook = NULL;
	bool insecure_keyring = false;
	uint32_t replicas = 3, store_mb = 1024, hook_timeout_ms = 30000;
	struct pack_config pcfg;
	pack_config_default(&pcfg);
	struct place_flap flap;
	place_flap_default(&flap);
	struct tenant_config tcfg;
	tenant_config_default(&tcfg);
	/* Our SWIM acks carry our copy's digest, so a copy of the system
	 * tenant that differs is found within a few probe periods; the
	 * periodic offer is only the fallback (about every 2 minutes). */
	tcfg.follow_rounds = MESHD_FOLLOW_ROUNDS;
	d.env.alloc = mesh_alloc_default();
	d.env.log_fn = meshd_log;
	d.env.log_level = MESH_LOG_INFO;
	enum {
		O_NAME = 256,
		O_BIND,
		O_ADV,
		O_JOIN,
		O_DIR,
		O_KEYRING,
		O_ZONE,
		O_REGION,
		O_CELL,
		O_TAG,
		O_LOG,
		O_PROBE,
		O_PP,
		O_PROFILE,
		O_HELP,
		O_CAPACITY,
		O_PACKS,
		O_REPLICAS,
		O_T_REPLICAS,
		O_STORE_MB,
		O_T_KEYS,
		O_T_MB,
		O_T_RATE,
		O_T_AE,
		O_CAP_MEM,
		O_HOOK,
		O_HOOK_TIMEOUT,
		O_CHECK,
		O_FLAP,
		O_INSECURE_KEYRING
	};
	static const struct option opts[] = {
	    {"name", required_argument, 0, O_NAME},
	    {"bind", required_argument, 0, O_BIND},
	    {"advertise", required_argument, 0, O_ADV},
	    {"join", required_argument, 0, O_JOIN},
	    {"data-dir", required_argument, 0, O_DIR},
	    {"keyring", required_argument, 0, O_KEYRING},
	    {"zone", required_argument, 0, O_ZONE},
	    {"region", required_argument, 0, O_REGION},
	    {"cell", required_argument, 0, O_CELL},
	    {"tag", required_argument, 0, O_TAG},
	    {"log-level", required_argument, 0, O_LOG},
	    {"probe-interval-ms", required_argument, 0, O_PROBE},
	    {"push-pull-interval-ms", required_argument, 0, O_PP},
	    {"profile", required_argument, 0, O_PROFILE},
	    {"help", no_argument, 0, O_HELP},
	    {"capacity", required_argument, 0, O_CAPACITY},
	    {"packs", required_argument, 0, O_PACKS},
	    {"replicas", required_argument, 0, O_REPLICAS},
	    {"tenant-replicas", required_argument, 0, O_T_REPLICAS},
	    {"store-max-mb", required_argument, 0, O_STORE_MB},
	    {"tenant-quota-keys", required_argument, 0, O_T_KEYS},
	    {"tenant-quota-mb", required_argument, 0, O_T_MB},
	    {"tenant-rate", required_argument, 0, O_T_RATE},
	    {"anti-entropy-ms", required_argument, 0, O_T_AE},
	    {"capacity-mem", required_argument, 0, O_CAP_MEM},
	    {"pack-hook", required_argument, 0, O_HOOK},
	    {"hook-timeout-ms", required_argument, 0, O_HOOK_TIMEOUT},
	    {"pack-check-ms", required_argument, 0, O_CHECK},
	    {"flap-half-life-ms", required_argument, 0, O_FLAP},
	    {"insecure-keyring", no_argument, 0, O_INSECURE_KEYRING},
	    {0, 0, 0, 0},
	};
	int opt, longidx = 0;
	while ((opt = getopt_long(argc, argv, "", opts, &longidx)) != -1) {
		int bad = 0;
		switch (opt) {
		case O_NAME:
			bad = meshd_copy(cfg.name, sizeof(cfg.name), optarg,
					 "--name");
			break;
		case O_BIND:
			bind_s = optarg;
			break;
		case O_ADV:
			adv_s = optarg;
			break;
		case O_JOIN:
			join_s = optarg;
			break;
		case O_DIR:
			d.data_dir = optarg;
			break;
		case O_KEYRING:
			keyring = optarg;
			break;
		case O_INSECURE_KEYRING:
			insecure_keyring = true;
			break;
		case O_ZONE:
			bad = meshd_copy(cfg.meta.zone, sizeof(cfg.meta.zone),
					 optarg, "--zone");
			break;
		case O_REGION:
			bad =
			    meshd_copy(cfg.meta.region, sizeof(cfg.meta.region),
				       optarg, "--region");
			break;
		case O_CELL:
			bad = meshd_copy(cfg.meta.cell, sizeof(cfg.meta.cell),
					 optarg, "--cell");
			break;
		case O_TAG:
			bad = meshd_parse_tag(&cfg.meta, optarg);
			break;
		case O_LOG:
			d.env.log_level = meshd_level(optarg);
			if (d.env.log_level == MESH_LOG_OFF)
				bad = 1;
			break;
		case O_PROBE:
			/* The probe timeout follows the round trip on its
			 * own, and the period stretches to fit it. */
			bad = meshd_parse_uint(optarg,
					       &cfg.probe_interval_ms) != 0;
			break;
		case O_PP:
			bad = meshd_parse_uint(optarg,
					       &cfg.push_pull_interval_ms) != 0;
			break;
		case O_PROFILE:
			/* Timing only; give it before any tunable it should
			 * not override. */
			if (strcmp(optarg, "memberlist") == 0)
				swim_config_memberlist_lan(&cfg);
			else if (strcmp(optarg, "default") != 0)
				bad = 1;
			break;
		case O_HELP:
			meshd_usage(stdout);
			return 0;
		case O_CAPACITY:
			bad = meshd_number_tag(&cfg.meta, PLACE_TAG_CAPACITY,
					       optarg, RING_WEIGHT_MAX);
			break;
		case O_PACKS:
			packs_file = optarg;
			break;
		case O_CAP_MEM:
			bad = meshd_number_tag(&cfg.meta, PLACE_TAG_MEM, optarg,
					       UINT32_MAX);
			break;
		case O_HOOK:
			hook = optarg;
			bad = access(hook, X_OK) != 0;
			if (bad)
				fprintf(stderr, "meshd: --pack-hook %s: %s\n",
					hook, strerror(errno));
			bad = bad ? -1 : 0;
			break;
		case O_HOOK_TIMEOUT:
			bad = meshd_parse_uint(optarg, &hook_timeout_ms) != 0 ||
			      hook_timeout_ms < 100;
			break;
		case O_CHECK:
			bad = meshd_parse_uint(optarg, &pcfg.check_ms) != 0 ||
			      pcfg.check_ms < 100;
			break;
		case O_FLAP:
			if (strcmp(optarg, "0") == 0)
				flap.half_life_ms = 0;
			else
				bad = meshd_parse_uint(optarg,
						       &flap.half_life_ms) != 0;
			break;
		case O_REPLICAS:
			bad = meshd_parse_uint(optarg, &replicas) != 0 ||
			      replicas > RING_REPLICAS_MAX;
			break;
		case O_T_REPLICAS:
			bad = meshd_parse_uint(optarg, &tcfg.replicas) != 0 ||
			      tcfg.replicas > RING_REPLICAS_MAX;
			break;
		case O_STORE_MB:
			bad = meshd_parse_uint(optarg, &store_mb) != 0 ||
			      store_mb < 1;
			break;
		case O_T_KEYS: {
			uint32_t v;
			bad = meshd_parse_uint(optarg, &v) != 0;
			tcfg.quota_keys = v;
			break;
		}
		case O_T_MB: {
			uint32_t v;
			bad = meshd_parse_uint(optarg, &v) != 0;
			tcfg.quota_bytes = (uint64_t)v << 20;
			break;
		}
		case O_T_RATE:
			bad = meshd_parse_uint(optarg, &tcfg.rate_per_s) != 0;
			/* A second's worth of burst, at least 10. */
			tcfg.rate_burst =
			    tcfg.rate_per_s > 10 ? tcfg.rate_per_s : 10;
			break;
		case O_T_AE:
			bad = meshd_parse_uint(optarg, &tcfg.anti_entropy_ms) !=
				  0 ||
			      tcfg.anti_entropy_ms < 10;
			break;
		default:
			meshd_usage(stderr);
			return 2;
		}
		if (bad) {
			if (bad > 0)
				fprintf(stderr,
					"meshd: bad value '%s' for --%s\n",
					optarg, opts[longidx].name);
			return 2;
		}
	}
	if (optind != argc || d.data_dir == NULL || keyring == NULL) {
		fprintf(stderr, "meshd: --data-dir and --keyring are "
				"required\n");
		meshd_usage(stderr);
		return 2;
	}
	if (cfg.name[0] == 0 && gethostname(cfg.name, sizeof(cfg.name)) != 0)
		cfg.name[0] = 0;
	cfg.name[SWIM_NAME_MAX] = 0;
	struct swim_addr bind_addr;
	if (net_parse_addr(bind_s, MESHD_DEFAULT_PORT, &bind_addr) != 0) {
		fprintf(stderr, "meshd: bad --bind '%s'\n", bind_s);
		return 2;
	}
	cfg.addr = bind_addr;
	if (adv_s != NULL &&
	    net_parse_addr(adv_s, bind_addr.port, &cfg.addr) != 0) {
		fprintf(stderr, "meshd: bad --advertise '%s'\n", adv_s);
		return 2;
	}
	if (meshd_addr_is_any(&cfg.addr)) {
		fprintf(stderr,
			"meshd: bound to a wildcard address; give "
			"--advertise HOST:PORT that others can reach\n");
		return 2;
	}
	struct swim_addr seeds[64];
	size_t nseeds = 0;
	if (join_s != NULL && meshd_parse_seeds(join_s, seeds, &nseeds) != 0)
		return 2;
	const char *why;
	if (swim_config_check(&cfg, &why) != 0) {
		fprintf(stderr, "meshd: %s\n", why);
		return 2;
	}
	if (seal_init() != 0) {
		fprintf(stderr, "meshd: libsodium failed to initialise\n");
		return 1;
	}
	struct admin_buf kwhy = {0};
	int rc = keyfile_open(&d.keys, &d.ring, keyring, insecure_keyring,
			      &d.env, &kwhy);
	if (rc != 0) {
		fprintf(stderr, "meshd: %s\n",
			kwhy.failed ? "cannot read the keyring" : kwhy.data);
		free(kwhy.data);
		return 1;
	}
	free(kwhy.data);
	if (mkdir(d.data_dir, 0700) != 0 && errno != EEXIST) {
		int e = errno;
		fprintf(stderr, "meshd: cannot create %s: %s\n", d.data_dir,
			strerror(e));
		return e == ENOSPC || e == EDQUOT ? MESHD_EXIT_STORE_NOSPC
						  : MESHD_EXIT_STORE_IO;
	}
	rc = meshd_lock(&d, d.data_dir);
	if (rc != 0)
		return rc;
	rc = store_open(d.data_dir, (uint64_t)store_mb << 20, &d.env, &d.store);
	/* SIGBUS on the store's map or an LMDB assert: a status, not a
	 * signal. */
	if (rc == 0 && store_guard_faults(d.store, MESHD_EXIT_STORE_IO,
					  MESHD_EXIT_STORE_CORRUPT) != 0)
		MESH_LOG(&d.env, MESH_LOG_WARN,
			 "meshd: cannot guard the store against SIGBUS");
	if (rc == 0)
		rc = store_identity_load(d.store, cfg.name, &d.id);
	/* The boot epoch: counted and committed before we say a word, so
	 * every incarnation of this life, (epoch << 32) + raises, is above
	 * every one of the lives before, with nothing to save while
	 * running (a full disk cannot make us speak one we could lose). */
	uint32_t epoch = 0;
	if (rc == 0)
		rc = store_incarnation_next(d.store, &epoch);
	cfg.incarnation = (uint64_t)epoch << 32;
	if (rc != 0)
		return meshd_store_failed(d.data_dir, "data dir", rc);
	bool draining = false;
	rc = store_flag_get(d.store, PLACE_TAG_DRAIN, &draining);
	if (rc == 0 && draining && !place_meta_is_draining(&cfg.meta)) {
		char tag[16];
		snprintf(tag, sizeof(tag), "%s=1", PLACE_TAG_DRAIN);
		if (meshd_parse_tag(&cfg.meta, tag) != 0)
			return 1;
	}
	if (rc != 0)
		return meshd_store_failed(d.data_dir, "data dir", rc);
	randombytes_buf(&cfg.seed, sizeof(cfg.seed));
	memcpy(cfg.key, d.id.public_key, SWIM_KEY_BYTES);
	cfg.crypto.sign = meshd_sign;
	cfg.crypto.verify = capfile_verify;
	cfg.crypto.ctx = &d;
	d.loop = uv_default_loop();
	d.started_ms = net_now_ms();
	rc = swim_new(&cfg, &d.env, d.started_ms, &d.swim);
	if (rc != 0) {
		fprintf(stderr, "meshd: %s\n", mesh_strerror(rc));
		return 1;
	}
	char **boot = NULL;
	size_t nboot = 0;
	if (place_new(&d.env, replicas, &d.place) != 0 ||
	    place_set_flap(d.place, &flap) != 0 ||
	    (packs_file != NULL &&
	     meshd_load_packs(packs_file, &boot, &nboot) != 0))
		return 1;
	if (nseeds > 0)
		swim_join(d.swim, d.started_ms, seeds, nseeds);
	char addr[64];
	MESH_LOG(&d.env, MESH_LOG_INFO,
		 "meshd: %s id=%s %s boot=%u at %s, %zu seed(s)", cfg.name,
		 d.id.node_id, d.id.created ? "(new identity)" : "", epoch,
		 swim_addr_format(&cfg.addr, addr, sizeof(addr)), nseeds);
	if (net_start(&d.net, d.loop, &bind_addr, d.swim, &d.ring, &d.env,
		      meshd_after, &d) != 0)
		return 1;
	/* The tenant service: dots carry the node's identity (the first 8
	 * bytes of its public key), capability expiry reads wall time. */
	snprintf(tcfg.name, sizeof(tcfg.name), "%s", cfg.name);
	for (int i = 0; i < 8; i++)
		tcfg.replica_id = tcfg.replica_id << 8 | d.id.public_key[i];
	if (tcfg.replica_id == 0)
		tcfg.replica_id = 1;
	randombytes_buf(&tcfg.seed, sizeof(tcfg.seed));
	struct timespec wall;
	clock_gettime(CLOCK_REALTIME, &wall);
	tcfg.wall_offset_ms = (int64_t)wall.tv_sec * 1000 +
			      wall.tv_nsec / 1000000 - (int64_t)net_now_ms();
	rc = tenant_svc_start(&d.tsvc, d.loop, &d.net, d.store, &tcfg, &d.env,
			      net_now_ms());
	if (rc != 0)
		return meshd_store_failed(d.data_dir,
					  "tenant service, data dir", rc);
	d.wall_offset_ms = tcfg.wall_offset_ms;
	tenant_svc_watch(&d.tsvc, meshd_changed, &d);
	swim_set_app_digest(d.swim, tenant_system_digest(d.tsvc.t));
	tenant_svc_before(&d.tsvc, meshd_fresh, &d);
	snprintf(pcfg.name, sizeof(pcfg.name), "%s", cfg.name);
	rc = pack_svc_start(&d.psvc, d.loop, &d.tsvc, &pcfg, hook,
			    hook_timeout_ms, &d.env);
	if (rc != 0) {
		fprintf(stderr, "meshd: pack service: %s\n", mesh_strerror(rc));
		return 1;
	}
	if (packs_file != NULL)
		pack_svc_bootstrap(&d.psvc, boot, nboot);
	uv_timer_init(d.loop, &d.place_timer);
	d.place_timer.data = &d;
	meshd_damp_load(&d);
	tenant_svc_set_view(&d.tsvc, place_ring(d.place), d.swim);
	if (swim_is_joined(d.swim))
		pack_svc_set_view(&d.psvc, place_ring(d.place));
	rc = admin_start(&d.admin, d.loop, d.data_dir, meshd_admin, &d);
	if (rc != 0) {
		fprintf(stderr, "meshd: admin socket in %s: %s\n", d.data_dir,
			mesh_strerror(rc));
		return 1;
	}
	uv_signal_init(d.loop, &d.sigterm);
	uv_signal_init(d.loop, &d.sigint);
	uv_signal_init(d.loop, &d.sighup);
	uv_timer_init(d.loop, &d.leave_timer);
	d.sigterm.data = d.sigint.data = d.sighup.data = d.leave_timer.data =
	    &d;
	uv_signal_start(&d.sigterm, meshd_signal, SIGTERM);
	uv_signal_start(&d.sigint, meshd_signal, SIGINT);
	uv_signal_start(&d.sighup, meshd_sighup, SIGHUP);
	signal(SIGPIPE, SIG_IGN);
	uv_run(d.loop, UV_RUN_DEFAULT);
	uv_loop_close(d.loop);
	place_free(d.place);
	swim_free(d.swim);
	store_close(d.store);
	sodium_memzero(&d.ring, sizeof(d.ring));
	sodium_memzero(&d.id, sizeof(d.id));
	return 0;
}
