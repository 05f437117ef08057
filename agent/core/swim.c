/*
 * swim.c - SWIM failure detection and membership with Lifeguard.
 *
 * Protocol (Das, Gupta, Motivala 2002, with Lifeguard, Dadgar et al. 2018):
 *
 * - Every probe period a node pings the next member of a shuffled
 *   round-robin list. Without an ack within the probe timeout it asks
 *   indirect_checks other members to ping the target for it (ping-req).
 *   Those answer with the target's ack, or with a nack when the target
 *   stayed silent (Lifeguard), so the prober can tell "my own packets are
 *   lost" (no nacks either) from "the target is gone" (nacks came back).
 * - A failed probe makes the target SUSPECT at its incarnation. The suspect
 *   is told through gossip (and first on every ping sent to it: Lifeguard's
 *   buddy system) and refutes by raising its incarnation. A suspicion turns
 *   into DEAD after a timeout that starts at max_mult times the minimum and
 *   shrinks towards mult * log10(N+1) * probe_interval as independent
 *   accusers confirm it (Lifeguard's dynamic suspicion).
 * - Local health awareness (Lifeguard): failed probes without nacks and
 *   refuting suspicion of ourselves raise a score 0..awareness_max;
 *   successful probes lower it. Probe interval and timeout are stretched by
 *   (score + 1), so a node starved of CPU or network stops accusing others.
 * - Every update is piggybacked on pings, acks, ping-reqs and nacks, and
 *   while any are pending also pushed to gossip_nodes random members every
 *   gossip_interval; each is sent about retransmit_mult * log10(N+1) times.
 * - Push-pull over a stream every push_pull_interval: digests first, full
 *   views only when they differ. Join is a push-pull with a seed.
 *
 * Deviations, and why:
 * - Dead members are tried again every reconnect_interval with a digest
 *   push-pull, and a node alone tries its seeds: a healed partition and a
 *   restarted node find the mesh again without an operator (Serf does the
 *   same above memberlist).
 * - SUSPECT and DEAD facts learned in push-pull are hearsay: a member we
 *   see alive at the same incarnation is probed next instead of suspected
 *   (see swim__apply_update). memberlist takes them as suspicions by the
 *   sender, which after a healed partition makes each side suspect the
 *   half it can reach (measured in the simulator, docs/simulator.md).
 * - Gossip goes to suspects as well as alive members, so a suspect hears
 *   of its suspicion and refutes even when nobody happens to probe it.
 * - What a node says about itself is signed with its identity key: its
 *   alive record (incarnation, address, metadata) and its leave. A member
 *   is admitted only with a record its key signed, a name stays bound to
 *   the first key heard for it until the member is forgotten, only the node
 *   itself can make itself LEFT, and an accusation (SUSPECT, DEAD) is taken
 *   only at an incarnation we hold signed. So a holder of the cluster key
 *   can neither invent lives, move or evict a member, nor exhaust its
 *   incarnations (docs/protocol.md, "Signed records").
 * - A DEAD fact about a member we see ALIVE at that incarnation (we missed
 *   the suspicion before it) is taken as a suspicion by the declarer, and
 *   the member is probed next: our own failed probe confirms the death. A
 *   lone forged death then costs a refutation, not an eviction.
 */
#include "swim_impl.h"

#include "mesh.pb-c.h"
#include "mesh_err.h"
#include "mesh_hash.h"

#include <math.h>
#include <string.h>

#define SWIM_UPDATES_FIELD 15

/* ---- hashing ----------------------------------------------------------- */

static uint64_t
swim__name_hash(const char *name)
{
	return mesh_hash_bytes(name, strlen(name), 0);
}

static bool
swim__meta_is_empty(const struct swim_meta *m)
{
	return m->zone[0] == 0 && m->region[0] == 0 && m->cell[0] == 0 &&
	       m->kv_count == 0;
}

/* Empty metadata hashes to 0 however it is held (NULL in the table, a
 * zeroed struct when decoded), so self-checks and digests agree. */
static uint64_t
swim__meta_hash(const struct swim_meta *m)
{
	if (m == NULL || swim__meta_is_empty(m))
		return 0;
	uint64_t h = mesh_hash_bytes(m->zone, strlen(m->zone), 1);
	h = mesh_hash_bytes(m->region, strlen(m->region), h);
	h = mesh_hash_bytes(m->cell, strlen(m->cell), h);
	for (unsigned i = 0; i < m->kv_count; i++) {
		h = mesh_hash_bytes(m->kv[i].key, strlen(m->kv[i].key), h);
		h = mesh_hash_bytes(m->kv[i].value, strlen(m->kv[i].value), h);
	}
	return h;
}

static const struct swim_meta swim__empty_meta;

static const struct swim_meta *
swim__meta_of(const struct swim_member *m)
{
	return m->meta != NULL ? m->meta : &swim__empty_meta;
}

/* One member's share of the view digest. */
static uint64_t
swim__member_hash(const struct swim_member *m)
{
	uint64_t h = m->name_hash;
	h = mesh_mix64(mesh_mix64(h ^ m->incarnation) ^ m->state);
	/* Only the bytes that travel: no padding, no unused IPv6 tail. */
	h = mesh_hash_bytes(m->addr.ip, m->addr.family == 4 ? 4 : 16,
			    h ^ m->meta_hash);
	return mesh_mix64(h ^ ((uint64_t)m->addr.family << 16 | m->addr.port));
}

/* The digest is a sum of the members' shares, kept up to date as they
 * change: a Sync or push-pull reads it in O(1). Called after every change
 * to a member's incarnation, state, address or metadata (swim_self_check()
 * recomputes it to catch a missed one). */
static void
swim__rehash(struct swim *s, struct swim_member *m)
{
	s->digest -= m->digest_h;
	m->digest_h = swim__member_hash(m);
	s->digest += m->digest_h;
}

uint64_t
swim__digest(const struct swim *s)
{
	return s->digest;
}

/* Members that are dead or left, for the reclaim walk and the reconnect
 * pick: O(gone), not O(members). A member a failed allocation kept off
 * the list is only never forgotten or retried; the view stays right. */
static bool
swim__is_gone(enum swim_state st)
{
	return st == SWIM_DEAD || st == SWIM_LEFT;
}

static void
swim__gone_add(struct swim *s, struct swim_member *m)
{
	if (mesh_grow(s->env->alloc, (void **)&s->gone, &s->gone_cap,
		      s->ngone + 1, sizeof(*s->gone)) != 0) {
		m->gone_idx = SWIM_NOT_GONE;
		return;
	}
	m->gone_idx = (uint32_t)s->ngone;
	s->gone[s->ngone++] = m;
}

static void
swim__gone_del(struct swim *s, struct swim_member *m)
{
	if (m->gone_idx == SWIM_NOT_GONE)
		return;
	struct swim_member *last = s->gone[--s->ngone];
	s->gone[m->gone_idx] = last;
	last->gone_idx = m->gone_idx;
	m->gone_idx = SWIM_NOT_GONE;
}

/* ---- signed records ---------------------------------------------------- */

#define SWIM_RECORD_DOMAIN "packmesh-swim-record-1"

static uint8_t *
swim__put_str(uint8_t *p, const char *str)
{
	size_t n = strlen(str);
	*p++ = (uint8_t)n;
	memcpy(p, str, n);
	return p + n;
}

size_t
swim_record_bytes(const char *name, uint64_t incarnation, bool left,
		  const struct swim_addr *addr, const struct swim_meta *meta,
		  uint8_t *buf)
{
	uint8_t *p = buf;
	memcpy(p, SWIM_RECORD_DOMAIN, sizeof(SWIM_RECORD_DOMAIN) - 1);
	p += sizeof(SWIM_RECORD_DOMAIN) - 1;
	*p++ = left ? 2 : 1;
	p = swim__put_str(p, name);
	for (int i = 7; i >= 0; i--)
		*p++ = (uint8_t)(incarnation >> (8 * i));
	if (left)
		return (size_t)(p - buf);
	size_t iplen = addr->family == 4 ? 4 : 16;
	*p++ = addr->family;
	memcpy(p, addr->ip, iplen);
	p += iplen;
	*p++ = (uint8_t)(addr->port >> 8);
	*p++ = (uint8_t)addr->port;
	if (meta == NULL)
		meta = &swim__empty_meta;
	p = swim__put_str(p, meta->zone);
	p = swim__put_str(p, meta->region);
	p = swim__put_str(p, meta->cell);
	*p++ = (uint8_t)meta->kv_count;
	for (unsigned i = 0; i < meta->kv_count; i++) {
		p = swim__put_str(p, meta->kv[i].key);
		p = swim__put_str(p, meta->kv[i].value);
	}
	return (size_t)(p - buf);
}

/* Signs our own record as it now stands: alive, or our leave. */
static void
swim__sign_self(struct swim *s)
{
	struct swim_member *self = s->self;
	uint8_t buf[SWIM_RECORD_MAX];
	size_t n = swim_record_bytes(self->name, self->incarnation,
				     self->state == SWIM_LEFT, &self->addr,
				     self->meta, buf);
	s->cfg.crypto.sign(s->cfg.crypto.ctx, buf, n, self->sig);
}

/* True when @sig is @key's signature of the record described. */
static bool
swim__record_valid(const struct swim *s, const char *name, uint64_t inc,
		   bool left, const struct swim_addr *addr,
		   const struct swim_meta *meta, const uint8_t *key,
		   const uint8_t *sig)
{
	uint8_t buf[SWIM_RECORD_MAX];
	size_t n = swim_record_bytes(name, inc, left, addr, meta, buf);
	return s->cfg.crypto.verify(s->cfg.crypto.ctx, key, buf, n, sig);
}

/* ---- events and outputs ------------------------------------------------ */

static void
swim__event(struct swim *s, enum swim_event_kind kind,
	    const struct swim_member *m, const char *from)
{
	if (s->ev_len == s->ev_cap && s->ev_head > 0) {
		memmove(s->events, s->events + s->ev_head,
			(s->ev_len - s->ev_head) * sizeof(*s->events));
		s->ev_len -= s->ev_head;
		s->ev_head = 0;
	}
	if (s->ev_len - s->ev_head >= SWIM_EVENTS_MAX ||
	    mesh_grow(s->env->alloc, (void **)&s->events, &s->ev_cap,
		      s->ev_len + 1, sizeof(*s->events)) != 0) {
		s->stats.drop_events++;
		return;
	}
	struct swim_event *ev = &s->events[s->ev_len++];
	memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	memcpy(ev->name, m->name, strlen(m->name) + 1);
	ev->incarnation = m->incarnation;
	if (from != NULL)
		memcpy(ev->from, from, strnlen(from, SWIM_NAME_MAX));
}

/* Every call into the swim (but polls) first releases what the previous
 * polls lent out: borrowed bytes stay valid until the next call. */
static void
swim__begin_call(struct swim *s)
{
	for (size_t i = 0; i < s->nborrowed; i++)
		mesh_free(s->env->alloc, s->borrowed[i]);
	s->nborrowed = 0;
}

/* Reserves the next outbox slot; NULL (counted) when the driver fell
 * behind. Datagram slots come with their own fixed buffer. */
