/*
 * meshsim.c - the deterministic membership simulator.
 *
 *   meshsim --nodes N --seed S --scenario NAME [--loss P] [--json] ...
 *   meshsim tenants --nodes N --tenants T --seed S [--writes W] ...
 *
 * Runs N real membership cores (agent/core/swim.c) in one process with
 * virtual time and a virtual network, and prints what the scenario
 * measured; `meshsim --help` lists every option. MESH_SEED=<n> in the
 * environment replaces --seed, to replay a run a test reported.
 * docs/simulator.md describes the scenarios, the fault model and results.
 *
 * `tenants` (also `--scenario tenants`) runs the tenant core instead, on
 * an oracle membership view (sim_tenants.h, docs/tenants-sim.md); it exits
 * with 1 when a tenant diverged or an acknowledged write is missing.
 */
#include "sim_scenario.h"
#include "sim_tenants.h"

#include "mesh_err.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
meshsim_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: meshsim --nodes N --seed S --scenario NAME [options]\n"
	    "       meshsim tenants --nodes N --tenants T --seed S [options]\n"
	    "scenarios: join crash1 crash10pct partition slow1 tenants\n"
	    "(meshsim tenants --help lists the options of tenants)\n"
	    "  --loss P            datagram loss, a fraction (0.1 = 10%%)\n"
	    "  --dup P             datagram duplication, a fraction\n"
	    "  --latency MS        smallest one-way link latency (1)\n"
	    "  --latency-spread MS link latencies spread over (9)\n"
	    "  --jitter MS         per-datagram jitter, uniform (5)\n"
	    "  --slow-factor F     slow node lag in link latencies (100)\n"
	    "  --fault-at MS       when the fault starts (10000)\n"
	    "  --duration MS       run length after the fault (30000)\n"
	    "  --partition-ms MS   partition length before the heal (30000)\n"
	    "  --one-way           partition: block only first half -> second\n"
	    "  --restart-after MS  crash*: restart the victims this much "
	    "later\n"
	    "  --join-window MS    join: start times spread over (2000)\n"
	    "  --check-ms MS       how often views are compared (100)\n"
	    "  --profile NAME      swim settings: default, or memberlist\n"
	    "                      (its LAN defaults; give it first)\n"
	    "  --probe-interval MS --probe-timeout MS --suspicion-mult X\n"
	    "                      override swim defaults\n"
	    "  --json              one JSON object instead of text\n"
	    "  --log               swim logs (info) on stderr, prefixed\n"
	    "                      with virtual time and node index\n"
	    "  --log-level L       debug, info, warn or error\n"
	    "MESH_SEED=<n> in the environment overrides --seed.\n");
}

static int
meshsim_u64(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno != 0 || end == s || *end != 0 || s[0] == '-')
		return MESH_EINVAL;
	*out = v;
	return 0;
}

static int
meshsim_u32(const char *s, uint32_t *out)
{
	uint64_t v;
	if (meshsim_u64(s, &v) != 0 || v > UINT32_MAX)
		return MESH_EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static int
meshsim_frac(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno != 0 || end == s || *end != 0 || !(v >= 0 && v <= 1))
		return MESH_EINVAL;
	*out = v;
	return 0;
}

static int
meshsim_level(const char *v, enum mesh_log_level *out)
{
	if (strcmp(v, "debug") == 0)
		*out = MESH_LOG_DEBUG;
	else if (strcmp(v, "info") == 0)
		*out = MESH_LOG_INFO;
	else if (strcmp(v, "warn") == 0)
		*out = MESH_LOG_WARN;
	else if (strcmp(v, "error") == 0)
		*out = MESH_LOG_ERROR;
	else
		return MESH_EINVAL;
	return 0;
}

/* What both scenarios check after their options: MESH_SEED replaces the
 * seed, and the node count is in range. 0, or -1 after saying why. */
