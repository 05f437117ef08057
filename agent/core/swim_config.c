/*
 * swim_config.c - the membership tunables, each default with its reason,
 * and the checks on what a node may say about itself.
 */
#include "swim_impl.h"

#include "mesh_err.h"
#include "mesh_text.h"

#include <stdio.h>
#include <string.h>

void
swim_config_default(struct swim_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	/* One probe every 800 ms: a ping and an ack per node per period
	 * (about 105 sealed bytes) is ~130 B/s, under the 200 B/s idle
	 * budget of issue 2 even with IP/UDP headers (~195 B/s), and the
	 * first probe of a crashed node comes soon enough to detect it in
	 * under 5 s at N = 64 (docs/membership.md has the measurements;
	 * 1,000 ms gave a 4.5 s median with a 6.6 s worst case). */
	cfg->probe_interval_ms = 800;
	/* The probe timeout adapts to the round trip (SRTT + 4 RTTVAR). It
	 * starts at its ceiling, 1 s, as TCP's does, and never goes below
	 * 100 ms: a loopback round trip is well under a millisecond, but a
	 * busy agent answers late, and every early timeout costs an
	 * indirect round (about eight datagrams). With 100-300 ms one way
	 * (RTT up to 600 ms) a 400 ms ceiling made half the answers late.
	 * The period stretches so that the indirect round (two more round
	 * trips) fits after the timeout. */
	cfg->probe_timeout_ms = 1000;
	cfg->probe_timeout_min_ms = 100;
	/* SWIM's k: three independent paths make a false suspicion need three
	 * more losses at once (p^3 at loss p). */
	cfg->indirect_checks = 3;
	/* Twice as many where packets get lost: at 30% loss a path through
	 * one helper (four datagrams) works 24% of the time, so 3 helpers
	 * leave 44% of failed direct rounds unsaved and 6 leave 19%. At
	 * N = 1,000 every false suspicion is gossiped to everyone, and with
	 * 3 helpers there were so many that refutations stopped getting
	 * through (meshsim, 30% loss: 28 false deaths in 60 s; with 6: 3). */
	cfg->indirect_checks_lossy = 6;
	/* One more direct ping when the first goes unanswered: at 30% loss
	 * each way a direct round trip fails half the time, and a second
	 * one halves the suspicions that the indirect round must save. It
	 * costs nothing on a clean network. */
	cfg->probe_retry = true;
	/* Lifeguard: the suspicion timeout runs from max_mult * min down to
	 * min = mult * log10(N + 1) * probe interval as independent accusers
	 * confirm. A refutation needs O(log N) gossip rounds each way; at
	 * N = 64 with 200 ms rounds that is well under the 1.45 s minimum,
	 * and a lone accuser (the false-positive case) waits 6x longer. */
	cfg->suspicion_mult = 1.0;
	cfg->suspicion_max_mult = 6;
	/* Independent confirmations that bring the timeout to its minimum.
	 * One: at N = 64 the second confirmation came ~1 s after the first
	 * and set the pace (median kill -9 -> all dead 4.9 s with 2, 3.3 s
	 * with 1, same seeds). In the simulator at N = 1,000 it changes
	 * nothing at 10% loss (0 false dead either way: the minimum timeout
	 * dominates there) and costs at 20% loss (31 false dead over 3 runs
	 * instead of 11). */
	cfg->suspicion_confirmations = 1;
	/* Loss stretches the suspicion timeout: on a clean network the share
	 * of probes answered late is ~0 and the timeout keeps its minimum;
	 * at 30% loss it is ~0.4 and the timeout grows 2.6 times
	 * (docs/membership.md, frontier table). */
	cfg->suspicion_loss_mult = 4.0;
	cfg->last_calls = 3;
	/* A lone accuser waited up to the maximum timeout for a second
	 * prober to confirm: 5.2 s from suspicion to death in one kill of
	 * 20 in the 32-agent packs lab (median 1.2 s). The helpers that
	 * nacked had tried the target themselves. */
	cfg->nack_confirms = true;
	/* Each update is sent about retransmit_mult * log10(N + 1) times
	 * by every node that has it (SWIM 4.1). A node then gets about that
	 * many copies, so it misses all of them with p ~ e^-copies: with 4
	 * (8 copies at N = 16) one agent in ten 16-agent starts missed a join
	 * and waited for push-pull; with 6 (12 copies) that is 1 in ~600.
	 * It costs bytes only while updates are pending. */
	cfg->retransmit_mult = 6;
	/* While updates are pending, push them to 3 random members every
	 * 200 ms instead of waiting for the next probe: a death spreads in
	 * log3(N) rounds. Idle nodes send nothing extra. */
	cfg->gossip_interval_ms = 200;
	cfg->gossip_nodes = 3;
	/* Lifeguard's local health score range. */
	cfg->awareness_max = 8;
	/* Anti-entropy: in sync, a push-pull costs two digests, not the view.
	 */
	cfg->push_pull_interval_ms = 30000;
	/* Try a dead member (or a seed when alone) every 2 s so a healed
	 * partition or a restarted node is found again within a few probe
	 * periods (the chaos lab's bound is 3 * log2(N) periods: 7.2 s at
	 * N = 8; at 10 s it missed it). The try is a digest: a member that is
	 * really gone costs one refused connection. */
	cfg->reconnect_interval_ms = 2000;
	/* Operators want to see a dead node for a while; ten minutes also
	 * gives partitions time to heal before the other side is forgotten. */
	cfg->reclaim_ms = 600000;
	cfg->join_timeout_ms = 2000;
	cfg->join_backoff_max_ms = 30000;
	cfg->datagram_max = SWIM_DATAGRAM_MAX;
	/* About 30,000 members in a full view; larger frames are refused. */
	cfg->stream_max = 4u << 20;
}