static struct swim__out *
swim__out_slot(struct swim *s, enum swim_out_kind kind,
	       const struct swim_addr *to)
{
	if (s->out_count == SWIM_OUTBOX) {
		s->stats.drop_outbox_full++;
		return NULL;
	}
	size_t i = (s->out_head + s->out_count) % SWIM_OUTBOX;
	struct swim__out *o = &s->outbox[i];
	o->kind = kind;
	o->to = *to;
	o->len = 0;
	o->data = kind == SWIM_OUT_DATAGRAM
		      ? s->dgram_mem + i * s->cfg.datagram_max
		      : NULL;
	return o;
}

static void
swim__out_commit(struct swim *s, struct swim__out *o)
{
	(void)o;
	s->out_count++;
}

bool
swim_poll_output(struct swim *s, struct swim_output *out)
{
	if (s->out_count == 0)
		return false;
	struct swim__out *o = &s->outbox[s->out_head];
	s->out_head = (s->out_head + 1) % SWIM_OUTBOX;
	s->out_count--;
	out->kind = o->kind;
	out->to = o->to;
	out->data = o->data;
	out->len = o->len;
	if (o->kind == SWIM_OUT_STREAM) {
		/* Freed at the next call, like every lent heap buffer. */
		s->borrowed[s->nborrowed++] = o->data;
		o->data = NULL;
	}
	return true;
}

void
swim_set_app_digest(struct swim *s, uint32_t digest)
{
	s->app_digest = digest;
}

bool
swim_poll_event(struct swim *s, struct swim_event *ev)
{
	if (s->ev_head == s->ev_len)
		return false;
	*ev = s->events[s->ev_head++];
	if (s->ev_head == s->ev_len) {
		s->ev_head = s->ev_len = 0;
		if (s->ev_cap > SWIM_EVENTS_KEEP) {
			mesh_free(s->env->alloc, s->events);
			s->events = NULL;
			s->ev_cap = 0;
		}
	}
	return true;
}

/* ---- decoding arena ---------------------------------------------------- */

/* protobuf-c allocates while unpacking; a datagram decodes into a bump
 * arena inside the swim, so the probe/ack path touches no heap. What does
 * not fit falls back to the injected allocator. */
static void *
swim__arena_alloc(void *data, size_t size)
{
	struct swim *s = data;
	size_t aligned = (size + 15) & ~(size_t)15;
	if (aligned >= size && aligned <= SWIM_ARENA_BYTES - s->arena_used) {
		void *p = s->arena + s->arena_used;
		s->arena_used += aligned;
		return p;
	}
	return mesh_malloc(s->env->alloc, size);
}

static void
swim__arena_free(void *data, void *ptr)
{
	struct swim *s = data;
	uint8_t *p = ptr;
	if (p >= s->arena && p < s->arena + SWIM_ARENA_BYTES)
		return;
	mesh_free(s->env->alloc, ptr);
}

static void *
swim__heap_alloc(void *data, size_t size)
{
	struct swim *s = data;
	return mesh_malloc(s->env->alloc, size);
}

static void
swim__heap_free(void *data, void *ptr)
{
	struct swim *s = data;
	mesh_free(s->env->alloc, ptr);
}

/* ---- member table ------------------------------------------------------ */

static struct swim_member *
swim__find(const struct swim *s, const char *name)
{
	uint64_t h = swim__name_hash(name);
	for (struct swim_member *m = s->buckets[h & (s->nbuckets - 1)];
	     m != NULL; m = m->hash_next)
		if (m->name_hash == h && strcmp(m->name, name) == 0)
			return m;
	return NULL;
}

static int
swim__grow_buckets(struct swim *s)
{
	size_t n = s->nbuckets * 2;
	struct swim_member **b = mesh_calloc(s->env->alloc, n, sizeof(*b));
	if (b == NULL)
		return MESH_ENOMEM;
	for (size_t i = 0; i < s->nmembers; i++) {
		struct swim_member *m = s->members[i];
		m->hash_next = b[m->name_hash & (n - 1)];
		b[m->name_hash & (n - 1)] = m;
	}
	mesh_free(s->env->alloc, s->buckets);
	s->buckets = b;
	s->nbuckets = n;
	return 0;
}

static int
swim__reserve(struct swim *s, void *arrayp, size_t *cap, size_t need)
{
	void **array = arrayp;
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap * 2 : 16;
	while (n < need)
		n *= 2;
	void *p = mesh_realloc(s->env->alloc, *array, n * sizeof(void *));
	if (p == NULL)
		return MESH_ENOMEM;
	*array = p;
	*cap = n;
	return 0;
}

static int
swim__set_meta(struct swim *s, struct swim_member *m,
	       const struct swim_meta *meta)
{
	if (meta == NULL || swim__meta_is_empty(meta)) {
		mesh_free(s->env->alloc, m->meta);
		m->meta = NULL;
		m->meta_hash = 0;
		swim__rehash(s, m);
		return 0;
	}
	if (m->meta == NULL) {
		m->meta = mesh_malloc(s->env->alloc, sizeof(*m->meta));
		if (m->meta == NULL)
			return MESH_ENOMEM;
	}
	*m->meta = *meta;
	m->meta_hash = swim__meta_hash(meta);
	swim__rehash(s, m);
	return 0;
}

static void
swim__set_state(struct swim *s, struct swim_member *m, enum swim_state st,
		uint64_t now)
{
	if (m->state == SWIM_SUSPECT && st != SWIM_SUSPECT) {
		/* Swap-remove from the suspect list. */
		struct swim_member *last = s->suspects[--s->nsuspects];
		s->suspects[m->susp->list_idx] = last;
		last->susp->list_idx = m->susp->list_idx;
		mesh_free(s->env->alloc, m->susp);
		m->susp = NULL;
	}
	bool was_gone = swim__is_gone(m->state);
	s->counts[m->state]--;
	s->counts[st]++;
	m->state = st;
	m->state_ms = now;
	m->hearsay_dead = 0;
	/* Our own leave does not make us someone to reconnect to. */
	if (was_gone && !swim__is_gone(st))
		swim__gone_del(s, m);
	else if (!was_gone && swim__is_gone(st) && m != s->self)
		swim__gone_add(s, m);
	swim__rehash(s, m);
}

static struct swim_member *
swim__add(struct swim *s, const char *name, uint64_t now)
{
	if (swim__reserve(s, &s->members, &s->members_cap, s->nmembers + 1) ||
	    swim__reserve(s, &s->probe_list, &s->probe_cap, s->nmembers + 1))
		return NULL;
	if (s->nmembers + 1 > s->nbuckets && swim__grow_buckets(s) != 0)
		return NULL;
	size_t len = strlen(name);
	struct swim_member *m =
	    mesh_calloc(s->env->alloc, 1, sizeof(*m) + len + 1);
	if (m == NULL)
		return NULL;
	memcpy(m->name, name, len + 1);
	m->name_hash = swim__name_hash(name);
	m->state = SWIM_ALIVE;
	m->state_ms = now;
	m->gone_idx = SWIM_NOT_GONE;
	swim__rehash(s, m);
	m->idx = (uint32_t)s->nmembers;
	s->members[s->nmembers++] = m;
	size_t b = m->name_hash & (s->nbuckets - 1);
	m->hash_next = s->buckets[b];
	s->buckets[b] = m;
	s->counts[SWIM_ALIVE]++;
	if (s->self != NULL) {
		/* New members go to a random place in the probe order, so a
		 * burst of joins does not line up behind one another. */
		size_t at =
		    mesh_rand_below(&s->rng, (uint32_t)s->probe_len + 1);
		s->probe_list[s->probe_len] =
		    at < s->probe_len ? s->probe_list[at] : m;
		s->probe_list[at] = m;
		s->probe_len++;
	}
	return m;
}

static void
swim__rebuild_probe_list(struct swim *s)
{
	s->probe_len = 0;
	for (size_t i = 0; i < s->nmembers; i++)
		if (s->members[i] != s->self)
			s->probe_list[s->probe_len++] = s->members[i];
	for (size_t i = s->probe_len; i > 1; i--) {
		size_t j = mesh_rand_below(&s->rng, (uint32_t)i);
		struct swim_member *t = s->probe_list[i - 1];
		s->probe_list[i - 1] = s->probe_list[j];
		s->probe_list[j] = t;
	}
	s->probe_pos = 0;
}

static void
swim__member_free(struct swim *s, struct swim_member *m)
{
	dissem_drop(&s->dissem, &m->bcast);
	mesh_free(s->env->alloc, m->susp);
	mesh_free(s->env->alloc, m->meta);
	mesh_free(s->env->alloc, m);
}

static void
swim__remove(struct swim *s, struct swim_member *m)
{
	if (m->state == SWIM_SUSPECT)
		swim__set_state(s, m, SWIM_DEAD, m->state_ms);
	swim__gone_del(s, m);
	s->digest -= m->digest_h;
	s->counts[m->state]--;
	struct swim_member **pp = &s->buckets[m->name_hash & (s->nbuckets - 1)];
	while (*pp != m)
		pp = &(*pp)->hash_next;
	*pp = m->hash_next;
	struct swim_member *last = s->members[--s->nmembers];
	s->members[m->idx] = last;
	last->idx = m->idx;
	if (s->target == m) {
		s->target = NULL;
		s->phase = SWIM_PROBE_IDLE;
	}
	swim__event(s, SWIM_EV_MEMBER_REMOVED, m, NULL);
	swim__member_free(s, m);
	swim__rebuild_probe_list(s);
}

/* Cluster size estimate for the timeouts: members not known to be gone. */
static size_t
swim__live_count(const struct swim *s)
{
	return s->counts[SWIM_ALIVE] + s->counts[SWIM_SUSPECT];
}

static double
swim__log_scale(const struct swim *s)
{
	double l = log10((double)swim__live_count(s) + 1.0);
	return l < 1.0 ? 1.0 : l;
}

uint32_t
swim__retransmit_limit(const struct swim *s)
{
	return (uint32_t)ceil(s->cfg.retransmit_mult * swim__log_scale(s));
}

/* ---- encoding ---------------------------------------------------------- */

static void
swim__meta_to_pb(const struct swim_meta *m, Mesh__Meta *pb, Mesh__Tag *tags,
		 Mesh__Tag **tagp)
{
	mesh__meta__init(pb);
	pb->zone = (char *)m->zone;
	pb->region = (char *)m->region;
	pb->cell = (char *)m->cell;
	for (unsigned i = 0; i < m->kv_count; i++) {
		mesh__tag__init(&tags[i]);
		tags[i].key = (char *)m->kv[i].key;
		tags[i].value = (char *)m->kv[i].value;
		tagp[i] = &tags[i];
	}
	pb->n_tags = m->kv_count;
	pb->tags = tagp;
}

/* Scratch for describing one member as a protobuf Update. */
struct swim__pb_member {
	Mesh__Update u;
	Mesh__Meta meta;
	Mesh__Tag tags[SWIM_KV_MAX];
	Mesh__Tag *tagp[SWIM_KV_MAX];
};

/* Describes @m; @with_record adds its signed record: key and signature,
 * and the address and metadata they cover unless it is a leave. */