static int
meshsim_common_check(uint64_t *seed, uint32_t nodes)
{
	const char *env = getenv("MESH_SEED");
	if (env != NULL && meshsim_u64(env, seed) != 0) {
		fprintf(stderr, "meshsim: bad MESH_SEED=%s\n", env);
		return -1;
	}
	if (nodes < 2 || nodes > SIM_MAX_NODES) {
		fprintf(stderr, "meshsim: --nodes must be 2..%u\n",
			SIM_MAX_NODES);
		return -1;
	}
	return 0;
}

static void
meshsim_tenants_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: meshsim tenants --nodes N --tenants T --seed S [options]\n"
	    "  --writes W          client writes (20000): 60%% put, 20%% inc,\n"
	    "                      20%% set add; half ack=quorum, half one\n"
	    "  --replicas R        replicas per tenant (3)\n"
	    "  --loss P            TCP segment loss, a fraction: retransmits\n"
	    "  --rto MS            first retransmission timeout (200)\n"
	    "  --latency MS        smallest one-way link latency (1)\n"
	    "  --latency-spread MS link latencies spread over (9)\n"
	    "  --jitter MS         per-frame jitter, uniform (5)\n"
	    "  --write-ms MS       length of the write phase (40000)\n"
	    "  --crash F           nodes crashed during it, a fraction (0.05)\n"
	    "  --restart F         of those, restarted later (0.5)\n"
	    "  --partition F       nodes cut off, a fraction < 0.5 (0.3)\n"
	    "  --partition-ms MS   cut length; healed as writes end (10000)\n"
	    "  --detect-ms MS      crash or cut -> out of the view (3000)\n"
	    "  --rejoin-ms MS      restart or heal -> back in it (1000)\n"
	    "  --view-spread MS    a view reaches the nodes over (300)\n"
	    "  --anti-entropy-ms MS --request-timeout-ms MS\n"
	    "                      override the tenant core defaults\n"
	    "  --settle-ms MS      give up converging after (120000)\n"
	    "  --json              one JSON object instead of text\n"
	    "  --explain           every failed check in detail on stderr\n"
	    "                      (diverged tenants, missing writes, "
	    "counters,\n"
	    "                      copies left on non-replicas)\n"
	    "  --log, --log-level L  tenant core logs on stderr\n"
	    "MESH_SEED=<n> in the environment overrides --seed.\n");
}