void
swim_config_memberlist_lan(struct swim_config *cfg)
{
	/* hashicorp/memberlist DefaultLANConfig(): ProbeInterval 1 s,
	 * ProbeTimeout 500 ms, IndirectChecks 3, SuspicionMult 4,
	 * SuspicionMaxTimeoutMult 6, k = SuspicionMult - 2 confirmations,
	 * RetransmitMult 4, GossipInterval 200 ms to 3 nodes, PushPull
	 * every 30 s, AwarenessMaxMultiplier 8. Its TCP fallback ping is not
	 * reproduced; neither are our additions (adaptive timeout, second
	 * direct ping, loss-stretched suspicion, last calls). */
	cfg->probe_interval_ms = 1000;
	cfg->probe_timeout_ms = 500;
	cfg->probe_timeout_min_ms = 500;
	cfg->indirect_checks = 3;
	cfg->indirect_checks_lossy = 3;
	cfg->probe_retry = false;
	cfg->suspicion_mult = 4.0;
	cfg->suspicion_max_mult = 6;
	cfg->suspicion_confirmations = 2;
	cfg->suspicion_loss_mult = 0;
	cfg->last_calls = 0;
	cfg->nack_confirms = false;
	cfg->retransmit_mult = 4;
	cfg->gossip_interval_ms = 200;
	cfg->gossip_nodes = 3;
	cfg->awareness_max = 8;
	cfg->push_pull_interval_ms = 30000;
}

bool
swim_name_is_valid(const char *name)
{
	return mesh_name_is_valid(name, SWIM_NAME_MAX);
}

static bool
swim__printable(const char *s, size_t max, bool allow_empty)
{
	return mesh_text_is_printable(s, max, allow_empty);
}