static void
swim__member_to_pb(const struct swim_member *m, const char *from,
		   bool with_record, struct swim__pb_member *pm)
{
	mesh__update__init(&pm->u);
	pm->u.name = (char *)m->name;
	pm->u.state = (Mesh__MemberState)m->state;
	pm->u.incarnation = m->incarnation;
	if (from != NULL)
		pm->u.from = (char *)from;
	if (with_record) {
		pm->u.key.data = (uint8_t *)m->key;
		pm->u.key.len = SWIM_KEY_BYTES;
		pm->u.sig.data = (uint8_t *)m->sig;
		pm->u.sig.len = SWIM_SIG_BYTES;
	}
	if (with_record && m->state != SWIM_LEFT) {
		pm->u.ip.data = (uint8_t *)m->addr.ip;
		pm->u.ip.len = m->addr.family == 4 ? 4 : 16;
		pm->u.port = m->addr.port;
		if (m->meta != NULL) {
			swim__meta_to_pb(m->meta, &pm->meta, pm->tags,
					 pm->tagp);
			pm->u.meta = &pm->meta;
		}
	}
}

/* Queues the fact of @m's current state for dissemination. What a member
 * says of itself travels with its record; accusations travel bare. */
static void
swim__broadcast(struct swim *s, struct swim_member *m, const char *from)
{
	struct swim__pb_member pm;
	swim__member_to_pb(
	    m, from, m->state == SWIM_ALIVE || m->state == SWIM_LEFT, &pm);
	uint8_t buf[SWIM_DATAGRAM_MAX];
	size_t n = mesh__update__get_packed_size(&pm.u);
	if (n > sizeof(buf))
		return; /* cannot happen within the metadata limits */
	mesh__update__pack(&pm.u, buf);
	if (dissem_push(&s->dissem, &m->bcast, buf, n) != 0)
		MESH_LOG(s->env, MESH_LOG_WARN,
			 "swim: no memory to queue update for %s", m->name);
}

/* Builds one datagram: the body, then either @extra (one encoded Update
 * that is not queued for dissemination) alone, or, without @extra, as many
 * pending updates as fit. Only last calls have an @extra: their suspect
 * may well be gone (or across a partition), and gossip sent its way would
 * spend retransmissions that others need - in a 50/50 split at N = 200,
 * three last calls per suspect left some nodes without a copy of a death
 * for 19 s. */
static void
swim__send_packet(struct swim *s, const struct swim_addr *to, Mesh__Packet *pkt,
		  struct dissem_item *first, const uint8_t *extra,
		  size_t extra_len)
{
	struct swim__out *o = swim__out_slot(s, SWIM_OUT_DATAGRAM, to);
	if (o == NULL)
		return;
	pkt->protocol_version = SWIM_PROTOCOL_VERSION;
	size_t n = mesh__packet__get_packed_size(pkt);
	if (n > s->cfg.datagram_max)
		return;
	mesh__packet__pack(pkt, o->data);
	if (extra != NULL) {
		if (n + dissem_field_size(SWIM_UPDATES_FIELD, extra_len) <=
		    s->cfg.datagram_max)
			n += dissem_put_field(SWIM_UPDATES_FIELD, extra,
					      extra_len, o->data + n);
	} else {
		n += dissem_pack(&s->dissem, SWIM_UPDATES_FIELD,
				 swim__retransmit_limit(s), first, o->data + n,
				 s->cfg.datagram_max - n);
	}
	if (pkt->body_case == MESH__PACKET__BODY__NOT_SET &&
	    n == mesh__packet__get_packed_size(pkt))
		return; /* a gossip datagram with nothing to say */
	o->len = n;
	swim__out_commit(s, o);
	s->stats.sent_datagrams++;
	s->stats.sent_bytes += n;
}

static void
swim__send_ping(struct swim *s, const struct swim_addr *to, const char *target,
		uint32_t seq, struct dissem_item *first)
{
	Mesh__Packet pkt = MESH__PACKET__INIT;
	Mesh__Ping ping = MESH__PING__INIT;
	ping.seq = seq;
	ping.target = (char *)target;
	pkt.body_case = MESH__PACKET__BODY_PING;
	pkt.ping = &ping;
	swim__send_packet(s, to, &pkt, first, NULL, 0);
}

static void
swim__send_ack(struct swim *s, const struct swim_addr *to, uint32_t seq,
	       bool nack, uint32_t app, struct dissem_item *first)
{
	Mesh__Packet pkt = MESH__PACKET__INIT;
	Mesh__Ack ack = MESH__ACK__INIT;
	Mesh__Nack nk = MESH__NACK__INIT;
	if (nack) {
		nk.seq = seq;
		pkt.body_case = MESH__PACKET__BODY_NACK;
		pkt.nack = &nk;
	} else {
		ack.seq = seq;
		ack.app = app;
		pkt.body_case = MESH__PACKET__BODY_ACK;
		pkt.ack = &ack;
	}
	swim__send_packet(s, to, &pkt, first, NULL, 0);
}

/* Encodes a PushPull carrying our full view (or only the digest). The
 * buffer is heap: views grow with the mesh. */
static uint8_t *
swim__encode_push_pull(struct swim *s, bool full, bool reply, bool want,
		       size_t *len)
{
	Mesh__PushPull pp = MESH__PUSH_PULL__INIT;
	pp.protocol_version = SWIM_PROTOCOL_VERSION;
	pp.join = !s->joined;
	pp.reply = reply;
	pp.from = s->self->name;
	pp.digest = swim__digest(s);
	pp.want_state = want;
	struct swim__pb_member *pms = NULL;
	Mesh__Update **ups = NULL;
	if (full) {
		pms = mesh_calloc(s->env->alloc, s->nmembers, sizeof(*pms));
		ups = mesh_calloc(s->env->alloc, s->nmembers, sizeof(*ups));
		if (pms == NULL || ups == NULL) {
			mesh_free(s->env->alloc, pms);
			mesh_free(s->env->alloc, ups);
			return NULL;
		}
		for (size_t i = 0; i < s->nmembers; i++) {
			swim__member_to_pb(s->members[i], NULL, true, &pms[i]);
			ups[i] = &pms[i].u;
		}
		pp.n_members = s->nmembers;
		pp.members = ups;
	}
	size_t n = mesh__push_pull__get_packed_size(&pp);
	uint8_t *buf = n <= s->cfg.stream_max
			   ? mesh_malloc(s->env->alloc, n ? n : 1)
			   : NULL;
	if (buf != NULL)
		mesh__push_pull__pack(&pp, buf);
	else
		MESH_LOG(s->env, MESH_LOG_WARN,
			 "swim: push-pull of %zu bytes not sent (limit %u)", n,
			 s->cfg.stream_max);
	mesh_free(s->env->alloc, pms);
	mesh_free(s->env->alloc, ups);
	*len = n;
	return buf;
}

static void
swim__start_stream(struct swim *s, const struct swim_addr *to, bool full)
{
	if (s->out_count == SWIM_OUTBOX) {
		s->stats.drop_outbox_full++;
		return;
	}
	size_t len;
	uint8_t *buf = swim__encode_push_pull(s, full, false, full, &len);
	if (buf == NULL)
		return;
	struct swim__out *o = swim__out_slot(s, SWIM_OUT_STREAM, to);
	o->data = buf;
	o->len = len;
	swim__out_commit(s, o);
	s->stats.sent_streams++;
}

/* ---- state transitions ------------------------------------------------- */

static void
swim__health_add(struct swim *s, int delta)
{
	int h = (int)s->health + delta;
	if (h < 0)
		h = 0;
	if (h > (int)s->cfg.awareness_max)
		h = (int)s->cfg.awareness_max;
	s->health = (unsigned)h;
}

/* Someone says we are suspect or dead at our incarnation, or shows a
 * newer life of ours signed by our own key (a copy of our data directory
 * runs somewhere): outbid them with a higher incarnation, told to
 * everyone. Accusations can name only incarnations we signed, so the
 * 64-bit counter cannot be driven to its end from outside. */
static void
swim__refute(struct swim *s, uint64_t accused_inc, const char *what)
{
	struct swim_member *self = s->self;
	s->self_accused = true;
	uint64_t inc =
	    accused_inc >= self->incarnation ? accused_inc : self->incarnation;
	if (inc == UINT64_MAX) {
		MESH_LOG(s->env, MESH_LOG_ERROR,
			 "swim: incarnation exhausted, cannot refute");
		return;
	}
	self->incarnation = inc + 1;
	swim__rehash(s, self);
	swim__sign_self(s);
	s->stats.refutations++;
	MESH_LOG(s->env, MESH_LOG_INFO, "swim: refuting %s at inc=%llu -> %llu",
		 what, (unsigned long long)accused_inc,
		 (unsigned long long)self->incarnation);
	swim__broadcast(s, self, NULL);
	swim__event(s, SWIM_EV_SELF_INCARNATION, self, NULL);
}

/* Someone still passes on an accusation we already refuted: our newer
 * alive record missed part of the mesh. Tell it again, at the same
 * incarnation, so it rides first on our next messages (the ack to a
 * buddy-system ping among them). In a run at 5% loss, one node in 200
 * missed all ~1,900 copies of a refutation and declared a live node dead
 * at the end of the longest suspicion timeout. */
static void
swim__retell_self(struct swim *s)
{
	s->self_accused = true;
	swim__broadcast(s, s->self, NULL);
}

static void
swim__start_suspicion(struct swim *s, struct swim_member *m, const char *from,
		      uint64_t now)
{
	if (swim__reserve(s, &s->suspects, &s->suspects_cap,
			  s->nsuspects + 1) != 0)
		return; /* stays alive: better than a suspect never timed */
	struct swim__suspicion *su = mesh_calloc(s->env->alloc, 1, sizeof(*su));
	if (su == NULL)
		return;
	size_t n = swim__live_count(s);
	su->start_ms = now;
	su->min_ms = (uint64_t)(s->cfg.suspicion_mult * swim__log_scale(s) *
				s->cfg.probe_interval_ms);
	su->max_ms = su->min_ms * s->cfg.suspicion_max_mult;
	/* Fewer live members than k + 2 cannot give k independent
	 * confirmations (accused and accuser excluded): go straight to min. */
	uint32_t k = s->cfg.suspicion_confirmations;
	if (k >= SWIM_MAX_ACCUSERS)
		k = SWIM_MAX_ACCUSERS - 1;
	su->k = n < (size_t)k + 2 ? 0 : k;
	/* Hearsay (from == NULL) names no accuser: the timeout stays at its
	 * maximum until members that probed the node themselves confirm. */
	if (from != NULL)
		su->accusers[su->naccusers++] = swim__name_hash(from);
	swim__set_state(s, m, SWIM_SUSPECT, now);
	su->list_idx = s->nsuspects;
	s->suspects[s->nsuspects++] = m;
	m->susp = su;
}

/* Lifeguard's timeouts stretched by what this node sees of the network:
 * late answers (loss or delay) and its own health. A refutation crosses
 * the mesh in O(log N) gossip rounds, and loss makes each round less
 * likely to reach a given node. Computed at every look, so a node that
 * learns of loss during a suspicion waits longer for it. */
double
swim__suspicion_stretch(const struct swim *s)
{
	return (1.0 + s->cfg.suspicion_loss_mult * s->late_share) *
	       (1.0 + (double)s->health / (double)(s->cfg.awareness_max + 1));
}

uint64_t
swim__suspicion_timeout(const struct swim *s, const struct swim_member *m)
{
	const struct swim__suspicion *su = m->susp;
	double t = (double)su->min_ms;
	if (su->k > 0) {
		double frac = log((double)su->confirmations + 1.0) /
			      log((double)su->k + 1.0);
		t = (double)su->max_ms -
		    ((double)su->max_ms - (double)su->min_ms) * frac;
		if (t < (double)su->min_ms)
			t = (double)su->min_ms;
	}
	return (uint64_t)(t * swim__suspicion_stretch(s));
}

