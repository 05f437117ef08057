/*
 * test_sim_tenants.c - ctest `sim_tenants` (label `sim`): the tenants
 * scenario of meshsim at N = 60, 12 tenants, 3,000 writes, with crashes
 * (one of which comes back) and a 30% partition, for seeds 1..3. Every
 * tenant's replicas must end equal, no acknowledged write may be missing
 * (but one whose every acking node died for good), the counters must add
 * up, and seed 1 run twice must give the same trace. Prints the seed of
 * every failure; MESH_SEED=<n> runs that seed only. Ends with "N passed,
 * N failed".
 */
#include "sim_tenants.h"

#include "mesh_err.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

static unsigned test_simt_passed, test_simt_failed;

static void
test_simt_check(bool ok, const char *name, uint64_t seed)
{
	if (ok) {
		test_simt_passed++;
		printf("ok   %s (seed %" PRIu64 ")\n", name, seed);
		return;
	}
	test_simt_failed++;
	printf("FAIL %s (seed %" PRIu64 "; replay with MESH_SEED=%" PRIu64
	       ", or meshsim tenants --nodes 60 --tenants 12 --writes 3000 "
	       "--write-ms 20000 --partition-ms 6000 --seed %" PRIu64
	       " --explain)\n",
	       name, seed, seed, seed);
}

static void
test_simt_opts(struct simt_opts *o, uint64_t seed)
{
	simt_opts_default(o);
	o->nodes = 60;
	o->tenants = 12;
	o->writes = 3000;
	o->seed = seed;
	/* 150 writes/s for 20 s; three crashes (two back), 18 nodes cut
	 * off for the last 6 s. */
	o->write_ms = 20000;
	o->partition_ms = 6000;
	o->crash_frac = 0.05;
}

static void
test_simt_seed(uint64_t seed, bool twice)
{
	struct simt_opts o;
	struct simt_result r;
	test_simt_opts(&o, seed);
	int rc = simt_run(&o, &r);
	if (rc != 0)
		printf("     simt_run: %s\n", mesh_strerror(rc));
	else
		simt_result_json(&o, &r, stdout);
	test_simt_check(rc == 0 && r.tenants_converged == r.tenants_total &&
			    r.values_differ == 0,
			"test_sim_tenants_converge", seed);
	test_simt_check(rc == 0 && r.ack[1].lost == r.ack[1].lost_dead &&
			    r.ack[1].partial == 0,
			"test_sim_tenants_no_lost_quorum_write", seed);
	test_simt_check(rc == 0 && r.ack[0].lost == r.ack[0].lost_dead &&
			    r.ack[0].partial == 0,
			"test_sim_tenants_no_lost_one_write", seed);
	test_simt_check(rc == 0 && r.counter_low == 0 && r.counter_high == 0,
			"test_sim_tenants_counters_add_up", seed);
	/* The scenario really did what it says. */
	test_simt_check(rc == 0 && r.crashed == 3 && r.restarted == 2 &&
			    r.cut_off == 18 && r.ack[1].acked > 1000 &&
			    r.ack[0].acked > 1000,
			"test_sim_tenants_faults_and_load", seed);
	if (!twice)
		return;
	struct simt_result r2;
	rc = simt_run(&o, &r2) == 0 ? 0 : 1;
	test_simt_check(rc == 0 && r2.trace_hash == r.trace_hash,
			"test_sim_tenants_replays", seed);
}

int
main(void)
{
	const char *env = getenv("MESH_SEED");
	if (env != NULL) {
		test_simt_seed(strtoull(env, NULL, 0), false);
	} else {
		for (uint64_t seed = 1; seed <= 3; seed++)
			test_simt_seed(seed, seed == 1);
	}
	printf("%u passed, %u failed\n", test_simt_passed, test_simt_failed);
	return test_simt_failed == 0 ? 0 : 1;
}