int
swim__meta_check(const struct swim_meta *m, const char **why)
{
	if (!swim__printable(m->zone, SWIM_TAG_MAX, true) ||
	    !swim__printable(m->region, SWIM_TAG_MAX, true) ||
	    !swim__printable(m->cell, SWIM_TAG_MAX, true)) {
		*why = "zone, region and cell are at most 32 printable bytes";
		return MESH_EINVAL;
	}
	if (m->kv_count > SWIM_KV_MAX) {
		*why = "at most 8 free tags";
		return MESH_ERANGE;
	}
	for (unsigned i = 0; i < m->kv_count; i++) {
		if (!mesh_name_is_valid(m->kv[i].key, SWIM_KV_KEY_MAX)) {
			*why = "tag keys are 1..32 bytes of [A-Za-z0-9._-]";
			return MESH_EINVAL;
		}
		if (!swim__printable(m->kv[i].value, SWIM_KV_VALUE_MAX, true)) {
			*why = "tag values are at most 64 printable bytes";
			return MESH_EINVAL;
		}
		for (unsigned j = 0; j < i; j++)
			if (strcmp(m->kv[i].key, m->kv[j].key) == 0) {
				*why = "duplicate tag key";
				return MESH_EINVAL;
			}
	}
	return 0;
}

int
swim_config_check(const struct swim_config *cfg, const char **why)
{
	*why = "ok";
	if (!swim_name_is_valid(cfg->name)) {
		*why = "name must be 1..64 bytes of [A-Za-z0-9._-]";
		return MESH_EINVAL;
	}
	if (cfg->addr.family != 4 && cfg->addr.family != 6) {
		*why = "address family must be IPv4 or IPv6";
		return MESH_EINVAL;
	}
	int rc = swim__meta_check(&cfg->meta, why);
	if (rc != 0)
		return rc;
	if (cfg->probe_interval_ms == 0 || cfg->probe_timeout_min_ms == 0 ||
	    cfg->probe_timeout_min_ms > cfg->probe_timeout_ms ||
	    cfg->probe_timeout_ms > 60000) {
		*why = "need 0 < probe timeout minimum <= probe timeout <= "
		       "60 s";
		return MESH_EINVAL;
	}
	if (cfg->gossip_interval_ms == 0 || cfg->push_pull_interval_ms == 0 ||
	    cfg->reconnect_interval_ms == 0 || cfg->join_timeout_ms == 0) {
		*why = "intervals must be positive";
		return MESH_EINVAL;
	}
	if (!(cfg->suspicion_mult > 0) || cfg->suspicion_max_mult < 1 ||
	    !(cfg->suspicion_loss_mult >= 0 &&
	      cfg->suspicion_loss_mult <= 100) ||
	    cfg->last_calls > 16 || cfg->retransmit_mult < 1 ||
	    cfg->indirect_checks > 16 || cfg->indirect_checks_lossy > 16 ||
	    cfg->gossip_nodes > 16 || cfg->awareness_max > 64) {
		*why = "multipliers out of range";
		return MESH_ERANGE;
	}
	if (cfg->datagram_max < 512 || cfg->datagram_max > 65000 ||
	    cfg->stream_max < 4096) {
		*why = "datagram_max must be 512..65000, stream_max >= 4096";
		return MESH_ERANGE;
	}
	return 0;
}

const char *
swim_state_name(enum swim_state state)
{
	switch (state) {
	case SWIM_ALIVE:
		return "alive";
	case SWIM_SUSPECT:
		return "suspect";
	case SWIM_DEAD:
		return "dead";
	case SWIM_LEFT:
		return "left";
	}
	return "unknown";
}

char *
swim_addr_format(const struct swim_addr *a, char *buf, size_t cap)
{
	if (a->family == 4) {
		snprintf(buf, cap, "%u.%u.%u.%u:%u", a->ip[0], a->ip[1],
			 a->ip[2], a->ip[3], a->port);
		return buf;
	}
	/* IPv6: plain groups, no :: compression, enough for logs and JSON. */
	char tmp[48];
	size_t off = 0;
	for (int i = 0; i < 8; i++)
		off += (size_t)snprintf(
		    tmp + off, sizeof(tmp) - off, "%s%x", i ? ":" : "",
		    (unsigned)(a->ip[2 * i] << 8 | a->ip[2 * i + 1]));
	snprintf(buf, cap, "[%s]:%u", tmp, a->port);
	return buf;
}

bool
swim_addr_equal(const struct swim_addr *a, const struct swim_addr *b)
{
	if (a->family != b->family || a->port != b->port)
		return false;
	return memcmp(a->ip, b->ip, a->family == 4 ? 4 : 16) == 0;
}