/* When @m's suspicion is next due: at its timeout, and never before the
 * previous last call had a probe timeout to be answered. */
static uint64_t
swim__suspicion_due(const struct swim *s, const struct swim_member *m)
{
	uint64_t t = m->susp->start_ms + swim__suspicion_timeout(s, m);
	return t > m->susp->next_call_ms ? t : m->susp->next_call_ms;
}

/* A record of ours signed with another key: another node runs under our
 * name (or our data directory was replaced). Nothing is refuted - views
 * that hold our key already refuse it - but the operator must know. */
static void
swim__key_conflict(struct swim *s, const char *name)
{
	uint64_t n = ++s->stats.drop_key_conflict;
	if (n & (n - 1))
		return; /* logged at 1, 2, 4, 8, ... */
	if (strcmp(name, s->self->name) == 0)
		MESH_LOG(s->env, MESH_LOG_ERROR,
			 "swim: another node claims our name %s with a "
			 "different identity key (%llu records refused)",
			 name, (unsigned long long)n);
	else
		MESH_LOG(s->env, MESH_LOG_WARN,
			 "swim: record for %s under a different identity key "
			 "refused (%llu so far): the name stays with the key "
			 "first seen until the member is forgotten",
			 name, (unsigned long long)n);
}

/* Takes a newer alive record of @m (checked by the caller). */
static void
swim__apply_alive(struct swim *s, uint64_t now, struct swim_member *m,
		  uint64_t inc, const struct swim_addr *addr,
		  const struct swim_meta *meta, const uint8_t *sig)
{
	enum swim_state was = m->state;
	m->hearsay_dead = 0; /* a newer life: old verdicts do not apply */
	/* A suspect refuted: someone's probes of a live member failed, so
	 * suspicions here are not to be trusted for a while (see
	 * swim__network_lossy()), whatever our own probes say. */
	if (was == SWIM_SUSPECT)
		s->since_refuted = 0;
	bool changed = !swim_addr_equal(addr, &m->addr) ||
		       swim__meta_hash(meta) != m->meta_hash;
	m->incarnation = inc;
	m->addr = *addr;
	memcpy(m->sig, sig, SWIM_SIG_BYTES);
	swim__rehash(s, m);
	swim__set_meta(s, m, meta);
	if (was != SWIM_ALIVE)
		swim__set_state(s, m, SWIM_ALIVE, now);
	s->stats.updates_applied++;
	swim__broadcast(s, m, NULL);
	if (was != SWIM_ALIVE) {
		MESH_LOG(s->env, MESH_LOG_INFO, "swim: %s %s->alive inc=%llu",
			 m->name, swim_state_name(was),
			 (unsigned long long)inc);
		swim__event(s, SWIM_EV_MEMBER_ALIVE, m, NULL);
	} else if (changed) {
		swim__event(s, SWIM_EV_MEMBER_UPDATED, m, NULL);
	}
}

/* Admits a member we did not know, on a record checked by the caller. */
static struct swim_member *
swim__admit(struct swim *s, uint64_t now, const char *name, uint64_t inc,
	    const struct swim_addr *addr, const struct swim_meta *meta,
	    const uint8_t *key, const uint8_t *sig)
{
	struct swim_member *m = swim__add(s, name, now);
	if (m == NULL || swim__set_meta(s, m, meta) != 0) {
		MESH_LOG(s->env, MESH_LOG_WARN,
			 "swim: no memory to add member %s", name);
		if (m != NULL)
			swim__remove(s, m);
		return NULL;
	}
	m->incarnation = inc;
	m->addr = *addr;
	swim__rehash(s, m);
	memcpy(m->key, key, SWIM_KEY_BYTES);
	memcpy(m->sig, sig, SWIM_SIG_BYTES);
	return m;
}

static void
swim__apply_suspect(struct swim *s, uint64_t now, struct swim_member *m,
		    uint64_t inc, const char *from)
{
	if (m == s->self) {
		if (s->leaving)
			return;
		if (inc >= m->incarnation) {
			swim__health_add(s, 1);
			swim__refute(s, inc, "suspicion");
		} else {
			swim__retell_self(s);
		}
		return;
	}
	if (inc < m->incarnation)
		return;
	if (m->state == SWIM_SUSPECT && inc == m->incarnation) {
		/* Lifeguard: an independent accuser shortens the timeout. */
		struct swim__suspicion *su = m->susp;
		if (from == NULL || su->confirmations >= su->k)
			return;
		uint64_t h = swim__name_hash(from);
		for (uint32_t i = 0; i < su->naccusers; i++)
			if (su->accusers[i] == h)
				return;
		su->accusers[su->naccusers++] = h;
		su->confirmations++;
		s->stats.confirmations++;
		swim__broadcast(s, m, from);
		return;
	}
	if (m->state == SWIM_DEAD || m->state == SWIM_LEFT)
		return;
	if (m->state == SWIM_SUSPECT)
		swim__set_state(s, m, SWIM_ALIVE, now); /* newer incarnation */
	m->incarnation = inc;
	swim__rehash(s, m);
	swim__start_suspicion(s, m, from, now);
	if (m->state != SWIM_SUSPECT)
		return;
	s->stats.updates_applied++;
	MESH_LOG(s->env, MESH_LOG_INFO,
		 "swim: %s alive->suspect inc=%llu by %s", m->name,
		 (unsigned long long)inc, from ? from : "hearsay");
	swim__broadcast(s, m, from);
	swim__event(s, SWIM_EV_MEMBER_SUSPECT, m, from);
}

/* Marks @m dead at @inc on @from's word, or left when @left_sig (its own
 * signature of the leave, checked by the caller) is given. */
static void
swim__apply_dead(struct swim *s, uint64_t now, struct swim_member *m,
		 uint64_t inc, const char *from, const uint8_t *left_sig)
{
	bool left = left_sig != NULL;
	if (m == s->self) {
		if (s->leaving)
			return;
		if (inc >= m->incarnation)
			swim__refute(s, inc, left ? "a leave" : "death");
		else
			swim__retell_self(s);
		return;
	}
	if (inc < m->incarnation || m->state == SWIM_LEFT ||
	    (m->state == SWIM_DEAD && !left))
		return;
	enum swim_state was = m->state;
	m->incarnation = inc;
	swim__rehash(s, m);
	if (left)
		memcpy(m->sig, left_sig, SWIM_SIG_BYTES);
	swim__set_state(s, m, left ? SWIM_LEFT : SWIM_DEAD, now);
	s->stats.updates_applied++;
	MESH_LOG(s->env, MESH_LOG_INFO, "swim: %s %s->%s inc=%llu by %s",
		 m->name, swim_state_name(was), left ? "left" : "dead",
		 (unsigned long long)inc, from);
	swim__broadcast(s, m, from);
	swim__event(s, left ? SWIM_EV_MEMBER_LEFT : SWIM_EV_MEMBER_DEAD, m,
		    from);
}

/* ---- decoding updates -------------------------------------------------- */

static bool
swim__str_ok(const char *s, size_t max)
{
	return s != NULL && strnlen(s, max + 1) <= max;
}

/* Validates an Update from the wire into plain values. Hostile input:
 * every string and length is checked before use. */
static int
swim__update_from_pb(const Mesh__Update *u, struct swim_addr *addr,
		     struct swim_meta *meta, bool need_addr)
{
	const char *why;
	if (!swim__str_ok(u->name, SWIM_NAME_MAX) ||
	    !swim_name_is_valid(u->name) || (unsigned)u->state > SWIM_LEFT)
		return MESH_EDECODE;
	if (u->from != NULL && u->from[0] != 0 &&
	    (!swim__str_ok(u->from, SWIM_NAME_MAX) ||
	     !swim_name_is_valid(u->from)))
		return MESH_EDECODE;
	memset(addr, 0, sizeof(*addr));
	memset(meta, 0, sizeof(*meta));
	if (!need_addr)
		return 0;
	if ((u->ip.len != 4 && u->ip.len != 16) || u->port == 0 ||
	    u->port > 65535)
		return MESH_EDECODE;
	addr->family = u->ip.len == 4 ? 4 : 6;
	memcpy(addr->ip, u->ip.data, u->ip.len);
	addr->port = (uint16_t)u->port;
	if (u->meta == NULL)
		return 0;
	const Mesh__Meta *pm = u->meta;
	if (!swim__str_ok(pm->zone, SWIM_TAG_MAX) ||
	    !swim__str_ok(pm->region, SWIM_TAG_MAX) ||
	    !swim__str_ok(pm->cell, SWIM_TAG_MAX) || pm->n_tags > SWIM_KV_MAX)
		return MESH_EDECODE;
	strcpy(meta->zone, pm->zone);
	strcpy(meta->region, pm->region);
	strcpy(meta->cell, pm->cell);
	for (size_t i = 0; i < pm->n_tags; i++) {
		const Mesh__Tag *t = pm->tags[i];
		if (!swim__str_ok(t->key, SWIM_KV_KEY_MAX) ||
		    !swim__str_ok(t->value, SWIM_KV_VALUE_MAX))
			return MESH_EDECODE;
		strcpy(meta->kv[i].key, t->key);
		strcpy(meta->kv[i].value, t->value);
	}
	meta->kv_count = (unsigned)pm->n_tags;
	return swim__meta_check(meta, &why) == 0 ? 0 : MESH_EDECODE;
}

/* Moves @m to the front of what is left of this round's probe order. */
static void
swim__probe_soon(struct swim *s, struct swim_member *m)
{
	m->hearsay_dead = 1;
	for (size_t i = s->probe_pos; i < s->probe_len; i++)
		if (s->probe_list[i] == m) {
			s->probe_list[i] = s->probe_list[s->probe_pos];
			s->probe_list[s->probe_pos] = m;
			return;
		}
	/* Already probed this round: probe it again first. */
	if (s->probe_pos > 0) {
		size_t j = 0;
		while (j < s->probe_pos && s->probe_list[j] != m)
			j++;
		if (j < s->probe_pos) {
			s->probe_pos--;
			s->probe_list[j] = s->probe_list[s->probe_pos];
			s->probe_list[s->probe_pos] = m;
		}
	}
}

/* Applies one fact. @via_push_pull: another node's view is hearsay about
 * members we can probe ourselves.
 *
 * A record (key and signature) is checked only when it would change
 * something: a member we do not know, a newer incarnation, a leave. Then
 * the name must still belong to the key we hold, and the signature must
 * be that key's. An accusation without a record names an incarnation we
 * hold signed, or it is dropped.
 *
 * SUSPECT and DEAD facts in push-pull: a newer incarnation (with its
 * record) is taken alive and then suspected with no accuser (longest
 * timeout, never a confirmation). A DEAD fact about a member we see alive
 * at the same incarnation moves it to the front of our probe order: if our
 * own probe fails too, it is dead (suspect, on a network that loses
 * packets); if it answers, nothing happens. That is
 * how a node that missed every gossiped copy of a death learns it, without
 * each side of a healed partition suspecting the half it can reach. */
