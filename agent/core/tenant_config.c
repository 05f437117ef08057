/*
 * tenant_config.c - the tenant service's tunables, each default with its
 * reason.
 */
#include "tenant.h"

#include "mesh_err.h"
#include "mesh_text.h"

#include <string.h>

void
tenant_config_default(struct tenant_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	/* Three copies survive one failure with a majority left for quorum
	 * writes, as in Dynamo and Riak. */
	cfg->replicas = 3;
	/* Anti-entropy repairs what deltas missed; deltas are the fast path.
	 * One digest frame per peer every 2 s is about 70 sealed bytes, so
	 * equal replicas cost ~35 B/s per direction whatever the number of
	 * tenants they share (issue 11 allows 200 B/s per pair). */
	cfg->anti_entropy_ms = 2000;
	cfg->follow_rounds = 1;
	/* A replica on loopback or a LAN acks within milliseconds; 2 s
	 * covers a busy peer and a reconnect, and is short enough for a
	 * client to retry. */
	cfg->request_timeout_ms = 2000;
	/* Writes waiting for acks or forwarded: bounds memory per node. */
	cfg->max_pending = 65536;
	/* No quota or rate limit unless the operator sets one. */
	cfg->quota_keys = 0;
	cfg->quota_bytes = 0;
	cfg->rate_per_s = 0;
	cfg->rate_burst = 0;
}

int
tenant_config_check(const struct tenant_config *cfg, const char **why)
{
	const char *w = NULL;
	if (!mesh_name_is_valid(cfg->name, SWIM_NAME_MAX))
		w = "tenant: node name must be 1..64 bytes of [A-Za-z0-9._-]";
	else if (cfg->replica_id == 0)
		w = "tenant: replica id must not be 0";
	else if (cfg->replicas < 1 || cfg->replicas > RING_REPLICAS_MAX)
		w = "tenant: replicas must be 1..8";
	else if (cfg->anti_entropy_ms < 10 || cfg->request_timeout_ms < 10)
		w = "tenant: intervals must be at least 10 ms";
	else if (cfg->follow_rounds < 1)
		w = "tenant: follow_rounds must be at least 1";
	else if (cfg->max_pending < 1)
		w = "tenant: max_pending must be at least 1";
	else if (cfg->rate_per_s > 0 && cfg->rate_burst == 0)
		w = "tenant: a rate limit needs a burst of at least 1";
	else if (cfg->verify == NULL)
		w = "tenant: no signature verifier";
	else if (cfg->kv.get == NULL || cfg->kv.scan == NULL ||
		 cfg->kv.commit == NULL)
		w = "tenant: no store";
	if (why != NULL)
		*why = w;
	return w == NULL ? 0 : MESH_EINVAL;
}