static int
meshsim_tenants(int argc, char **argv)
{
	struct simt_opts o;
	simt_opts_default(&o);
	bool json = false;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		int rc = 0;
		bool takes = true;
		if (strcmp(a, "tenants") == 0) {
			takes = false;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			meshsim_tenants_usage(stdout);
			return 0;
		} else if (strcmp(a, "--json") == 0) {
			json = true;
			takes = false;
		} else if (strcmp(a, "--log") == 0) {
			o.log_level = MESH_LOG_INFO;
			takes = false;
		} else if (strcmp(a, "--explain") == 0) {
			o.explain = true;
			takes = false;
		} else if (v == NULL) {
			rc = MESH_EINVAL;
		} else if (strcmp(a, "--scenario") == 0) {
			rc = strcmp(v, "tenants") == 0 ? 0 : MESH_EINVAL;
		} else if (strcmp(a, "--nodes") == 0) {
			rc = meshsim_u32(v, &o.nodes);
		} else if (strcmp(a, "--tenants") == 0) {
			rc = meshsim_u32(v, &o.tenants);
		} else if (strcmp(a, "--seed") == 0) {
			rc = meshsim_u64(v, &o.seed);
		} else if (strcmp(a, "--writes") == 0) {
			rc = meshsim_u32(v, &o.writes);
		} else if (strcmp(a, "--replicas") == 0) {
			uint32_t x = 0;
			rc = meshsim_u32(v, &x);
			o.replicas = x;
		} else if (strcmp(a, "--loss") == 0) {
			rc = meshsim_frac(v, &o.loss);
		} else if (strcmp(a, "--rto") == 0) {
			rc = meshsim_u32(v, &o.rto_ms);
		} else if (strcmp(a, "--latency") == 0) {
			rc = meshsim_u32(v, &o.latency_ms);
		} else if (strcmp(a, "--latency-spread") == 0) {
			rc = meshsim_u32(v, &o.latency_spread_ms);
		} else if (strcmp(a, "--jitter") == 0) {
			rc = meshsim_u32(v, &o.jitter_ms);
		} else if (strcmp(a, "--write-ms") == 0) {
			rc = meshsim_u64(v, &o.write_ms);
		} else if (strcmp(a, "--crash") == 0) {
			rc = meshsim_frac(v, &o.crash_frac);
		} else if (strcmp(a, "--restart") == 0) {
			rc = meshsim_frac(v, &o.restart_frac);
		} else if (strcmp(a, "--partition") == 0) {
			rc = meshsim_frac(v, &o.partition_frac);
		} else if (strcmp(a, "--partition-ms") == 0) {
			rc = meshsim_u64(v, &o.partition_ms);
		} else if (strcmp(a, "--detect-ms") == 0) {
			rc = meshsim_u64(v, &o.detect_ms);
		} else if (strcmp(a, "--rejoin-ms") == 0) {
			rc = meshsim_u64(v, &o.rejoin_ms);
		} else if (strcmp(a, "--view-spread") == 0) {
			rc = meshsim_u64(v, &o.view_spread_ms);
		} else if (strcmp(a, "--anti-entropy-ms") == 0) {
			rc = meshsim_u32(v, &o.anti_entropy_ms);
		} else if (strcmp(a, "--request-timeout-ms") == 0) {
			rc = meshsim_u32(v, &o.request_timeout_ms);
		} else if (strcmp(a, "--settle-ms") == 0) {
			rc = meshsim_u64(v, &o.settle_max_ms);
		} else if (strcmp(a, "--log-level") == 0) {
			rc = meshsim_level(v, &o.log_level);
		} else {
			fprintf(stderr, "meshsim: unknown option %s\n", a);
			meshsim_tenants_usage(stderr);
			return 2;
		}
		if (rc != 0) {
			fprintf(stderr, "meshsim: bad value for %s: %s\n", a,
				v ? v : "(missing)");
			return 2;
		}
		if (takes)
			i++;
	}
	if (meshsim_common_check(&o.seed, o.nodes) != 0)
		return 2;
	struct simt_result r;
	int rc = simt_run(&o, &r);
	if (rc != 0) {
		fprintf(stderr, "meshsim: tenants: %s (seed %" PRIu64 ")\n",
			mesh_strerror(rc), o.seed);
		return 1;
	}
	if (json)
		simt_result_json(&o, &r, stdout);
	else
		simt_result_text(&o, &r, stdout);
	if (!simt_result_ok(&r)) {
		fprintf(stderr,
			"meshsim: tenants: replicas diverged or acknowledged "
			"writes are missing (seed %" PRIu64
			"; replay with MESH_SEED=%" PRIu64 ", details with "
			"--explain)\n",
			o.seed, o.seed);
		return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	/* `meshsim tenants ...` or `--scenario tenants` anywhere. */
	for (int i = 1; i < argc; i++)
		if ((i == 1 && strcmp(argv[i], "tenants") == 0) ||
		    (strcmp(argv[i], "--scenario") == 0 && i + 1 < argc &&
		     strcmp(argv[i + 1], "tenants") == 0))
			return meshsim_tenants(argc - 1, argv + 1);
	struct sim_opts o;
	sim_opts_default(&o);
	bool json = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		int rc = 0;
		bool takes = true;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			meshsim_usage(stdout);
			return 0;
		} else if (strcmp(a, "--json") == 0) {
			json = true;
			takes = false;
		} else if (strcmp(a, "--log") == 0) {
			o.log_level = MESH_LOG_INFO;
			takes = false;
		} else if (strcmp(a, "--one-way") == 0) {
			o.one_way = true;
			takes = false;
		} else if (v == NULL) {
			rc = MESH_EINVAL;
		} else if (strcmp(a, "--nodes") == 0) {
			rc = meshsim_u32(v, &o.nodes);
		} else if (strcmp(a, "--seed") == 0) {
			rc = meshsim_u64(v, &o.seed);
		} else if (strcmp(a, "--scenario") == 0) {
			o.scenario = v;
			rc = sim_scenario_is_known(v) ? 0 : MESH_EINVAL;
		} else if (strcmp(a, "--loss") == 0) {
			rc = meshsim_frac(v, &o.net.loss);
		} else if (strcmp(a, "--dup") == 0) {
			rc = meshsim_frac(v, &o.net.dup);
		} else if (strcmp(a, "--latency") == 0) {
			rc = meshsim_u32(v, &o.net.latency_ms);
		} else if (strcmp(a, "--latency-spread") == 0) {
			rc = meshsim_u32(v, &o.net.latency_spread_ms);
		} else if (strcmp(a, "--jitter") == 0) {
			rc = meshsim_u32(v, &o.net.jitter_ms);
		} else if (strcmp(a, "--slow-factor") == 0) {
			rc = meshsim_u32(v, &o.net.slow_factor);
		} else if (strcmp(a, "--fault-at") == 0) {
			rc = meshsim_u64(v, &o.fault_at_ms);
		} else if (strcmp(a, "--duration") == 0) {
			rc = meshsim_u64(v, &o.duration_ms);
		} else if (strcmp(a, "--partition-ms") == 0) {
			rc = meshsim_u64(v, &o.partition_ms);
		} else if (strcmp(a, "--restart-after") == 0) {
			rc = meshsim_u64(v, &o.restart_after_ms);
		} else if (strcmp(a, "--join-window") == 0) {
			rc = meshsim_u64(v, &o.join_window_ms);
		} else if (strcmp(a, "--check-ms") == 0) {
			rc = meshsim_u64(v, &o.check_ms);
		} else if (strcmp(a, "--profile") == 0) {
			/* Before any override: it resets the swim settings. */
			if (strcmp(v, "memberlist") == 0) {
				swim_config_default(&o.base);
				swim_config_memberlist_lan(&o.base);
			} else if (strcmp(v, "default") == 0)
				swim_config_default(&o.base);
			else
				rc = MESH_EINVAL;
		} else if (strcmp(a, "--probe-interval") == 0) {
			rc = meshsim_u32(v, &o.base.probe_interval_ms);
		} else if (strcmp(a, "--probe-timeout") == 0) {
			rc = meshsim_u32(v, &o.base.probe_timeout_ms);
			if (o.base.probe_timeout_min_ms >
			    o.base.probe_timeout_ms)
				o.base.probe_timeout_min_ms =
				    o.base.probe_timeout_ms;
		} else if (strcmp(a, "--suspicion-mult") == 0) {
			char *end;
			o.base.suspicion_mult = strtod(v, &end);
			rc = *end == 0 && o.base.suspicion_mult > 0
				 ? 0
				 : MESH_EINVAL;
		} else if (strcmp(a, "--log-level") == 0) {
			rc = meshsim_level(v, &o.log_level);
		} else {
			fprintf(stderr, "meshsim: unknown option %s\n", a);
			meshsim_usage(stderr);
			return 2;
		}
		if (rc != 0) {
			fprintf(stderr, "meshsim: bad value for %s: %s\n", a,
				v ? v : "(missing)");
			return 2;
		}
		if (takes)
			i++;
	}
	if (meshsim_common_check(&o.seed, o.nodes) != 0)
		return 2;
	const char *why;
	struct swim_config probe = o.base;
	snprintf(probe.name, sizeof(probe.name), "n0");
	probe.addr.family = 4;
	if (swim_config_check(&probe, &why) != 0) {
		fprintf(stderr, "meshsim: bad swim settings: %s\n", why);
		return 2;
	}
	struct sim_result r;
	int rc = sim_run(&o, &r);
	if (rc != 0) {
		fprintf(stderr, "meshsim: %s (seed %" PRIu64 ")\n",
			mesh_strerror(rc), o.seed);
		return 1;
	}
	if (json)
		sim_result_json(&o, &r, stdout);
	else
		sim_result_text(&o, &r, stdout);
	return 0;
}