static void
swim__apply_update(struct swim *s, uint64_t now, const Mesh__Update *u,
		   const char *sender, bool via_push_pull)
{
	struct swim_addr addr;
	struct swim_meta meta;
	bool left = u->state == MESH__MEMBER_STATE__MEMBER_LEFT;
	bool has_record = u->sig.len > 0 || u->key.len > 0;
	bool need_addr = u->state == MESH__MEMBER_STATE__MEMBER_ALIVE ||
			 (has_record && !left);
	if (swim__update_from_pb(u, &addr, &meta, need_addr) != 0) {
		s->stats.drop_bad_update++;
		return;
	}
	bool needs_record =
	    u->state == MESH__MEMBER_STATE__MEMBER_ALIVE || left;
	if ((needs_record && !has_record) ||
	    (has_record &&
	     (u->key.len != SWIM_KEY_BYTES || u->sig.len != SWIM_SIG_BYTES))) {
		/* What a member says of itself, without its signature. */
		s->stats.drop_bad_signature++;
		return;
	}
	const char *from = u->from != NULL && u->from[0] ? u->from : sender;
	if (from == NULL || from[0] == 0)
		from = "?";
	struct swim_member *m = swim__find(s, u->name);
	uint64_t inc = u->incarnation;
	if (has_record) {
		if (m != NULL &&
		    memcmp(m->key, u->key.data, SWIM_KEY_BYTES) != 0) {
			swim__key_conflict(s, u->name);
			return;
		}
		bool news =
		    m == NULL || inc > m->incarnation ||
		    (left && inc == m->incarnation && m->state != SWIM_LEFT);
		if (!news) {
			has_record = false; /* nothing new: no check needed */
		} else if (!swim__record_valid(s, u->name, inc, left, &addr,
					       &meta, u->key.data,
					       u->sig.data)) {
			s->stats.drop_bad_signature++;
			return;
		}
	}
	if (m == NULL) {
		/* Only a member's own alive record introduces it. */
		if (u->state != MESH__MEMBER_STATE__MEMBER_ALIVE)
			return;
		m = swim__admit(s, now, u->name, inc, &addr, &meta, u->key.data,
				u->sig.data);
		if (m == NULL)
			return;
		s->stats.updates_applied++;
		MESH_LOG(s->env, MESH_LOG_INFO, "swim: %s joined inc=%llu",
			 m->name, (unsigned long long)inc);
		swim__broadcast(s, m, NULL);
		swim__event(s, SWIM_EV_MEMBER_JOINED, m, NULL);
		return;
	}
	if (!has_record && inc > m->incarnation) {
		s->stats.drop_unseen_incarnation++;
		return;
	}
	switch (u->state) {
	case MESH__MEMBER_STATE__MEMBER_ALIVE:
		if (!has_record)
			break;
		if (m == s->self) {
			if (!s->leaving)
				swim__refute(s, inc, "a newer life of ours");
			break;
		}
		swim__apply_alive(s, now, m, inc, &addr, &meta, u->sig.data);
		break;
	case MESH__MEMBER_STATE__MEMBER_SUSPECT:
	case MESH__MEMBER_STATE__MEMBER_DEAD:
		if (has_record && m != s->self) {
			/* A newer life, already accused: take the life, then
			 * the accusation as hearsay. */
			swim__apply_alive(s, now, m, inc, &addr, &meta,
					  u->sig.data);
			swim__apply_suspect(s, now, m, inc, NULL);
			break;
		}
		if (via_push_pull && m != s->self) {
			if (inc == m->incarnation && m->state == SWIM_ALIVE &&
			    u->state == MESH__MEMBER_STATE__MEMBER_DEAD)
				swim__probe_soon(s, m);
		} else if (u->state == MESH__MEMBER_STATE__MEMBER_SUSPECT) {
			swim__apply_suspect(s, now, m, inc, from);
		} else if (m != s->self && m->state == SWIM_ALIVE &&
			   inc == m->incarnation) {
			/* A death we saw no suspicion of: suspect it on the
			 * declarer's word and let our own probe decide. */
			swim__apply_suspect(s, now, m, inc, from);
			if (m->state == SWIM_SUSPECT)
				swim__probe_soon(s, m);
		} else if (m != s->self && m->state == SWIM_SUSPECT &&
			   inc == m->incarnation && swim__network_lossy(s)) {
			/* Where probes get lost, another node's verdict only
			 * confirms our suspicion (timeout at its minimum), and
			 * our own timer and last calls decide: its timer may
			 * have run while it could not reach the member - a
			 * partition that has just healed, at 10% loss - while
			 * we can. On a clean network the verdict stands, so a
			 * split is seen in full quickly. */
			swim__apply_suspect(s, now, m, inc, from);
		} else {
			swim__apply_dead(s, now, m, inc, from, NULL);
		}
		break;
	case MESH__MEMBER_STATE__MEMBER_LEFT:
		if (has_record)
			swim__apply_dead(s, now, m, inc, from, u->sig.data);
		break;
	default:
		s->stats.drop_bad_update++;
		break;
	}
}

/* ---- probing ----------------------------------------------------------- */

static uint64_t
swim__scaled(const struct swim *s, uint32_t ms)
{
	return (uint64_t)ms * (s->health + 1);
}

uint32_t
swim__rto(const struct swim *s)
{
	if (s->srtt8 == 0)
		return s->cfg.probe_timeout_ms;
	uint32_t rto = (s->srtt8 >> 3) + (s->rttvar4 > 0 ? s->rttvar4 : 1);
	if (rto < s->cfg.probe_timeout_min_ms)
		rto = s->cfg.probe_timeout_min_ms;
	if (rto > s->cfg.probe_timeout_ms)
		rto = s->cfg.probe_timeout_ms;
	return rto;
}

/* One round-trip sample (RFC 6298, section 2, with its gains 1/8 and
 * 1/4); a loopback sample of 0 ms counts as 1 so that srtt8 == 0 keeps
 * meaning "none yet". */
static void
swim__rtt_sample(struct swim *s, uint64_t sent_ms, uint64_t now)
{
	uint64_t r64 = now > sent_ms ? now - sent_ms : 0;
	uint32_t r = r64 == 0 ? 1 : r64 > 60000 ? 60000 : (uint32_t)r64;
	if (s->srtt8 == 0) {
		s->srtt8 = r << 3;
		s->rttvar4 = r << 1;
		return;
	}
	int32_t err = (int32_t)r - (int32_t)(s->srtt8 >> 3);
	int32_t var = (int32_t)s->rttvar4 +
		      (((err < 0 ? -err : err) * 4 - (int32_t)s->rttvar4) >> 2);
	s->rttvar4 = var < 0 ? 0 : (uint32_t)var;
	int32_t srtt = (int32_t)s->srtt8 + err;
	s->srtt8 = srtt < 8 ? 8 : (uint32_t)srtt;
}

bool
swim__network_clean(const struct swim *s)
{
	return s->in_time_run >= SWIM_CLEAN_RUN && !swim__network_lossy(s);
}

bool
swim__network_lossy(const struct swim *s)
{
	return s->late_share > SWIM_LOSSY_SHARE ||
	       s->since_refuted < SWIM_CLEAN_RUN;
}

/* An answered probe: @late when the answer missed the direct timeout. */
static void
swim__late_sample(struct swim *s, bool late)
{
	/* A plain mean over the first samples, so that a node learns its
	 * network within a few probes; then a moving average over ~16. */
	if (s->late_samples < 16)
		s->late_samples++;
	s->late_share +=
	    ((late ? 1.0 : 0.0) - s->late_share) / (double)s->late_samples;
	if (late)
		s->in_time_run = 0;
	else if (s->in_time_run < UINT32_MAX)
		s->in_time_run++;
	if (s->since_refuted < UINT32_MAX)
		s->since_refuted++;
}

/* The probe period: the interval, or longer when round trips are long:
 * the direct wait, then the indirect round (four one-way trips: two
 * measured round trips and their variance, or a second timeout before
 * the first sample). Stretched by the local health score. */
static uint64_t
swim__period(const struct swim *s)
{
	uint64_t need = swim__rto(s);
	need += s->srtt8 != 0 ? 2ull * (s->srtt8 >> 3) + s->rttvar4 : need;
	uint64_t iv = s->cfg.probe_interval_ms;
	return swim__scaled(s, (uint32_t)(need > iv ? need : iv));
}

static bool
swim__probeable(const struct swim_member *m)
{
	return m->state == SWIM_ALIVE || m->state == SWIM_SUSPECT;
}

/* Up to @k distinct random alive members other than self and @skip, and
 * suspects too when @suspects_too: gossip must reach a suspect or it may
 * never hear that it should refute (helpers for ping-req and push-pull
 * peers stay alive-only, as in memberlist). */
static size_t
swim__random_members(struct swim *s, size_t k, const struct swim_member *skip,
		     bool suspects_too, struct swim_member **out)
{
	size_t got = 0;
	/* Random draws, bounded; views are large and mostly alive, so this
	 * finds k quickly without walking the table. */
	for (size_t tries = 0; got < k && tries < 8 * k + 8; tries++) {
		struct swim_member *m =
		    s->members[mesh_rand_below(&s->rng, (uint32_t)s->nmembers)];
		if (m == s->self || m == skip ||
		    !(m->state == SWIM_ALIVE ||
		      (suspects_too && m->state == SWIM_SUSPECT)))
			continue;
		bool dup = false;
		for (size_t i = 0; i < got; i++)
			dup |= out[i] == m;
		if (!dup)
			out[got++] = m;
	}
	return got;
}

static struct swim_member *
swim__next_target(struct swim *s)
{
	for (size_t scanned = 0; scanned <= s->probe_len; scanned++) {
		if (s->probe_pos >= s->probe_len)
			swim__rebuild_probe_list(s);
		if (s->probe_len == 0)
			return NULL;
		struct swim_member *m = s->probe_list[s->probe_pos++];
		if (swim__probeable(m))
			return m;
	}
	return NULL;
}

static void
swim__start_probe(struct swim *s, uint64_t now)
{
	uint64_t interval = swim__period(s);
	s->next_probe_ms = now + interval;
	struct swim_member *t = swim__next_target(s);
	if (t == NULL)
		return;
	s->target = t;
	s->probe_seq = ++s->seq;
	s->probe_inc = t->incarnation;
	s->phase = SWIM_PROBE_DIRECT;
	s->probe_timeout_at = now + swim__scaled(s, swim__rto(s));
	s->period_end = now + interval;
	s->expected_nacks = 0;
	s->nacks = 0;
	s->retry_seq = 0;
	s->probe_sent_ms = now;
	s->stats.probes++;
	/* Buddy system: a suspect hears first that it is suspected. */
	swim__send_ping(s, &t->addr, t->name, s->probe_seq,
			t->state == SWIM_SUSPECT ? t->bcast : NULL);
}

static void
swim__probe_indirect(struct swim *s, uint64_t now)
{
	if (s->cfg.probe_retry) {
		s->retry_seq = ++s->seq;
		s->retry_sent_ms = now;
		swim__send_ping(
		    s, &s->target->addr, s->target->name, s->retry_seq,
		    s->target->state == SWIM_SUSPECT ? s->target->bcast : NULL);
	}
	struct swim_member *helpers[16];
	/* More helpers where packets get lost (cfg.indirect_checks_lossy). */
	uint32_t k = swim__network_lossy(s) ? s->cfg.indirect_checks_lossy
					    : s->cfg.indirect_checks;
	size_t n = swim__random_members(s, k, s->target, false, helpers);
	s->phase = SWIM_PROBE_INDIRECT;
	s->expected_nacks = (uint32_t)n;
	if (n > 0)
		s->stats.indirect_probes++;
	for (size_t i = 0; i < n; i++) {
		Mesh__Packet pkt = MESH__PACKET__INIT;
		Mesh__PingReq req = MESH__PING_REQ__INIT;
		req.seq = s->probe_seq;
		req.target = s->target->name;
		req.target_ip.data = s->target->addr.ip;
		req.target_ip.len = s->target->addr.family == 4 ? 4 : 16;
		req.target_port = s->target->addr.port;
		pkt.body_case = MESH__PACKET__BODY_PING_REQ;
		pkt.ping_req = &req;
		swim__send_packet(s, &helpers[i]->addr, &pkt, NULL, NULL, 0);
	}
}

static void
swim__probe_failed(struct swim *s, uint64_t now)
{
	struct swim_member *t = s->target;
	s->phase = SWIM_PROBE_IDLE;
	s->target = NULL;
	s->stats.probe_failures++;
	/* Lifeguard: missing nacks mean our own network is the problem. */
	if (s->expected_nacks > 0)
		swim__health_add(s, (int)(s->expected_nacks - s->nacks));
	else
		swim__health_add(s, 1);
	if (t->state != SWIM_ALIVE && t->state != SWIM_SUSPECT)
		return;
	/* A newer life arrived while we probed the old one: our silence
	 * is about the old life only. */
	if (t->incarnation != s->probe_inc)
		return;
	/* Another node already judged it dead and our own direct and indirect
	 * probes now agree: two independent verdicts, no need to wait - on a
	 * network with no sign of loss. Where probes get lost, one failed
	 * probe is weak evidence: after a healed partition at 10% loss
	 * (N = 1,000) this path declared live nodes dead; there the member
	 * is only suspected, with the usual timeout and last calls. */
	if (t->hearsay_dead && !swim__network_lossy(s)) {
		t->hearsay_dead = 0;
		s->stats.deaths_declared++;
		swim__apply_dead(s, now, t, t->incarnation, s->self->name,
				 NULL);
		return;
	}
	/* Already suspect: our own failed probe is an independent
	 * confirmation (Lifeguard), told to everyone like a new accusation. */
	if (t->state == SWIM_ALIVE)
		s->stats.suspicions++;
	swim__apply_suspect(s, now, t, t->incarnation, s->self->name);
	/* Helpers that nacked tried the target too and failed: on a network
	 * with no sign of loss, that is independent evidence (ours alone,
	 * not told on: the next prober confirms for the others). */
	if (s->cfg.nack_confirms && t->state == SWIM_SUSPECT &&
	    t->susp != NULL && s->nacks > 0 && swim__network_clean(s)) {
		struct swim__suspicion *su = t->susp;
		uint32_t add = s->nacks;
		if (su->confirmations + add > su->k)
			add = su->k > su->confirmations
				  ? su->k - su->confirmations
				  : 0;
		su->confirmations += add;
		s->stats.nack_confirmations += add;
	}
}

static void
swim__probe_acked(struct swim *s)
{
	swim__late_sample(s, s->phase != SWIM_PROBE_DIRECT);
	s->target->hearsay_dead = 0;
	s->phase = SWIM_PROBE_IDLE;
	s->target = NULL;
	s->stats.probe_acks++;
	swim__health_add(s, -1);
}

/* ---- anti-entropy by datagram ------------------------------------------ */

/* The periodic anti-entropy offer: our digest in one sealed datagram (about
 * 60 bytes on the wire, against a TCP connection's handshake, two frames
 * and teardown: about 22 bytes/s per node at one exchange per 30 s). A
 * lost offer only skips a round. */
static void
swim__send_sync(struct swim *s, const struct swim_addr *to)
{
	Mesh__Packet pkt = MESH__PACKET__INIT;
	Mesh__Sync sync = MESH__SYNC__INIT;
	sync.digest = swim__digest(s);
	pkt.body_case = MESH__PACKET__BODY_SYNC;
	pkt.sync = &sync;
	s->stats.syncs_sent++;
	swim__send_packet(s, to, &pkt, NULL, NULL, 0);
}

/* Views differ: we open the push-pull, full view first, asking for theirs
 * (as a reconnect does). At most one per SWIM_SYNC_STREAM_GAP_MS: during
 * churn many offers differ for a moment, and one exchange settles them. */
static void
swim__handle_sync(struct swim *s, uint64_t now, const struct swim_addr *from,
		  const Mesh__Sync *sync)
{
	if (sync->digest == swim__digest(s) || s->leaving || !s->joined)
		return;
	if (now < s->next_sync_stream_ms) {
		s->stats.syncs_deferred++;
		return;
	}
	s->next_sync_stream_ms = now + SWIM_SYNC_STREAM_GAP_MS;
	s->stats.syncs_differed++;
	swim__start_stream(s, from, true);
}

/* ---- receiving datagrams ----------------------------------------------- */

static void
swim__handle_ack(struct swim *s, uint64_t now, const struct swim_addr *from,
		 uint32_t seq, bool nack, uint32_t app)
{
	/* The target's own answer: compare application digests. */
	if (s->phase != SWIM_PROBE_IDLE && !nack && app != 0 &&
	    s->app_digest != 0 && app != s->app_digest &&
	    (seq == s->probe_seq || seq == s->retry_seq) &&
	    swim_addr_equal(from, &s->target->addr))
		swim__event(s, SWIM_EV_APP_DIFFERS, s->target, NULL);
	if (s->phase != SWIM_PROBE_IDLE && !nack && s->retry_seq != 0 &&
	    seq == s->retry_seq) {
		swim__rtt_sample(s, s->retry_sent_ms, now);
		swim__probe_acked(s);
		return;
	}
	if (s->phase != SWIM_PROBE_IDLE && seq == s->probe_seq) {
		/* From the target itself: a round-trip sample, late or not
		 * (a late one is what lets the timeout grow). A relayed ack
		 * went the long way and says nothing about one trip. */
		if (!nack && swim_addr_equal(from, &s->target->addr))
			swim__rtt_sample(s, s->probe_sent_ms, now);
		if (nack) {
			s->stats.nacks_received++;
			if (s->phase == SWIM_PROBE_INDIRECT &&
			    s->nacks < s->expected_nacks &&
			    ++s->nacks == s->expected_nacks)
				/* Every helper is there and none reached the
				 * target either: no need to wait out the
				 * period (on a LAN that is most of it). */
				swim__probe_failed(s, now);
		} else {
			swim__probe_acked(s);
		}
		return;
	}
	if (nack)
		return;
	for (int i = 0; i < SWIM_RELAYS; i++) {
		struct swim__relay *r = &s->relays[i];
		if (r->used && r->seq == seq) {
			swim__rtt_sample(s, r->sent_ms, now);
			swim__send_ack(s, &r->origin, r->origin_seq, false, 0,
				       NULL);
			r->used = false;
			return;
		}
	}
	s->stats.late_acks++;
}

static void
swim__handle_ping_req(struct swim *s, uint64_t now,
		      const struct swim_addr *from, const Mesh__PingReq *req)
{
	if (!swim__str_ok(req->target, SWIM_NAME_MAX) ||
	    !swim_name_is_valid(req->target) ||
	    (req->target_ip.len != 4 && req->target_ip.len != 16) ||
	    req->target_port == 0 || req->target_port > 65535) {
		s->stats.drop_decode++;
		return;
	}
	struct swim__relay *r = NULL;
	for (int i = 0; i < SWIM_RELAYS && r == NULL; i++)
		if (!s->relays[i].used)
			r = &s->relays[i];
	if (r == NULL) {
		s->stats.drop_relay_full++;
		return;
	}
	struct swim_addr to = {0};
	to.family = req->target_ip.len == 4 ? 4 : 6;
	memcpy(to.ip, req->target_ip.data, req->target_ip.len);
	to.port = (uint16_t)req->target_port;
	r->used = true;
	r->nacked = false;
	r->seq = ++s->seq;
	r->origin_seq = req->seq;
	r->origin = *from;
	/* Nack before the requester's own indirect round ends (Lifeguard
	 * sends it at 80% of the probe timeout). */
	r->nack_at = now + swim__rto(s) * 4 / 5;
	r->expire_at = now + swim__period(s);
	r->sent_ms = now;
	swim__send_ping(s, &to, req->target, r->seq, NULL);
}

/* Unknown major protocol versions are refused, counted and logged; minor
 * versions only add fields, which protobuf skips. */
static bool
swim__version_ok(struct swim *s, uint32_t version, const char *what)
{
	if (version >> 8 == SWIM_PROTOCOL_MAJOR)
		return true;
	s->stats.drop_version++;
	MESH_LOG(s->env, MESH_LOG_DEBUG, "swim: dropped %s of protocol %u.%u",
		 what, version >> 8, version & 0xff);
	return false;
}

int
swim_recv_datagram(struct swim *s, uint64_t now_ms,
		   const struct swim_addr *from, const uint8_t *buf, size_t len)
{
	swim__begin_call(s);
	s->stats.recv_datagrams++;
	s->stats.recv_bytes += len;
	if (len > s->cfg.datagram_max) {
		s->stats.drop_decode++;
		return MESH_ETOOBIG;
	}
	ProtobufCAllocator pa = {swim__arena_alloc, swim__arena_free, s};
	s->arena_used = 0;
	Mesh__Packet *pkt = mesh__packet__unpack(&pa, len, buf);
	if (pkt == NULL) {
		s->stats.drop_decode++;
		return MESH_EDECODE;
	}
	int rc = 0;
	if (!swim__version_ok(s, pkt->protocol_version, "datagram")) {
		rc = MESH_EVERSION;
		goto out;
	}
	/* Facts first: a refutation they cause rides on our answer. */
	s->self_accused = false;
	for (size_t i = 0; i < pkt->n_updates; i++)
		swim__apply_update(s, now_ms, pkt->updates[i], NULL, false);
	switch (pkt->body_case) {
	case MESH__PACKET__BODY_PING:
		if (!swim__str_ok(pkt->ping->target, SWIM_NAME_MAX) ||
		    strcmp(pkt->ping->target, s->self->name) != 0) {
			s->stats.drop_misaddressed++;
			break;
		}
		/* A ping that accused us (a buddy ping or a last call) gets
		 * our alive record first in its ack, before any other news:
		 * after a healed partition the queue is full of it. */
		swim__send_ack(s, from, pkt->ping->seq, false, s->app_digest,
			       s->self_accused ? s->self->bcast : NULL);
		break;
	case MESH__PACKET__BODY_ACK:
		swim__handle_ack(s, now_ms, from, pkt->ack->seq, false,
				 pkt->ack->app);
		break;
	case MESH__PACKET__BODY_NACK:
		swim__handle_ack(s, now_ms, from, pkt->nack->seq, true, 0);
		break;
	case MESH__PACKET__BODY_PING_REQ:
		swim__handle_ping_req(s, now_ms, from, pkt->ping_req);
		break;
	case MESH__PACKET__BODY_SYNC:
		swim__handle_sync(s, now_ms, from, pkt->sync);
		break;
	default:
		break; /* gossip only */
	}
out:
	mesh__packet__free_unpacked(pkt, &pa);
	return rc;
}

/* ---- push-pull ----------------------------------------------------------- */

int
swim_recv_stream(struct swim *s, uint64_t now_ms, const struct swim_addr *from,
		 const uint8_t *buf, size_t len, const uint8_t **reply,
		 size_t *reply_len)
{
	(void)from;
	swim__begin_call(s);
	*reply = NULL;
	*reply_len = 0;
	s->stats.recv_streams++;
	if (len > s->cfg.stream_max) {
		s->stats.drop_decode++;
		return MESH_ETOOBIG;
	}
	ProtobufCAllocator pa = {swim__heap_alloc, swim__heap_free, s};
	Mesh__PushPull *pp = mesh__push_pull__unpack(&pa, len, buf);
	if (pp == NULL) {
		s->stats.drop_decode++;
		return MESH_EDECODE;
	}
	int rc = 0;
	if (!swim__version_ok(s, pp->protocol_version, "stream frame")) {
		rc = MESH_EVERSION;
		goto out;
	}
	if (!swim__str_ok(pp->from, SWIM_NAME_MAX) ||
	    !swim_name_is_valid(pp->from)) {
		s->stats.drop_decode++;
		rc = MESH_EDECODE;
		goto out;
	}
	/* A digest compare only means something before we merge. */
	bool in_sync = pp->digest == swim__digest(s);
	for (size_t i = 0; i < pp->n_members; i++)
		swim__apply_update(s, now_ms, pp->members[i], pp->from, true);
	bool send = false, want = false;
	if (!pp->reply) {
		/* A request: a full view always gets ours back; a digest gets
		 * "in sync", or our view and a request for theirs. */
		send = true;
		want = pp->n_members == 0 && !in_sync;
	} else {
		if (!s->joined) {
			s->joined = true;
			/* One anti-entropy round 3-6 s after joining, once the
			 * joins around ours have been gossiped: a node that
			 * missed one of them would otherwise wait for its first
			 * periodic push-pull (15-45 s). */
			uint32_t tenth = s->cfg.push_pull_interval_ms / 10;
			uint64_t soon = now_ms + tenth +
					mesh_rand_below(&s->rng, tenth + 1);
			if (soon < s->next_push_pull_ms)
				s->next_push_pull_ms = soon;
			MESH_LOG(s->env, MESH_LOG_INFO,
				 "swim: joined through %s", pp->from);
			swim__event(s, SWIM_EV_JOINED, s->self, pp->from);
		}
		send = pp->want_state;
	}
	if (send) {
		bool full = pp->reply || pp->n_members > 0 || !in_sync;
		uint8_t *out =
		    swim__encode_push_pull(s, full, true, want, reply_len);
		if (out == NULL) {
			rc = MESH_ENOMEM;
			goto out;
		}
		s->borrowed[s->nborrowed++] = out;
		*reply = out;
	}
out:
	mesh__push_pull__free_unpacked(pp, &pa);
	return rc;
}

/* ---- timers ------------------------------------------------------------ */

static void
swim__tick_probe(struct swim *s, uint64_t now)
{
	if (s->phase == SWIM_PROBE_DIRECT && now >= s->probe_timeout_at)
		swim__probe_indirect(s, now);
	if (s->phase == SWIM_PROBE_INDIRECT && now >= s->period_end)
		swim__probe_failed(s, now);
	if (s->phase == SWIM_PROBE_IDLE && !s->leaving &&
	    now >= s->next_probe_ms)
		swim__start_probe(s, now);
}

static void
swim__tick_relays(struct swim *s, uint64_t now)
{
	for (int i = 0; i < SWIM_RELAYS; i++) {
		struct swim__relay *r = &s->relays[i];
		if (!r->used)
			continue;
		if (!r->nacked && now >= r->nack_at) {
			r->nacked = true;
			s->stats.nacks_sent++;
			swim__send_ack(s, &r->origin, r->origin_seq, true, 0,
				       NULL);
		}
		if (now >= r->expire_at)
			r->used = false;
	}
}

/* A suspicion is about to become a death. Ask the suspect ourselves
 * first, telling it that it is suspected: if it lives, it tells its newer
 * alive record again and its ack carries it back. This catches the rare
 * node that missed every copy of a refutation (see swim__retell_self).
 *
 * How many calls: none when others confirmed the suspicion on a network
 * we know to be clean; cfg.last_calls when nobody confirmed it or this
 * node has not yet seen enough probes to know its network; on a lossy one,
 * enough that all of them fail by chance with p < 1e-4 - a call is lost
 * about as often as a direct answer is late (late_share, taken as at least
 * 30% here), so 8 to 14.
 * Each costs a probe timeout, on real deaths only. At 30% loss, a node
 * misses every copy of a given refutation with p ~ 5e-4 (about 8 copies
 * reach it): over a thousand refutations that is a false death every few
 * minutes without these calls. */
static uint32_t
swim__last_calls_due(const struct swim *s, const struct swim__suspicion *su)
{
	uint32_t n = s->cfg.last_calls;
	if (n == 0 || (su->confirmations > 0 && swim__network_clean(s)))
		return 0;
	if (swim__network_lossy(s)) {
		/* A call fails about as often as a direct answer is late;
		 * at least 30% when lossy, since the share may not have
		 * caught up yet (loss that just began, or suspicions that
		 * others saw refuted). */
		double f = s->late_share > SWIM_LOSSY_FLOOR ? s->late_share
							    : SWIM_LOSSY_FLOOR;
		double want = f >= 0.6 ? (double)SWIM_LAST_CALLS_MAX
				       : ceil(log(1e-4) / log(f));
		if (want > (double)n)
			n = want >= (double)SWIM_LAST_CALLS_MAX
				? SWIM_LAST_CALLS_MAX
				: (uint32_t)want;
	}
	return n;
}

static void
swim__last_call(struct swim *s, uint64_t now, struct swim_member *m)
{
	struct swim__pb_member pm;
	uint8_t buf[SWIM_DATAGRAM_MAX];
	swim__member_to_pb(m, s->self->name, false, &pm);
	size_t n = mesh__update__get_packed_size(&pm.u);
	m->susp->last_calls++;
	m->susp->next_call_ms = now + swim__rto(s);
	if (n > sizeof(buf))
		return;
	mesh__update__pack(&pm.u, buf);
	Mesh__Packet pkt = MESH__PACKET__INIT;
	Mesh__Ping ping = MESH__PING__INIT;
	ping.seq = ++s->seq;
	ping.target = m->name;
	pkt.body_case = MESH__PACKET__BODY_PING;
	pkt.ping = &ping;
	s->stats.last_calls++;
	swim__send_packet(s, &m->addr, &pkt, NULL, buf, n);
}

static void
swim__tick_suspects(struct swim *s, uint64_t now)
{
	for (size_t i = 0; i < s->nsuspects;) {
		struct swim_member *m = s->suspects[i];
		if (now < swim__suspicion_due(s, m)) {
			i++;
			continue;
		}
		if (m->susp->last_calls < swim__last_calls_due(s, m->susp)) {
			swim__last_call(s, now, m);
			i++;
			continue;
		}
		/* apply_dead takes m off the list; i now holds another. */
		MESH_LOG(s->env, MESH_LOG_INFO,
			 "swim: %s unrefuted for %llu ms (%u confirmations, "
			 "%u last calls, late share %.2f, health %u)",
			 m->name, (unsigned long long)(now - m->susp->start_ms),
			 m->susp->confirmations, m->susp->last_calls,
			 s->late_share, s->health);
		s->stats.deaths_declared++;
		swim__apply_dead(s, now, m, m->incarnation, s->self->name,
				 NULL);
	}
}

static void
swim__tick_gossip(struct swim *s, uint64_t now)
{
	if (now < s->next_gossip_ms)
		return;
	s->next_gossip_ms = now + s->cfg.gossip_interval_ms;
	if (dissem_count(&s->dissem) == 0)
		return;
	struct swim_member *to[16];
	size_t n = swim__random_members(s, s->cfg.gossip_nodes, NULL, true, to);
	for (size_t i = 0; i < n && dissem_count(&s->dissem) > 0; i++) {
		Mesh__Packet pkt = MESH__PACKET__INIT;
		swim__send_packet(s, &to[i]->addr, &pkt, NULL, NULL, 0);
	}
}

/* A random member that is dead or left. Members that left are tried like
 * dead ones: one that comes back (a seed restarted without anyone to
 * join) has nobody else to tell, and its newer life wins over its leave. */
static struct swim_member *
swim__random_gone(struct swim *s)
{
	if (s->ngone == 0)
		return NULL;
	return s->gone[mesh_rand_below(&s->rng, (uint32_t)s->ngone)];
}

static void
swim__tick_anti_entropy(struct swim *s, uint64_t now)
{
	if (now >= s->next_push_pull_ms) {
		s->next_push_pull_ms = now + s->cfg.push_pull_interval_ms;
		struct swim_member *peer;
		if (!s->leaving &&
		    swim__random_members(s, 1, NULL, false, &peer) == 1)
			swim__send_sync(s, &peer->addr);
	}
	if (now < s->next_reconnect_ms)
		return;
	s->next_reconnect_ms = now + s->cfg.reconnect_interval_ms;
	/* Forget members gone for longer than the reclaim window. */
	for (size_t i = 0; i < s->ngone;) {
		struct swim_member *m = s->gone[i];
		if (now - m->state_ms >= s->cfg.reclaim_ms) {
			MESH_LOG(s->env, MESH_LOG_INFO,
				 "swim: forgetting %s (%s)", m->name,
				 swim_state_name(m->state));
			swim__remove(s, m);
			continue;
		}
		i++;
	}
	if (s->leaving || !s->joined)
		return;
	/* Digest first, like the periodic exchange: a member that is really
	 * gone costs a refused connection, not an encoded view; one that
	 * answers differs from us, so full views follow on the same stream. */
	struct swim_member *gone = swim__random_gone(s);
	if (gone != NULL)
		swim__start_stream(s, &gone->addr, false);
	if (s->counts[SWIM_ALIVE] + s->counts[SWIM_SUSPECT] <= 1 &&
	    s->nseeds > 0)
		swim__start_stream(
		    s, &s->seeds[mesh_rand_below(&s->rng, (uint32_t)s->nseeds)],
		    false);
}

static void
swim__tick_join(struct swim *s, uint64_t now)
{
	if (s->joined || s->nseeds == 0 || now < s->next_join_ms)
		return;
	swim__start_stream(s, &s->seeds[s->join_idx], true);
	s->join_idx++;
	if (s->join_idx < s->nseeds) {
		s->next_join_ms = now + s->cfg.join_timeout_ms;
		return;
	}
	/* Every seed tried once: wait, then go round again. Refused seeds
	 * make a round take no time, and agents started together often beat
	 * their seeds by milliseconds, so the first rounds come every join
	 * timeout; only after SWIM_JOIN_QUICK_ROUNDS does the wait double. */
	s->join_idx = 0;
	s->next_join_ms = now + s->join_backoff_ms;
	MESH_LOG(s->env, MESH_LOG_WARN,
		 "swim: no seed answered; next round in %u ms",
		 s->join_backoff_ms);
	if (++s->join_rounds < SWIM_JOIN_QUICK_ROUNDS)
		return;
	s->join_backoff_ms *= 2;
	if (s->join_backoff_ms > s->cfg.join_backoff_max_ms)
		s->join_backoff_ms = s->cfg.join_backoff_max_ms;
}

void
swim_stream_failed(struct swim *s, uint64_t now_ms, const struct swim_addr *to)
{
	swim__begin_call(s);
	/* Only the seed tried last, and only inside a round: after the last
	 * seed of a round the backoff stands. */
	if (s->joined || s->join_idx == 0 ||
	    !swim_addr_equal(to, &s->seeds[s->join_idx - 1]))
		return;
	if (s->next_join_ms > now_ms)
		s->next_join_ms = now_ms;
}

void
swim_tick(struct swim *s, uint64_t now_ms)
{
	swim__begin_call(s);
	swim__tick_relays(s, now_ms);
	swim__tick_probe(s, now_ms);
	swim__tick_suspects(s, now_ms);
	swim__tick_join(s, now_ms);
	swim__tick_anti_entropy(s, now_ms);
	swim__tick_gossip(s, now_ms);
}

static uint64_t
swim__min(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

uint64_t
swim_next_deadline(const struct swim *s)
{
	uint64_t d = swim__min(s->next_push_pull_ms, s->next_reconnect_ms);
	if (s->phase == SWIM_PROBE_DIRECT)
		d = swim__min(d, s->probe_timeout_at);
	else if (s->phase == SWIM_PROBE_INDIRECT)
		d = swim__min(d, s->period_end);
	else if (!s->leaving)
		d = swim__min(d, s->next_probe_ms);
	for (int i = 0; i < SWIM_RELAYS; i++) {
		const struct swim__relay *r = &s->relays[i];
		if (r->used)
			d = swim__min(d, r->nacked ? r->expire_at : r->nack_at);
	}
	for (size_t i = 0; i < s->nsuspects; i++) {
		const struct swim_member *m = s->suspects[i];
		d = swim__min(d, swim__suspicion_due(s, m));
	}
	if (dissem_count(&s->dissem) > 0)
		d = swim__min(d, s->next_gossip_ms);
	if (!s->joined && s->nseeds > 0)
		d = swim__min(d, s->next_join_ms);
	return d;
}

/* ---- life cycle -------------------------------------------------------- */

int
swim_new(const struct swim_config *cfg, const struct mesh_env *env,
	 uint64_t now_ms, struct swim **out)
{
	const char *why;
	if (swim_config_check(cfg, &why) != 0 || cfg->crypto.sign == NULL ||
	    cfg->crypto.verify == NULL) {
		MESH_LOG(env, MESH_LOG_ERROR, "swim: bad config: %s",
			 cfg->crypto.sign == NULL || cfg->crypto.verify == NULL
			     ? "no signer or verifier"
			     : why);
		return MESH_EINVAL;
	}
	struct swim *s = mesh_calloc(env->alloc, 1, sizeof(*s));
	if (s == NULL)
		return MESH_ENOMEM;
	s->cfg = *cfg;
	s->env = env;
	mesh_rand_seed(&s->rng, cfg->seed);
	dissem_init(&s->dissem, env);
	s->nbuckets = 16;
	s->buckets = mesh_calloc(env->alloc, s->nbuckets, sizeof(*s->buckets));
	s->dgram_mem =
	    mesh_malloc(env->alloc, (size_t)SWIM_OUTBOX * cfg->datagram_max);
	struct swim_member *self = NULL;
	if (s->buckets != NULL && s->dgram_mem != NULL)
		self = swim__add(s, cfg->name, now_ms);
	if (self == NULL || swim__set_meta(s, self, &cfg->meta) != 0) {
		swim_free(s);
		return MESH_ENOMEM;
	}
	self->addr = cfg->addr;
	self->incarnation = cfg->incarnation;
	swim__rehash(s, self);
	memcpy(self->key, cfg->key, SWIM_KEY_BYTES);
	s->self = self;
	swim__sign_self(s);
	s->since_refuted = SWIM_CLEAN_RUN; /* no refutation seen yet */
	s->joined = true;
	/* Spread periodic work so nodes started together do not beat in
	 * step. */
	s->next_probe_ms =
	    now_ms + mesh_rand_below(&s->rng, cfg->probe_interval_ms);
	s->next_gossip_ms = now_ms;
	s->next_push_pull_ms =
	    now_ms + cfg->push_pull_interval_ms / 2 +
	    mesh_rand_below(&s->rng, cfg->push_pull_interval_ms);
	s->next_reconnect_ms =
	    now_ms + mesh_rand_below(&s->rng, cfg->reconnect_interval_ms) +
	    cfg->reconnect_interval_ms;
	*out = s;
	return 0;
}

void
swim_free(struct swim *s)
{
	if (s == NULL)
		return;
	const struct mesh_allocator *a = s->env->alloc;
	swim__begin_call(s);
	while (s->out_count > 0) {
		struct swim_output o;
		swim_poll_output(s, &o);
	}
	swim__begin_call(s);
	for (size_t i = 0; i < s->nmembers; i++)
		swim__member_free(s, s->members[i]);
	dissem_destroy(&s->dissem);
	mesh_free(a, s->members);
	mesh_free(a, s->buckets);
	mesh_free(a, s->suspects);
	mesh_free(a, s->probe_list);
	mesh_free(a, s->dgram_mem);
	mesh_free(a, s->events);
	mesh_free(a, s->gone);
	mesh_free(a, s);
}

int
swim_join(struct swim *s, uint64_t now_ms, const struct swim_addr *seeds,
	  size_t n)
{
	swim__begin_call(s);
	if (n == 0 || n > SWIM_MAX_SEEDS)
		return MESH_EINVAL;
	s->nseeds = 0;
	for (size_t i = 0; i < n; i++)
		if (!swim_addr_equal(&seeds[i], &s->self->addr))
			s->seeds[s->nseeds++] = seeds[i];
	/* Naming only ourselves is a mesh of one: joined already. */
	s->joined = s->nseeds == 0;
	s->join_idx = 0;
	s->next_join_ms = now_ms;
	s->join_backoff_ms = s->cfg.join_timeout_ms;
	s->join_rounds = 0;
	return 0;
}

int
swim_add_known(struct swim *s, uint64_t now_ms, const char *name,
	       const struct swim_addr *addr, uint64_t incarnation,
	       const struct swim_meta *meta, const uint8_t *key,
	       const uint8_t *sig)
{
	swim__begin_call(s);
	const char *why;
	if (!swim_name_is_valid(name) ||
	    (addr->family != 4 && addr->family != 6) ||
	    (meta != NULL && swim__meta_check(meta, &why) != 0))
		return MESH_EINVAL;
	if (swim__find(s, name) != NULL)
		return MESH_EEXIST;
	if (!swim__record_valid(s, name, incarnation, false, addr, meta, key,
				sig))
		return MESH_EAUTH;
	return swim__admit(s, now_ms, name, incarnation, addr,
			   meta != NULL ? meta : &swim__empty_meta, key,
			   sig) != NULL
		   ? 0
		   : MESH_ENOMEM;
}

int
swim_set_meta(struct swim *s, uint64_t now_ms, const struct swim_meta *meta)
{
	(void)now_ms;
	swim__begin_call(s);
	const char *why;
	if (swim__meta_check(meta, &why) != 0)
		return MESH_EINVAL;
	if (s->leaving)
		return MESH_ESTATE;
	if (s->self->incarnation == UINT64_MAX)
		return MESH_ERANGE;
	if (swim__set_meta(s, s->self, meta) != 0)
		return MESH_ENOMEM;
	s->cfg.meta = *meta;
	s->self->incarnation++;
	swim__sign_self(s);
	swim__broadcast(s, s->self, NULL);
	swim__event(s, SWIM_EV_SELF_INCARNATION, s->self, NULL);
	return 0;
}

void
swim_leave(struct swim *s, uint64_t now_ms)
{
	swim__begin_call(s);
	if (s->leaving)
		return;
	s->leaving = true;
	swim__set_state(s, s->self, SWIM_LEFT, now_ms);
	swim__sign_self(s);
	MESH_LOG(s->env, MESH_LOG_INFO, "swim: leaving at inc=%llu",
		 (unsigned long long)s->self->incarnation);
	swim__broadcast(s, s->self, s->self->name);
	s->next_gossip_ms = now_ms;
}

/* ---- views ------------------------------------------------------------- */

size_t
swim_member_count(const struct swim *s)
{
	return s->nmembers;
}

static void
swim__info(const struct swim *s, const struct swim_member *m,
	   struct swim_member_info *info)
{
	info->name = m->name;
	info->addr = m->addr;
	info->incarnation = m->incarnation;
	info->state = m->state;
	info->meta = swim__meta_of(m);
	info->state_since_ms = m->state_ms;
	info->is_self = m == s->self;
	info->key = m->key;
}

void
swim_member_at(const struct swim *s, size_t i, struct swim_member_info *info)
{
	swim__info(s, s->members[i], info);
}

int
swim_member_find(const struct swim *s, const char *name,
		 struct swim_member_info *info)
{
	const struct swim_member *m = swim__find(s, name);
	if (m == NULL)
		return MESH_ENOENT;
	swim__info(s, m, info);
	return 0;
}

void
swim_state_counts(const struct swim *s, size_t counts[4])
{
	memcpy(counts, s->counts, sizeof(s->counts));
}

int
swim_self_check(const struct swim *s, const char **why)
{
	uint64_t sum = 0;
	size_t counts[4] = {0};
	for (size_t i = 0; i < s->nmembers; i++) {
		const struct swim_member *m = s->members[i];
		if (m->idx != i) {
			*why = "member index";
			return MESH_ESTATE;
		}
		if (m->digest_h != swim__member_hash(m)) {
			*why = "a member's digest share is stale";
			return MESH_ESTATE;
		}
		sum += m->digest_h;
		counts[m->state]++;
		if ((m->state == SWIM_SUSPECT) != (m->susp != NULL) ||
		    (m->susp != NULL && s->suspects[m->susp->list_idx] != m)) {
			*why = "suspect list";
			return MESH_ESTATE;
		}
		if (m->gone_idx != SWIM_NOT_GONE &&
		    (!swim__is_gone(m->state) || m->gone_idx >= s->ngone ||
		     s->gone[m->gone_idx] != m)) {
			*why = "gone list";
			return MESH_ESTATE;
		}
		if (swim__find(s, m->name) != m) {
			*why = "name index";
			return MESH_ESTATE;
		}
	}
	for (size_t i = 0; i < s->ngone; i++)
		if (s->gone[i]->gone_idx != i) {
			*why = "gone list";
			return MESH_ESTATE;
		}
	if (sum != s->digest) {
		*why = "view digest";
		return MESH_ESTATE;
	}
	if (memcmp(counts, s->counts, sizeof(counts)) != 0 ||
	    s->nsuspects != counts[SWIM_SUSPECT]) {
		*why = "state counts";
		return MESH_ESTATE;
	}
	*why = "ok";
	return 0;
}

void
swim_timing(const struct swim *s, struct swim_timing *t)
{
	t->srtt_ms = s->srtt8 >> 3;
	t->rttvar_ms = s->rttvar4 >> 2;
	t->probe_timeout_ms = swim__rto(s);
	t->period_ms = swim__period(s);
	t->late_share = s->late_share;
	t->suspicion_stretch = swim__suspicion_stretch(s);
}

unsigned
swim_health(const struct swim *s)
{
	return s->health;
}

uint64_t
swim_incarnation(const struct swim *s)
{
	return s->self->incarnation;
}

size_t
swim_pending_updates(const struct swim *s)
{
	return dissem_count(&s->dissem);
}

bool
swim_is_joined(const struct swim *s)
{
	return s->joined;
}

const struct swim_stats *
swim_stats(const struct swim *s)
{
	return &s->stats;
}
