/*
 * tenant.c - the tenant service: client operations, delta replication,
 * anti-entropy and handoff between the replicas the ring names.
 *
 * Design (docs/tenants.md has the long form):
 *
 * - Coordinator. Any node takes an operation. A replica of the tenant runs
 *   it; a node that is not one forwards it to the first replica in ring
 *   order and relays the answer. The coordinator mutates the fields the
 *   operation touches (tenant_state.c), commits them with the context and
 *   an event index entry in one transaction, and only then answers or sends
 *   anything: nothing acknowledged exists only in RAM.
 *
 * - Deltas (Almeida et al.). The mutation's delta goes at once to every
 *   other replica, batched per peer into one frame per call. Receivers
 *   join it and answer with an ack; they never pass it on, so a delta is
 *   never sent back where it came from and costs one copy per replica
 *   (Enes et al., ICDE 2019, make the same point for state-based sync).
 *   `quorum` and `all` writes answer once enough acks are in.
 *
 * - Every operation moves the context. Writes make a dot; a remove makes
 *   an event dot with no value (crdt_ormap_add_event). So two replicas with
 *   equal contexts have seen the same operations, and the digest of a
 *   tenant is a hash of its encoded context: cheap, and equal on every
 *   replica once they have converged.
 *
 * - Anti-entropy in three steps, so that equal replicas pay the same
 *   whatever the number of tenants: (1) every anti_entropy_ms each node
 *   sends each peer it shares tenants with one order-free sum of the
 *   shared tenants' digests; (2) only when the sums differ, the tenants'
 *   digests; (3) for each tenant that differs, a pull carrying the asker's
 *   context. The answer is built from the event index: the dots the asker
 *   lacks name the fields that changed, and only those fields move (with
 *   the whole context as the "what I have seen", so removals travel too).
 *   A replica that has nothing gets everything the same way.
 *
 * - Handoff. A node that holds a tenant it no longer replicates (the view
 *   changed) keeps it and offers its digest to the new replicas every
 *   round; they pull what they lack and answer with their digest. Once
 *   every replica answered with a digest equal to ours the old copy is
 *   dropped, so there is never a moment with fewer copies than before.
 *
 * Departures from the papers: no causal delta-intervals or per-peer delta
 * buffers; a delta that is lost (a peer was down) is found by
 * anti-entropy within a round instead. Reads are served by one replica.
 */
#include "tenant_cap.h"
#include "tenant_impl.h"

#include "mesh_budget.h"
#include "mesh_err.h"
#include "mesh_hash.h"
#include "mesh_sort.h"
#include "mesh_text.h"
#include "tenant.pb-c.h"

#include <stdlib.h>
#include <string.h>

/* A frame body is sent once it grows past this, so no frame gets near
 * the 16 MiB stream limit even with a pull answer appended. */
#define TENANT__FRAME_SOFT (1u << 20)
/* Field bytes per pull answer chunk, and events per pull answer. */
#define TENANT__PULL_CHUNK (1u << 20)
#define TENANT__PULL_EVENTS 20000
/* What one delta may name at most: a pull part holds up to 4,096 fields
 * and one answer up to TENANT__PULL_EVENTS events. More is refused. */
#define TENANT__DELTA_FIELDS_MAX 8192
/* Pulls served per frame; a peer asks again next round for the rest. */
#define TENANT__PULLS_PER_FRAME 64
/* Largest frame we decode; the stream layer refuses bigger ones. */
#define TENANT__FRAME_MAX (16u << 20)
/* Unacked deltas remembered per peer (status: oldest unreplicated). */
#define TENANT__UNACKED_MAX 4096
/* Keys or elements one answer lists at most. */
#define TENANT__LIST_MAX 10000
/* Acks the sender does not wait for go back at most this late, in one
 * cumulative ack, or sooner with any other frame to that peer: at low
 * rates an ack frame of its own would cost as much as the delta. */
#define TENANT__LAZY_ACK_MS 250
/* Verified capabilities remembered (direct-mapped). */
#define TENANT__CAP_CACHE 64

struct tenant__peer {
	char name[SWIM_NAME_MAX + 1];
	uint8_t *buf; /* frame body being built */
	size_t len, cap;
	size_t mark;		/* len when the open batch began */
	uint64_t lazy_ack;	/* highest delta of its to ack, 0: none */
	uint64_t lazy_since_ms; /* when lazy_ack became non-zero */
	uint64_t frame_seq;	/* frames flushed to it so far */
	uint64_t last_delta_ms; /* when it last sent us a delta */
	uint64_t last_sent_ms;	/* when we last sent it a delta */
	bool shared; /* we replicate tenants together: anti-entropy */
	/* Deltas sent and not acked yet, oldest first (a ring buffer that
	 * grows to TENANT__UNACKED_MAX: most peers never need much). */
	uint64_t *un_id, *un_ms;
	size_t un_head, un_count, un_cap;
};

enum tenant__pkind {
	TENANT__P_WRITE = 1, /* waiting for acks */
	TENANT__P_FORWARD,   /* waiting for a replica's answer */
};

/* Where an answer goes: a local request, or a peer that forwarded one. */
struct tenant__origin {
	bool local;
	uint64_t id; /* local request id, or the forwarder's id */
	char peer[SWIM_NAME_MAX + 1];
};

struct tenant__pending {
	enum tenant__pkind kind;
	uint64_t id; /* ack id, or forward id */
	uint64_t deadline_ms;
	struct tenant__origin origin;
	/* Writes: */
	unsigned needed, acks, nreplicas;
	char acked[RING_REPLICAS_MAX][SWIM_NAME_MAX + 1];
	char replicas[RING_REPLICAS_MAX][SWIM_NAME_MAX + 1];
	/* Forwards: the packed request, to retry a read elsewhere. */
	uint8_t *req;
	size_t req_len;
	unsigned tries;
	uint64_t seq; /* the frame the request went out in */
	bool is_read;
	char tenant[TENANT_ID_MAX + 1];
};

struct tenant__outq {
	char to[SWIM_NAME_MAX + 1];
	struct swim_addr addr;
	uint8_t *data;
	size_t len;
	uint64_t seq;
};

struct tenant {
	struct tenant_config cfg;
	const struct mesh_env *env;
	const struct mesh_allocator *a;
	ProtobufCAllocator pa; /* protobuf-c over @a, for our own bytes */
	struct mesh_rand rng;
	struct crdt_hlc_clock clock; /* stamps of LWW writes */
	const struct ring *ring;
	const struct swim *swim;
	struct tenant__held **held; /* sorted by id */
	size_t nheld, capheld;
	struct tenant__peer **peers; /* sorted by name */
	size_t npeers, cappeers;
	struct tenant__pending *pending;
	size_t npending, cappending;
	/* Pending requests by id: linear probing over index + 1 (0: empty),
	 * a power of two at least twice npending. Acks find theirs in O(1). */
	uint32_t *pidx;
	size_t pidx_cap;
	uint64_t pending_min_ms; /* no pending deadline is earlier */
	uint64_t next_id;
	uint64_t next_ae_ms;
	/* Frames for the driver: [0, out_next) were handed out, [0,
	 * out_mark) may be (the rest wait for their batch to commit). */
	struct tenant__outq *out;
	size_t nout, capout, out_next, out_mark, out_batch;
	/* Packed answers for local requests; [0, rep_next) handed out. */
	struct tenant__rep {
		uint8_t *data;
		size_t len;
		/* Does not depend on the open batch (a write committed in an
		 * earlier one, answered now that acks came). */
		bool settled;
	} * rep;
	size_t nrep, caprep, rep_next;
	bool answer_settled; /* tenant__answer() marks what it queues so */
	Tenant__Reply *cur;  /* the answer last handed out */
	const char *cur_names[2][RING_REPLICAS_MAX];
	struct tenant_bytes *cur_values;
	/* Capabilities whose signature checked out, with the tenant key
	 * they were checked against: compared byte for byte, never by a
	 * hash an attacker could aim at. */
	struct tenant__capslot {
		uint16_t len;
		uint8_t key[TENANT_PUBKEY_BYTES];
		uint8_t cap[TENANT_CAP_MAX];
	} * capcache;
	/* Group commit: what a batch produced is released at its end. */
	bool batch_open, batch_auto;
	size_t rep_mark; /* answers [0, rep_mark) are committed */
	uint64_t batch_first_id;
	/* Changed fields of the system tenant, for tenant_poll_change():
	 * [chg_head, nchg) not handed out yet; chg_cur was handed last. */
	struct tenant_bytes *chg;
	size_t nchg, capchg, chg_head;
	uint8_t *chg_cur;
	unsigned follow_rr;	  /* which replica a follower asks next */
	uint32_t follow_round;	  /* rounds since the last periodic offer */
	uint64_t follow_asked_ms; /* the last tenant_follow() offer */
	struct tenant_stats st;
};

/* ---- small helpers --------------------------------------------------------
 */

static uint64_t
tenant__wall_ms(const struct tenant *t, uint64_t now_ms)
{
	int64_t w = (int64_t)now_ms + t->cfg.wall_offset_ms;
	return w > 0 ? (uint64_t)w : 0;
}

static bool
tenant__id_ok(const char *id)
{
	return mesh_name_is_valid(id, TENANT_ID_MAX);
}

static bool
tenant__is_system(const char *id)
{
	return strcmp(id, TENANT_SYSTEM) == 0;
}

/* Notes that fields @refs[0..n) of @h changed, when @h is the system
 * tenant. A note that cannot be stored is dropped: the reader then misses
 * one change until the field changes again, so it is logged. */
static void
tenant__note_changes(struct tenant *t, const struct tenant__held *h,
		     const struct tenant__ref *refs, size_t n)
{
	if (!tenant__is_system(h->id))
		return;
	for (size_t i = 0; i < n; i++) {
		if (refs[i].len == 0 || refs[i].key[0] == 0)
			continue; /* reserved fields */
		uint8_t *k = mesh_malloc(t->a, refs[i].len);
		if (k == NULL || mesh_grow(t->a, (void **)&t->chg, &t->capchg,
					   t->nchg + 1, sizeof(*t->chg)) != 0) {
			mesh_free(t->a, k);
			MESH_LOG(t->env, MESH_LOG_ERROR,
				 "tenant: out of memory: a change of the "
				 "system tenant is not reported");
			continue;
		}
		memcpy(k, refs[i].key, refs[i].len);
		t->chg[t->nchg++] = (struct tenant_bytes){k, refs[i].len};
	}
}

static int
tenant__ref_cmp(const struct tenant__ref *x, const struct tenant__ref *y)
{
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = n ? memcmp(x->key, y->key, n) : 0;
	if (c != 0)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

static int
tenant__ref_qcmp(const void *x, const void *y)
{
	return tenant__ref_cmp(x, y);
}

/* protobuf-c allocator over the injected one, with a byte budget so that
 * a hostile frame cannot make us allocate much more than it weighs. */
struct tenant__budget {
	ProtobufCAllocator pc;
	struct mesh_budget m;
};

static void
tenant__budget_init(struct tenant__budget *b, const struct mesh_allocator *a,
		    size_t len)
{
	mesh_budget_init(&b->m, a, 64 * len + (64u << 10));
	b->pc.alloc = mesh_budget_alloc;
	b->pc.free = mesh_budget_free;
	b->pc.allocator_data = &b->m;
}

static void *
tenant__pb_alloc(void *ctx, size_t size)
{
	return mesh_malloc(ctx, size);
}

static void
tenant__pb_free(void *ctx, void *p)
{
	mesh_free(ctx, p);
}

/* ---- held tenants ----------------------------------------------------------
 */

static size_t
tenant__held_lower(const struct tenant *t, const char *id)
{
	size_t lo = 0, hi = t->nheld;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(t->held[mid]->id, id) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct tenant__held *
tenant__find(const struct tenant *t, const char *id)
{
	size_t i = tenant__held_lower(t, id);
	if (i < t->nheld && strcmp(t->held[i]->id, id) == 0)
		return t->held[i];
	return NULL;
}

/* Owners of @h on the current ring, and whether we are one. */
static void
tenant__held_view(struct tenant *t, struct tenant__held *h)
{
	h->nowners = 0;
	h->is_replica = false;
	h->owner_same = 0;
	h->owner_diff = 0;
	memset(h->mismatches, 0, sizeof(h->mismatches));
	if (t->ring == NULL)
		return;
	h->ring_hash = ring_hash_key(t->ring, h->id, h->id_len);
	uint32_t idx[RING_REPLICAS_MAX];
	int n = ring_lookup(t->ring, h->ring_hash, t->cfg.replicas, idx);
	for (int i = 0; i < n; i++) {
		const char *name = ring_node(t->ring, idx[i])->name;
		h->owners[h->nowners++] = name;
		if (strcmp(name, t->cfg.name) == 0)
			h->is_replica = true;
	}
}

static int
tenant__held_insert(struct tenant *t, struct tenant__held *h)
{
	if (mesh_grow(t->a, (void **)&t->held, &t->capheld, t->nheld + 1,
		      sizeof(*t->held)) != 0)
		return MESH_ENOMEM;
	size_t i = tenant__held_lower(t, h->id);
	memmove(&t->held[i + 1], &t->held[i],
		(t->nheld - i) * sizeof(*t->held));
	t->held[i] = h;
	t->nheld++;
	tenant__held_view(t, h);
	return 0;
}

static void
tenant__held_remove(struct tenant *t, struct tenant__held *h)
{
	size_t i = tenant__held_lower(t, h->id);
	if (i < t->nheld && t->held[i] == h) {
		memmove(&t->held[i], &t->held[i + 1],
			(t->nheld - i - 1) * sizeof(*t->held));
		t->nheld--;
	}
	tenant__held_free(t->env, h);
}

/* The tenant @id, made (empty, in a new life) when absent. */
static int
tenant__hold(struct tenant *t, const char *id, struct tenant__held **out)
{
	struct tenant__held *h = tenant__find(t, id);
	if (h != NULL) {
		*out = h;
		return 0;
	}
	int rc = tenant__held_open(t->env, &t->cfg.kv, id, strlen(id),
				   t->cfg.replica_id, &h);
	if (rc == 0 && (rc = tenant__held_insert(t, h)) != 0)
		tenant__held_free(t->env, h);
	if (rc == 0)
		*out = h;
	return rc;
}

/* ---- peers and frames ------------------------------------------------------
 */

static size_t
tenant__peer_lower(const struct tenant *t, const char *name)
{
	size_t lo = 0, hi = t->npeers;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(t->peers[mid]->name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct tenant__peer *
tenant__peer(struct tenant *t, const char *name)
{
	size_t i = tenant__peer_lower(t, name);
	if (i < t->npeers && strcmp(t->peers[i]->name, name) == 0)
		return t->peers[i];
	if (strlen(name) > SWIM_NAME_MAX ||
	    mesh_grow(t->a, (void **)&t->peers, &t->cappeers, t->npeers + 1,
		      sizeof(*t->peers)) != 0)
		return NULL;
	struct tenant__peer *p = mesh_calloc(t->a, 1, sizeof(*p));
	if (p == NULL)
		return NULL;
	strcpy(p->name, name);
	memmove(&t->peers[i + 1], &t->peers[i],
		(t->npeers - i) * sizeof(*t->peers));
	t->peers[i] = p;
	t->npeers++;
	return p;
}

static size_t
tenant__varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

static void tenant__peer_flush(struct tenant *t, struct tenant__peer *p);

/* Appends field @field of Frame (a message, length-delimited) packed from
 * @msg to @p's frame body. Protobuf merges concatenated fields, so the
 * frame is the concatenation of what was appended. */
static void
tenant__append(struct tenant *t, struct tenant__peer *p, unsigned field,
	       const ProtobufCMessage *msg)
{
	if (p == NULL)
		return;
	size_t len = protobuf_c_message_get_packed_size(msg);
	if (mesh_grow(t->a, (void **)&p->buf, &p->cap, p->len + len + 16, 1) !=
	    0) {
		t->st.drop_output++;
		return;
	}
	size_t n = tenant__varint(p->buf + p->len, (uint64_t)field << 3 | 2);
	n += tenant__varint(p->buf + p->len + n, len);
	protobuf_c_message_pack(msg, p->buf + p->len + n);
	p->len += n + len;
	if (p->len >= TENANT__FRAME_SOFT)
		tenant__peer_flush(t, p);
}

/* Appends a bare boolean field (digests_reply). */
static void
tenant__append_flag(struct tenant *t, struct tenant__peer *p, unsigned field)
{
	if (mesh_grow(t->a, (void **)&p->buf, &p->cap, p->len + 12, 1) != 0)
		return;
	p->len += tenant__varint(p->buf + p->len, (uint64_t)field << 3 | 0);
	p->buf[p->len++] = 1;
}

/* Closes @p's frame: header first (version, our name), then the body. */
static void
tenant__peer_flush(struct tenant *t, struct tenant__peer *p)
{
	if (p->len == 0)
		return;
	if (p->lazy_ack != 0) {
		/* A frame goes anyway: the waiting ack rides along. */
		Tenant__DeltaAck a = TENANT__DELTA_ACK__INIT;
		a.ack_id = p->lazy_ack;
		p->lazy_ack = 0;
		tenant__append(t, p, 4, &a.base);
	}
	/* Without a swim (simulator, tests) the driver routes by name. */
	struct swim_member_info mi;
	memset(&mi, 0, sizeof(mi));
	if ((t->swim != NULL && swim_member_find(t->swim, p->name, &mi) != 0) ||
	    mesh_grow(t->a, (void **)&t->out, &t->capout, t->nout + 1,
		      sizeof(*t->out)) != 0) {
		p->len = 0; /* no address: anti-entropy will catch up */
		t->st.drop_output++;
		return;
	}
	size_t nlen = strlen(t->cfg.name);
	uint8_t *f = mesh_malloc(t->a, p->len + nlen + 24);
	if (f == NULL) {
		p->len = 0;
		return;
	}
	size_t n = tenant__varint(f, 1 << 3 | 0);
	n += tenant__varint(f + n, TENANT_PROTOCOL_VERSION);
	n += tenant__varint(f + n, 2 << 3 | 2);
	n += tenant__varint(f + n, nlen);
	memcpy(f + n, t->cfg.name, nlen);
	n += nlen;
	memcpy(f + n, p->buf, p->len);
	n += p->len;
	struct tenant__outq *o = &t->out[t->nout++];
	strcpy(o->to, p->name);
	o->addr = mi.addr;
	o->data = f;
	o->len = n;
	o->seq = ++p->frame_seq;
	t->st.frames_sent++;
	t->st.frame_bytes_sent += n;
	p->len = 0;
	/* A big buffer is not kept for an idle peer. */
	if (p->cap > TENANT__FRAME_SOFT / 4) {
		mesh_free(t->a, p->buf);
		p->buf = NULL;
		p->cap = 0;
	}
}

static void
tenant__flush(struct tenant *t)
{
	for (size_t i = 0; i < t->npeers; i++)
		tenant__peer_flush(t, t->peers[i]);
}

/* Frees what the driver has been handed since the previous call. */
static void
tenant__release(struct tenant *t)
{
	for (size_t i = 0; i < t->out_next; i++)
		mesh_free(t->a, t->out[i].data);
	if (t->out_next > 0)
		memmove(t->out, t->out + t->out_next,
			(t->nout - t->out_next) * sizeof(*t->out));
	t->nout -= t->out_next;
	t->out_mark -= t->out_next;
	t->out_batch -= t->out_next;
	t->out_next = 0;
	for (size_t i = 0; i < t->rep_next; i++)
		mesh_free(t->a, t->rep[i].data);
	if (t->rep_next > 0)
		memmove(t->rep, t->rep + t->rep_next,
			(t->nrep - t->rep_next) * sizeof(*t->rep));
	t->nrep -= t->rep_next;
	t->rep_mark -= t->rep_next;
	t->rep_next = 0;
	if (t->cur != NULL) {
		tenant__reply__free_unpacked(t->cur, &t->pa);
		t->cur = NULL;
	}
	mesh_free(t->a, t->cur_values);
	t->cur_values = NULL;
}

/* ---- group commit ----------------------------------------------------------
 *
 * Every call runs inside a batch of the store (tenant_kv.h): the driver
 * opens one with tenant_batch_begin() and closes it once per loop
 * iteration, or each call opens and closes its own. Frames and answers
 * made inside a batch stay here until the batch is durable; if it fails,
 * they are withdrawn, local callers get an error, and the RAM cache is
 * read again from the store, which kept nothing of the batch.
 */

static void tenant__reload(struct tenant *t);
static void tenant__pending_del(struct tenant *t, struct tenant__pending *p);
static void tenant__write_answer(struct tenant *t, struct tenant__pending *p,
				 int rc, const char *why);

static void
tenant__batch_open(struct tenant *t)
{
	if (t->cfg.kv.batch_begin == NULL || t->cfg.kv.batch_end == NULL ||
	    t->cfg.kv.batch_begin(t->cfg.kv.ctx) != 0)
		return; /* each commit is then durable on its own */
	t->batch_open = true;
	t->batch_first_id = t->next_id;
	t->out_batch = t->nout;
	for (size_t i = 0; i < t->npeers; i++)
		t->peers[i]->mark = t->peers[i]->len;
}

static void
tenant__batch_failed(struct tenant *t, int rc)
{
	MESH_LOG(t->env, MESH_LOG_ERROR,
		 "tenant: store commit failed (%s): writes of this batch are "
		 "refused",
		 mesh_strerror(rc));
	t->st.store_errors++;
	/* Frames of the batch never leave: replicas did not get deltas that
	 * did not happen; forwarders time out on requests that did not. */
	for (size_t i = 0; i < t->npeers; i++)
		t->peers[i]->len = t->peers[i]->mark;
	for (size_t i = t->out_batch; i < t->nout; i++)
		mesh_free(t->a, t->out[i].data);
	t->nout = t->out_batch;
	for (size_t i = t->rep_mark; i < t->nrep; i++) {
		if (t->rep[i].settled)
			continue;
		Tenant__Reply *r = tenant__reply__unpack(&t->pa, t->rep[i].len,
							 t->rep[i].data);
		if (r == NULL)
			continue;
		Tenant__Reply e = TENANT__REPLY__INIT;
		e.id = r->id;
		e.rc = MESH_ENOSPC;
		e.error = "the store could not commit (disk full?): nothing "
			  "written";
		e.served_by = t->cfg.name;
		size_t len = tenant__reply__get_packed_size(&e);
		uint8_t *b = mesh_malloc(t->a, len ? len : 1);
		if (b != NULL) {
			tenant__reply__pack(&e, b);
			mesh_free(t->a, t->rep[i].data);
			t->rep[i].data = b;
			t->rep[i].len = len;
		}
		tenant__reply__free_unpacked(r, &t->pa);
	}
	for (size_t i = 0; i < t->npending;) {
		struct tenant__pending *p = &t->pending[i];
		if (p->kind != TENANT__P_WRITE || p->id <= t->batch_first_id) {
			i++;
			continue;
		}
		p->acks = 0;
		tenant__write_answer(t, p, MESH_ENOSPC,
				     "the store could not commit: nothing "
				     "written");
		tenant__pending_del(t, p);
	}
	tenant__reload(t);
}

static void
tenant__batch_close(struct tenant *t)
{
	if (!t->batch_open)
		return;
	t->batch_open = false;
	int rc = t->cfg.kv.batch_end(t->cfg.kv.ctx, true);
	if (rc != 0)
		tenant__batch_failed(t, rc);
	t->rep_mark = t->nrep;
	tenant__flush(t);
	t->out_mark = t->nout;
}

static void
tenant__enter(struct tenant *t)
{
	tenant__release(t);
	if (!t->batch_open) {
		tenant__batch_open(t);
		t->batch_auto = true;
	}
}

static void
tenant__leave(struct tenant *t, uint64_t now_ms)
{
	(void)now_ms;
	if (t->batch_auto) {
		t->batch_auto = false;
		tenant__batch_close(t);
	}
	if (!t->batch_open) {
		t->rep_mark = t->nrep;
		tenant__flush(t);
		t->out_mark = t->nout;
	}
}

void
tenant_batch_begin(struct tenant *t)
{
	if (t->batch_open)
		return;
	tenant__release(t);
	tenant__batch_open(t);
	t->batch_auto = false;
}

void
tenant_batch_end(struct tenant *t, uint64_t now_ms)
{
	(void)now_ms;
	tenant__release(t);
	tenant__batch_close(t);
}

/* ---- answers ---------------------------------------------------------------
 */

/* Sends @r to where the request came from. */
static void
tenant__answer(struct tenant *t, const struct tenant__origin *o,
	       Tenant__Reply *r)
{
	if (r->rc != 0)
		t->st.ops_failed++;
	if (o->local) {
		r->id = o->id;
		size_t len = tenant__reply__get_packed_size(r);
		uint8_t *b = mesh_malloc(t->a, len ? len : 1);
		if (b == NULL || mesh_grow(t->a, (void **)&t->rep, &t->caprep,
					   t->nrep + 1, sizeof(*t->rep)) != 0) {
			mesh_free(t->a, b);
			return;
		}
		tenant__reply__pack(r, b);
		t->rep[t->nrep++] =
		    (struct tenant__rep){b, len, t->answer_settled};
		return;
	}
	r->id = o->id;
	tenant__append(t, tenant__peer(t, o->peer), 6, &r->base);
}

static void
tenant__fail(struct tenant *t, const struct tenant__origin *o, int rc,
	     const char *why)
{
	Tenant__Reply r = TENANT__REPLY__INIT;
	r.rc = rc;
	r.error = (char *)why;
	r.served_by = t->cfg.name;
	tenant__answer(t, o, &r);
}

/* ---- pending requests ------------------------------------------------------
 */

static size_t
tenant__pidx_home(const struct tenant *t, uint64_t id)
{
	return (size_t)mesh_mix64(id) & (t->pidx_cap - 1);
}

/* The probe slot holding @id, or the empty slot where it would go. */
static size_t
tenant__pidx_slot(const struct tenant *t, uint64_t id)
{
	size_t i = tenant__pidx_home(t, id);
	while (t->pidx[i] != 0 && t->pending[t->pidx[i] - 1].id != id)
		i = (i + 1) & (t->pidx_cap - 1);
	return i;
}

/* Rebuilds the index at @cap slots (a power of two). */
static int
tenant__pidx_rebuild(struct tenant *t, size_t cap)
{
	uint32_t *v = mesh_calloc(t->a, cap, sizeof(*v));
	if (v == NULL)
		return MESH_ENOMEM;
	mesh_free(t->a, t->pidx);
	t->pidx = v;
	t->pidx_cap = cap;
	for (size_t k = 0; k < t->npending; k++)
		t->pidx[tenant__pidx_slot(t, t->pending[k].id)] =
		    (uint32_t)(k + 1);
	return 0;
}

/* Removes @id from the index, shifting back the run after it. */
static void
tenant__pidx_remove(struct tenant *t, uint64_t id)
{
	size_t i = tenant__pidx_slot(t, id);
	if (t->pidx[i] == 0)
		return;
	t->pidx[i] = 0;
	size_t j = i;
	for (;;) {
		j = (j + 1) & (t->pidx_cap - 1);
		if (t->pidx[j] == 0)
			return;
		size_t home =
		    tenant__pidx_home(t, t->pending[t->pidx[j] - 1].id);
		/* Move j back to i unless its home lies in (i, j]. */
		bool stays =
		    i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (stays)
			continue;
		t->pidx[i] = t->pidx[j];
		t->pidx[j] = 0;
		i = j;
	}
}

static struct tenant__pending *
tenant__pending_add(struct tenant *t, enum tenant__pkind kind, uint64_t now_ms)
{
	if (t->npending >= t->cfg.max_pending ||
	    mesh_grow(t->a, (void **)&t->pending, &t->cappending,
		      t->npending + 1, sizeof(*t->pending)) != 0)
		return NULL;
	if ((t->npending + 1) * 2 > t->pidx_cap &&
	    tenant__pidx_rebuild(t, t->pidx_cap ? t->pidx_cap * 2 : 64) != 0)
		return NULL;
	struct tenant__pending *p = &t->pending[t->npending++];
	memset(p, 0, sizeof(*p));
	p->kind = kind;
	p->id = ++t->next_id;
	p->deadline_ms = now_ms + t->cfg.request_timeout_ms;
	if (t->npending == 1 || p->deadline_ms < t->pending_min_ms)
		t->pending_min_ms = p->deadline_ms;
	t->pidx[tenant__pidx_slot(t, p->id)] = (uint32_t)t->npending;
	return p;
}

static struct tenant__pending *
tenant__pending_find(struct tenant *t, enum tenant__pkind kind, uint64_t id)
{
	if (t->pidx_cap == 0)
		return NULL;
	uint32_t k = t->pidx[tenant__pidx_slot(t, id)];
	if (k == 0 || t->pending[k - 1].kind != kind)
		return NULL;
	return &t->pending[k - 1];
}

static void
tenant__pending_del(struct tenant *t, struct tenant__pending *p)
{
	mesh_free(t->a, p->req);
	tenant__pidx_remove(t, p->id);
	struct tenant__pending *last = &t->pending[t->npending - 1];
	if (p != last) {
		*p = *last;
		t->pidx[tenant__pidx_slot(t, p->id)] =
		    (uint32_t)(p - t->pending + 1);
	}
	t->npending--;
}

/* Answers a write with how many replicas committed it. */
static void
tenant__write_answer(struct tenant *t, struct tenant__pending *p, int rc,
		     const char *why)
{
	Tenant__Reply r = TENANT__REPLY__INIT;
	char *acked[RING_REPLICAS_MAX], *reps[RING_REPLICAS_MAX];
	for (unsigned i = 0; i < p->acks; i++)
		acked[i] = p->acked[i];
	for (unsigned i = 0; i < p->nreplicas; i++)
		reps[i] = p->replicas[i];
	r.rc = rc;
	r.error = (char *)(why ? why : "");
	r.acks = p->acks;
	r.n_acked_by = p->acks;
	r.acked_by = acked;
	r.n_replicas = p->nreplicas;
	r.replicas = reps;
	r.served_by = t->cfg.name;
	tenant__answer(t, &p->origin, &r);
}

/* ---- capabilities ----------------------------------------------------------
 */

static bool
tenant__trust(void *ctx, const uint8_t *pub, const uint8_t *msg, size_t len,
	      const uint8_t *sig)
{
	(void)ctx;
	(void)pub;
	(void)msg;
	(void)len;
	(void)sig;
	return true;
}

/* Reads the tenant's registered public key into @h (cached). */
static int
tenant__pubkey(struct tenant *t, struct tenant__held *h)
{
	if (h->has_pubkey)
		return 0;
	struct tenant__ref ref = {CRDT_MV, (const uint8_t *)TENANT__KEY_FIELD,
				  TENANT__KEY_FIELD_LEN};
	struct tenant__loaded ld;
	struct crdt_ormap *m;
	int rc = tenant__load(t->env, &t->cfg.kv, h, &ref, 1, &ld, &m);
	if (rc != 0)
		return rc;
	/* Two creates can only both succeed when their replicas could not
	 * see each other (a partition); then the earlier one keeps the
	 * tenant, so a create on the far side of a split cannot take a
	 * tenant over: its capabilities stop working at the heal. */
	struct crdt_key k = {TENANT__KEY_FIELD, TENANT__KEY_FIELD_LEN};
	const void *v;
	size_t len;
	const uint8_t *best = NULL;
	for (size_t i = 0; crdt_ormap_mv_value(m, &k, 1, i, &v, &len) == 0; i++)
		if (len == TENANT__KEY_RECORD &&
		    (best == NULL || memcmp(v, best, TENANT__KEY_RECORD) < 0))
			best = v;
	if (best != NULL) {
		memcpy(h->pubkey, best + 8, TENANT_PUBKEY_BYTES);
		h->pubkey_ms = 0;
		for (int i = 0; i < 8; i++)
			h->pubkey_ms = h->pubkey_ms << 8 | best[i];
		h->has_pubkey = true;
	} else {
		rc = MESH_ENOENT;
	}
	crdt_ormap_free(m);
	tenant__loaded_free(t->env, &ld);
	return rc;
}

/* Checks the request's capability for @need on @h. */
static int
tenant__authorize(struct tenant *t, uint64_t now_ms, struct tenant__held *h,
		  const uint8_t *cap, size_t cap_len, uint32_t need,
		  const char **why)
{
	uint64_t wall_s = tenant__wall_ms(t, now_ms) / 1000;
	/* A signature checked once need not be checked again: the cache
	 * holds the capability bytes and the tenant key they verified
	 * under; the hash only picks the slot. */
	uint64_t hash =
	    mesh_hash_bytes(cap, cap_len, mesh_hash_bytes(h->pubkey, 32, 1));
	struct tenant__capslot *cs =
	    t->capcache != NULL ? &t->capcache[hash % TENANT__CAP_CACHE] : NULL;
	bool known = cs != NULL && cap_len <= TENANT_CAP_MAX &&
		     cs->len == cap_len && memcmp(cs->cap, cap, cap_len) == 0 &&
		     memcmp(cs->key, h->pubkey, TENANT_PUBKEY_BYTES) == 0;
	int rc = tenant_cap_check(cap, cap_len, h->id, h->pubkey, need, wall_s,
				  known ? tenant__trust : t->cfg.verify,
				  t->cfg.verify_ctx, why);
	if (rc == 0 && !known && cs != NULL && cap_len <= TENANT_CAP_MAX) {
		cs->len = (uint16_t)cap_len;
		memcpy(cs->cap, cap, cap_len);
		memcpy(cs->key, h->pubkey, TENANT_PUBKEY_BYTES);
	}
	if (rc != 0)
		t->st.denied++;
	return rc;
}

/* Token bucket per tenant, refilled at rate_per_s. */
static bool
tenant__rate_ok(struct tenant *t, uint64_t now_ms, struct tenant__held *h)
{
	if (t->cfg.rate_per_s == 0)
		return true;
	uint64_t max = (uint64_t)t->cfg.rate_burst * 1000;
	if (h->tokens_ms == 0) {
		h->tokens_milli = max;
	} else if (now_ms > h->tokens_ms) {
		uint64_t add = (now_ms - h->tokens_ms) * t->cfg.rate_per_s;
		h->tokens_milli =
		    h->tokens_milli + add > max ? max : h->tokens_milli + add;
	}
	h->tokens_ms = now_ms;
	if (h->tokens_milli < 1000)
		return false;
	h->tokens_milli -= 1000;
	return true;
}

/* ---- replication -----------------------------------------------------------
 */

static void
tenant__unacked_push(struct tenant *t, struct tenant__peer *p, uint64_t id,
		     uint64_t now_ms)
{
	if (p->un_count == p->un_cap) {
		/* Keep the oldest: it is what status reports. At the cap the
		 * newest record is dropped instead. */
		if (p->un_cap == TENANT__UNACKED_MAX)
			return;
		size_t ncap = p->un_cap ? p->un_cap * 2 : 16;
		uint64_t *ids = mesh_calloc(t->a, ncap, sizeof(*ids));
		uint64_t *ms = mesh_calloc(t->a, ncap, sizeof(*ms));
		if (ids == NULL || ms == NULL) {
			mesh_free(t->a, ids);
			mesh_free(t->a, ms);
			return;
		}
		for (size_t k = 0; k < p->un_count; k++) {
			ids[k] = p->un_id[(p->un_head + k) % p->un_cap];
			ms[k] = p->un_ms[(p->un_head + k) % p->un_cap];
		}
		mesh_free(t->a, p->un_id);
		mesh_free(t->a, p->un_ms);
		p->un_id = ids;
		p->un_ms = ms;
		p->un_head = 0;
		p->un_cap = ncap;
	}
	size_t i = (p->un_head + p->un_count) % p->un_cap;
	p->un_id[i] = id;
	p->un_ms[i] = now_ms;
	p->un_count++;
}

static void
tenant__unacked_pop(struct tenant__peer *p, uint64_t id)
{
	while (p->un_count > 0 && p->un_id[p->un_head] <= id) {
		p->un_head = (p->un_head + 1) % p->un_cap;
		p->un_count--;
	}
}

/* Sends delta @map (encoded OR-map) of @h to every other replica. */
static void
tenant__send_delta(struct tenant *t, uint64_t now_ms,
		   const struct tenant__held *h, const uint8_t *map,
		   size_t map_len, const struct tenant__ref *extra,
		   size_t nextra, const struct tenant__event *ev, size_t nev,
		   uint64_t ack_id, bool urgent, bool nmapdot)
{
	Tenant__Delta d = TENANT__DELTA__INIT;
	Tenant__FieldRef fr[8], *frp[8];
	Tenant__Event e[8], *ep[8];
	if (nextra > 8 || nev > 8)
		return;
	d.tenant = (char *)h->id;
	d.map.data = (uint8_t *)map;
	d.map.len = map_len;
	for (size_t i = 0; i < nextra; i++) {
		tenant__field_ref__init(&fr[i]);
		fr[i].kind = extra[i].kind;
		fr[i].key.data = (uint8_t *)extra[i].key;
		fr[i].key.len = extra[i].len;
		frp[i] = &fr[i];
	}
	d.n_fields = nextra;
	d.fields = frp;
	for (size_t i = 0; i < nev; i++) {
		tenant__event__init(&e[i]);
		e[i].replica = ev[i].dot.replica;
		e[i].counter = ev[i].dot.counter;
		e[i].field = ev[i].field;
		ep[i] = &e[i];
	}
	d.n_events = nev;
	d.events = ep;
	/* One write's delta holds one dot, its event: receivers derive it
	 * (tenant__apply), so it need not travel (16 bytes of ~160). */
	if (nev == 1 && nmapdot)
		d.n_events = 0;
	d.ack_id = ack_id;
	d.urgent = urgent;
	for (unsigned i = 0; i < h->nowners; i++) {
		if (strcmp(h->owners[i], t->cfg.name) == 0)
			continue;
		struct tenant__peer *p = tenant__peer(t, h->owners[i]);
		if (p == NULL)
			continue;
		tenant__append(t, p, 3, &d.base);
		tenant__unacked_push(t, p, ack_id, now_ms);
		p->last_sent_ms = now_ms;
		t->st.deltas_sent++;
		t->st.delta_bytes_sent += map_len;
	}
}

/* ---- operations ------------------------------------------------------------
 */

/* A decoded request, from the admin socket or a peer. */
struct tenant__op {
	enum tenant_op op;
	const char *tenant;
	const uint8_t *cap;
	size_t cap_len;
	const uint8_t *key;
	size_t key_len;
	const uint8_t *value;
	size_t value_len;
	bool has_value;
	int64_t n;
	enum tenant_ack ack;
	const uint8_t *tenant_key;
	bool lww;
	const uint8_t *map; /* NULL: the key is top-level; else in this map */
	size_t map_len;
};

static bool
tenant__is_write(enum tenant_op op)
{
	return op == TENANT_OP_PUT || op == TENANT_OP_INC ||
	       op == TENANT_OP_ADD || op == TENANT_OP_RM ||
	       op == TENANT_OP_CREATE;
}

static const char *
tenant__check_op(const struct tenant__op *op)
{
	if (op->tenant == NULL || !tenant__id_ok(op->tenant))
		return "tenant id must be 1..128 bytes of [A-Za-z0-9._-]";
	switch (op->op) {
	case TENANT_OP_PUT:
	case TENANT_OP_ADD:
	case TENANT_OP_GET:
	case TENANT_OP_INC:
	case TENANT_OP_RM:
		if (op->key_len < 1 || op->key_len > TENANT_KEY_MAX ||
		    op->key[0] == 0)
			return "key must be 1..256 bytes, not starting with "
			       "a NUL byte";
		if (op->value_len > TENANT_VALUE_MAX)
			return "value is longer than 64 KiB";
		if (op->map != NULL &&
		    (op->map_len < 1 || op->map_len > TENANT_KEY_MAX ||
		     op->map[0] == 0))
			return "map name must be 1..256 bytes, not starting "
			       "with a NUL byte";
		if ((op->op == TENANT_OP_PUT || op->op == TENANT_OP_ADD) &&
		    op->value == NULL)
			return "a value is needed";
		return NULL;
	case TENANT_OP_KEYS:
		if (op->map != NULL &&
		    (op->map_len < 1 || op->map_len > TENANT_KEY_MAX ||
		     op->map[0] == 0))
			return "map name must be 1..256 bytes, not starting "
			       "with a NUL byte";
		return NULL;
	case TENANT_OP_DIGEST:
		return NULL;
	case TENANT_OP_CREATE:
		return op->tenant_key == NULL ? "no tenant key given" : NULL;
	default:
		return "unknown operation";
	}
}

/*
 * Where each of @refs[0..n) (sorted) sits in a delta's field list: the
 * map's own fields first, in order, then the fields the map does not hold
 * (removed there), which travel as refs so that receivers load them too.
 * Writes those into @extra, their count into *@nextra.
 */
static void
tenant__ref_positions(const struct crdt_ormap *d,
		      const struct tenant__ref *refs, size_t n, uint32_t *pos,
		      struct tenant__ref *extra, size_t *nextra)
{
	size_t nmap = crdt_ormap_count(d, NULL, 0), im = 0, ix = 0;
	for (size_t i = 0; i < n; i++) {
		struct crdt_key k = {refs[i].key, refs[i].len};
		if (crdt_ormap_has(d, &k, 1, refs[i].kind)) {
			pos[i] = (uint32_t)im++;
		} else {
			extra[ix] = refs[i];
			pos[i] = (uint32_t)(nmap + ix++);
		}
	}
	*nextra = ix;
}

/* The fields an operation touches, sorted; 0 for a bad op. */
static size_t
tenant__op_refs(const struct tenant__op *op, struct tenant__ref *refs)
{
	size_t n = 0;
	/* Inside a nested map, the map is the one top-level field. */
	if (op->map != NULL && op->op != TENANT_OP_CREATE) {
		refs[n++] =
		    (struct tenant__ref){CRDT_ORMAP, op->map, op->map_len};
		return n;
	}
	switch (op->op) {
	case TENANT_OP_PUT:
		refs[n++] = (struct tenant__ref){op->lww ? CRDT_LWW : CRDT_MV,
						 op->key, op->key_len};
		break;
	case TENANT_OP_INC:
		refs[n++] =
		    (struct tenant__ref){CRDT_PNCOUNTER, op->key, op->key_len};
		break;
	case TENANT_OP_ADD:
		refs[n++] =
		    (struct tenant__ref){CRDT_ORSET, op->key, op->key_len};
		break;
	case TENANT_OP_RM:
		if (op->has_value) {
			refs[n++] = (struct tenant__ref){CRDT_ORSET, op->key,
							 op->key_len};
			break;
		}
		for (int k = CRDT_GCOUNTER; k <= CRDT_ORMAP; k++)
			refs[n++] = (struct tenant__ref){(enum crdt_kind)k,
							 op->key, op->key_len};
		break;
	case TENANT_OP_CREATE:
		refs[n++] = (struct tenant__ref){
		    CRDT_MV, (const uint8_t *)TENANT__KEY_FIELD,
		    TENANT__KEY_FIELD_LEN};
		break;
	default:
		break;
	}
	return n;
}

/*
 * Applies @op to the partial map @m, recording the delta in @d and the
 * operation's event dots in @ev (field indexes into @refs). A value write
 * makes one dot; a remove makes one event dot per field it removes (so the
 * event index names each), and a remove of nothing makes none.
 */
static int
tenant__mutate(struct tenant *t, uint64_t now_ms, struct tenant__held *h,
	       const struct tenant__op *op, const struct tenant__ref *refs,
	       size_t nrefs, const struct tenant__loaded *ld,
	       struct crdt_ormap *m, struct crdt_ormap *d,
	       struct tenant__event *ev, size_t *nev)
{
	/* The field's path: its key, or the nested map and its key. */
	struct crdt_key pv[2] = {{refs[0].key, refs[0].len},
				 {op->key, op->key_len}};
	const struct crdt_key *path = pv;
	size_t depth = 1;
	if (op->map != NULL && op->op != TENANT_OP_CREATE)
		depth = 2;
	struct crdt_dot dot =
	    crdt_cc_next_dot(crdt_ormap_context(m), h->replica);
	int rc = 0;
	*nev = 0;
	switch (op->op) {
	case TENANT_OP_PUT:
		/* The stamp's replica makes the write's dot: this life's id
		 * (h->replica), as for every other op. The node's base id
		 * made dots the event index did not hold in any later life
		 * (a tenant held again, or a restart before its meta was
		 * saved), so pulls could not serve those writes. */
		t->clock.last.replica = h->replica;
		if (op->lww)
			rc = crdt_ormap_lww_set(
			    m, &t->clock, tenant__wall_ms(t, now_ms), path,
			    depth, op->value, op->value_len, d);
		else
			rc = crdt_ormap_mv_set(m, h->replica, path, depth,
					       op->value, op->value_len, d);
		break;
	case TENANT_OP_INC:
		rc = crdt_ormap_counter_add(m, h->replica, path, depth,
					    CRDT_PNCOUNTER, op->n, d);
		break;
	case TENANT_OP_ADD:
		rc = crdt_ormap_orset_add(m, h->replica, path, depth, op->value,
					  op->value_len, d);
		break;
	case TENANT_OP_CREATE: {
		/* The record: creation time (big-endian ms), then the key;
		 * byte order is age order (tenant__pubkey). A create repeated
		 * with the tenant's own key keeps the first creation time. */
		uint8_t rec[TENANT__KEY_RECORD];
		uint64_t w =
		    h->has_pubkey ? h->pubkey_ms : tenant__wall_ms(t, now_ms);
		for (int i = 7; i >= 0; i--, w >>= 8)
			rec[i] = (uint8_t)w;
		memcpy(rec + 8, op->tenant_key, TENANT_PUBKEY_BYTES);
		rc = crdt_ormap_mv_set(m, h->replica, path, depth, rec,
				       sizeof(rec), d);
		break;
	}
	case TENANT_OP_RM:
		if (depth == 2) {
			/* One top-level field (the map): one event per kind
			 * removed inside it, all naming that field. */
			for (int k = CRDT_GCOUNTER; k <= CRDT_ORMAP && rc == 0;
			     k++) {
				enum crdt_kind kind = (enum crdt_kind)k;
				if (op->has_value && kind != CRDT_ORSET)
					continue;
				if (!crdt_ormap_has(m, path, depth, kind))
					continue;
				rc = op->has_value
					 ? crdt_ormap_orset_remove(
					       m, path, depth, op->value,
					       op->value_len, d)
					 : crdt_ormap_remove(m, path, depth,
							     kind, d);
				if (rc == 0)
					rc = crdt_ormap_add_event(m, &dot, d);
				if (rc == 0) {
					ev[(*nev)++] =
					    (struct tenant__event){dot, 0};
					dot.counter++;
				}
			}
			return rc;
		}
		for (size_t i = 0; i < nrefs && rc == 0; i++) {
			if (ld->rec[i] == NULL)
				continue;
			if (op->has_value)
				rc = crdt_ormap_orset_remove(m, path, depth,
							     op->value,
							     op->value_len, d);
			else
				rc = crdt_ormap_remove(m, path, depth,
						       refs[i].kind, d);
			if (rc == 0)
				rc = crdt_ormap_add_event(m, &dot, d);
			if (rc == 0) {
				ev[(*nev)++] =
				    (struct tenant__event){dot, (uint32_t)i};
				dot.counter++;
			}
		}
		return rc;
	default:
		return MESH_EINVAL;
	}
	if (rc == 0)
		ev[(*nev)++] = (struct tenant__event){dot, 0};
	return rc;
}

static const char *
tenant__write_error(struct tenant *t, int rc)
{
	switch (rc) {
	case MESH_EFULL:
		t->st.over_quota++;
		return "over the tenant's quota (keys or bytes): nothing "
		       "written";
	case MESH_ENOSPC:
		t->st.store_errors++;
		return "store is full (disk, or map size: restart with a "
		       "larger --store-max-mb): nothing written";
	case MESH_ERANGE:
		return "counter would overflow: nothing written";
	case MESH_ETOOBIG:
		return "value too large: nothing written";
	default:
		t->st.store_errors++;
		return "cannot apply the write: nothing written";
	}
}

/* Runs a write on this replica: mutate, commit, replicate, answer. */
static void
tenant__do_write(struct tenant *t, uint64_t now_ms,
		 const struct tenant__origin *o, struct tenant__held *h,
		 const struct tenant__op *op)
{
	struct tenant__ref refs[6], extra[6];
	struct tenant__event ev[6];
	uint32_t pos[6];
	size_t nrefs = tenant__op_refs(op, refs), nev = 0, nextra = 0;
	struct tenant__loaded ld;
	struct crdt_ormap *m = NULL, *d = crdt_ormap_new(t->a);
	uint8_t *dbuf = NULL;
	size_t dlen = 0;
	int rc = d == NULL ? MESH_ENOMEM
			   : tenant__load(t->env, &t->cfg.kv, h, refs, nrefs,
					  &ld, &m);
	if (rc != 0) {
		crdt_ormap_free(d);
		t->st.store_errors++;
		tenant__fail(t, o, rc, "cannot read the tenant's state");
		return;
	}
	rc = tenant__mutate(t, now_ms, h, op, refs, nrefs, &ld, m, d, ev, &nev);
	if (rc == 0 && nev > 0)
		rc = crdt_ormap_encode(d, &dbuf, &dlen);
	bool quota = op->op != TENANT_OP_CREATE && !tenant__is_system(h->id);
	if (rc == 0 && nev > 0)
		rc = tenant__commit(t->env, &t->cfg.kv, h, m,
				    crdt_ormap_context(m), &ld, ev, nev,
				    quota ? t->cfg.quota_keys : 0,
				    quota ? t->cfg.quota_bytes : 0);
	if (rc != 0) {
		tenant__fail(t, o, rc, tenant__write_error(t, rc));
		goto out;
	}
	if (op->op == TENANT_OP_CREATE)
		h->has_pubkey = false; /* read back: the oldest record wins */
	t->st.writes_local++;
	tenant__note_changes(t, h, refs, nrefs);
	/* A quorum is a majority of the configured replicas, never of the
	 * members this node happens to see (alone after a restart it would
	 * be itself); "all" is every current replica, and never fewer than
	 * a quorum. Our own commit counts only when we are a replica. */
	unsigned quorum = t->cfg.replicas / 2 + 1;
	unsigned needed = op->ack == TENANT_ACK_ALL
			      ? (h->nowners > quorum ? h->nowners : quorum)
			  : op->ack == TENANT_ACK_QUORUM ? quorum
							 : 1;
	bool self_counts = h->is_replica || op->ack == TENANT_ACK_ONE;
	struct tenant__pending one, *p = NULL;
	if (needed > (self_counts ? 1u : 0u) && nev > 0)
		p = tenant__pending_add(t, TENANT__P_WRITE, now_ms);
	uint64_t ack_id = p != NULL ? p->id : ++t->next_id;
	bool single = false;
	if (nev > 0) {
		tenant__ref_positions(d, refs, nrefs, pos, extra, &nextra);
		for (size_t i = 0; i < nev; i++)
			ev[i].field = pos[ev[i].field];
		struct crdt_dot only;
		size_t at;
		single = nev == 1 && crdt_ormap_only_dot(d, &only, &at) == 0 &&
			 crdt_dot_compare(&only, &ev[0].dot) == 0 &&
			 at == ev[0].field;
		tenant__send_delta(t, now_ms, h, dbuf, dlen, extra, nextra, ev,
				   nev, ack_id, p != NULL, single);
	}
	struct tenant__pending *w = p != NULL ? p : &one;
	if (p == NULL)
		memset(&one, 0, sizeof(one));
	w->origin = *o;
	w->needed = needed;
	w->acks = 0;
	if (self_counts)
		strcpy(w->acked[w->acks++], t->cfg.name);
	for (unsigned i = 0; i < h->nowners; i++)
		strcpy(w->replicas[w->nreplicas++], h->owners[i]);
	if (p == NULL) {
		/* A remove of nothing changed nothing: every replica agrees. */
		if (needed > w->acks && nev > 0)
			tenant__write_answer(t, w, MESH_EFULL,
					     "too many writes waiting for "
					     "acks; committed here only");
		else
			tenant__write_answer(t, w, 0, NULL);
	}
out:
	mesh_free(t->a, dbuf);
	crdt_ormap_free(m);
	crdt_ormap_free(d);
	tenant__loaded_free(t->env, &ld);
}

struct tenant__keys_ctx {
	const struct mesh_allocator *a;
	size_t prefix;
	ProtobufCBinaryData *v;
	size_t n, cap;
	int rc;
};

static int
tenant__keys_visit(void *arg, const void *key, size_t klen, const void *val,
		   size_t vlen)
{
	struct tenant__keys_ctx *c = arg;
	(void)val;
	(void)vlen;
	const uint8_t *k = (const uint8_t *)key + c->prefix + 1;
	size_t len = klen - c->prefix - 1;
	if (klen <= c->prefix + 1 || k[0] == 0)
		return 0; /* reserved field */
	if (c->n == TENANT__LIST_MAX)
		return 1;
	if (mesh_grow(c->a, (void **)&c->v, &c->cap, c->n + 1, sizeof(*c->v)) !=
	    0)
		return c->rc = MESH_ENOMEM;
	uint8_t *copy = mesh_malloc(c->a, len);
	if (copy == NULL)
		return c->rc = MESH_ENOMEM;
	memcpy(copy, k, len);
	c->v[c->n].data = copy;
	c->v[c->n++].len = len;
	return 0;
}

static int
tenant__bin_qcmp(const void *x, const void *y)
{
	const ProtobufCBinaryData *a = x, *b = y;
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->data, b->data, n);
	return c ? c : (a->len > b->len) - (a->len < b->len);
}

/* Runs a read on this replica. */
static void
tenant__do_read(struct tenant *t, const struct tenant__origin *o,
		struct tenant__held *h, const struct tenant__op *op)
{
	Tenant__Reply r = TENANT__REPLY__INIT;
	char *reps[RING_REPLICAS_MAX];
	for (unsigned i = 0; i < h->nowners; i++)
		reps[i] = (char *)h->owners[i];
	r.n_replicas = h->nowners;
	r.replicas = reps;
	r.served_by = t->cfg.name;
	r.digest = h->digest;
	r.error = "";
	if (op->op == TENANT_OP_DIGEST) {
		tenant__answer(t, o, &r);
		return;
	}
	if (op->op == TENANT_OP_KEYS && op->map == NULL) {
		struct tenant__keys_ctx c = {t->a, 2 + h->id_len, NULL, 0, 0,
					     0};
		uint8_t prefix[TENANT_KV_KEY_MAX];
		size_t plen = tenant__key(prefix, TENANT__TAG_FIELD, h->id,
					  h->id_len, NULL);
		int rc = t->cfg.kv.scan(t->cfg.kv.ctx, prefix, plen, NULL, 0,
					tenant__keys_visit, &c);
		if (rc < 0 || c.rc != 0) {
			r.rc = c.rc ? c.rc : rc;
			r.error = "cannot list the keys";
		} else {
			/* Fields sort by kind first: one key may appear
			 * under several kinds. */
			mesh_sort(c.v, c.n, sizeof(*c.v), tenant__bin_qcmp);
			size_t u = 0;
			for (size_t i = 0; i < c.n; i++) {
				if (u > 0 && tenant__bin_qcmp(&c.v[u - 1],
							      &c.v[i]) == 0) {
					mesh_free(t->a, c.v[i].data);
					continue;
				}
				c.v[u++] = c.v[i];
			}
			c.n = u;
			r.n_values = c.n;
			r.values = c.v;
		}
		tenant__answer(t, o, &r);
		for (size_t i = 0; i < c.n; i++)
			mesh_free(t->a, c.v[i].data);
		mesh_free(t->a, c.v);
		return;
	}
	/* GET: every kind a key may hold, the first found answers; inside
	 * a nested map, the map's one record holds them all. */
	struct tenant__ref refs[4] = {
	    {CRDT_PNCOUNTER, op->key, op->key_len},
	    {CRDT_LWW, op->key, op->key_len},
	    {CRDT_MV, op->key, op->key_len},
	    {CRDT_ORSET, op->key, op->key_len},
	};
	size_t nrefs = 4, depth = 1;
	struct crdt_key pv[2] = {{op->key, op->key_len}, {NULL, 0}};
	if (op->map != NULL) {
		refs[0] =
		    (struct tenant__ref){CRDT_ORMAP, op->map, op->map_len};
		nrefs = 1;
		pv[0] = (struct crdt_key){op->map, op->map_len};
		pv[1] = (struct crdt_key){op->key, op->key_len};
		depth = 2;
	}
	const struct crdt_key *path = pv;
	struct tenant__loaded ld;
	struct crdt_ormap *m;
	int rc = tenant__load(t->env, &t->cfg.kv, h, refs, nrefs, &ld, &m);
	if (rc != 0) {
		tenant__fail(t, o, rc, "cannot read the tenant's state");
		return;
	}
	if (op->op == TENANT_OP_KEYS) {
		/* The keys of a nested map: its fields, one per key. */
		size_t n = crdt_ormap_count(m, path, 1);
		ProtobufCBinaryData *kv =
		    mesh_calloc(t->a, n ? n : 1, sizeof(*kv));
		size_t u = 0;
		for (size_t i = 0; kv != NULL && i < n && u < TENANT__LIST_MAX;
		     i++) {
			enum crdt_kind kind;
			const void *key;
			size_t len;
			crdt_ormap_field(m, path, 1, i, &kind, &key, &len);
			kv[u] = (ProtobufCBinaryData){len, (uint8_t *)key};
			u++;
		}
		mesh_sort(kv, u, sizeof(*kv), tenant__bin_qcmp);
		size_t w = 0;
		for (size_t i = 0; i < u; i++)
			if (w == 0 || tenant__bin_qcmp(&kv[w - 1], &kv[i]) != 0)
				kv[w++] = kv[i];
		r.n_values = w;
		r.values = kv;
		if (kv == NULL) {
			r.rc = MESH_ENOMEM;
			r.error = "out of memory";
		}
		tenant__answer(t, o, &r);
		mesh_free(t->a, kv);
		crdt_ormap_free(m);
		tenant__loaded_free(t->env, &ld);
		return;
	}
	ProtobufCBinaryData vals[64];
	ProtobufCBinaryData *vp = vals;
	size_t nv = 0;
	int64_t counter;
	if (crdt_ormap_has(m, path, depth, CRDT_MV)) {
		r.kind = CRDT_MV;
		const void *v;
		size_t len;
		while (nv < 64 &&
		       crdt_ormap_mv_value(m, path, depth, nv, &v, &len) == 0) {
			vals[nv].data = (uint8_t *)v;
			vals[nv++].len = len;
		}
	} else if (crdt_ormap_has(m, path, depth, CRDT_LWW)) {
		r.kind = CRDT_LWW;
		const void *v;
		size_t len;
		if (crdt_ormap_lww_get(m, path, depth, &v, &len) == 0) {
			vals[0].data = (uint8_t *)v;
			vals[0].len = len;
			nv = 1;
		}
	} else if (crdt_ormap_counter_value(m, path, depth, CRDT_PNCOUNTER,
					    &counter) == 0) {
		r.kind = CRDT_PNCOUNTER;
		r.counter = counter;
	} else if (crdt_ormap_has(m, path, depth, CRDT_ORSET)) {
		r.kind = CRDT_ORSET;
		size_t cnt = crdt_ormap_orset_count(m, path, depth);
		if (cnt > TENANT__LIST_MAX)
			cnt = TENANT__LIST_MAX;
		vp = mesh_calloc(t->a, cnt ? cnt : 1, sizeof(*vp));
		if (vp == NULL) {
			r.rc = MESH_ENOMEM;
			r.error = "out of memory";
			vp = vals;
		}
		const void *v;
		size_t len;
		while (vp != vals && nv < cnt &&
		       crdt_ormap_orset_element(m, path, depth, nv, &v, &len) ==
			   0) {
			vp[nv].data = (uint8_t *)v;
			vp[nv++].len = len;
		}
	} else {
		r.rc = MESH_ENOENT;
		r.error = "no such key";
	}
	r.n_values = nv;
	r.values = vp;
	tenant__answer(t, o, &r);
	if (vp != vals)
		mesh_free(t->a, vp);
	crdt_ormap_free(m);
	tenant__loaded_free(t->env, &ld);
}

/* Runs an operation on this node, which replicates the tenant (or was
 * asked by a node that thinks so). */
static void
tenant__run(struct tenant *t, uint64_t now_ms, const struct tenant__origin *o,
	    const struct tenant__op *op)
{
	t->st.ops++;
	const char *why = tenant__check_op(op);
	if (why != NULL) {
		tenant__fail(t, o, MESH_EINVAL, why);
		return;
	}
	struct tenant__held *h = tenant__find(t, op->tenant);
	if (tenant__is_system(op->tenant)) {
		/* Members of the mesh write it; no key, quota or rate. */
		int rc = op->op == TENANT_OP_CREATE ? MESH_EINVAL
			 : h != NULL		    ? 0
				     : tenant__hold(t, op->tenant, &h);
		if (rc != 0)
			tenant__fail(t, o, rc, "cannot hold the system tenant");
		else if (tenant__is_write(op->op))
			tenant__do_write(t, now_ms, o, h, op);
		else
			tenant__do_read(t, o, h, op);
		return;
	}
	if (op->op == TENANT_OP_CREATE) {
		/* The same create again (a retry after a timeout that may
		 * have committed somewhere) is written again and acknowledged
		 * like the first; another key finds the tenant taken. */
		if (h != NULL && tenant__pubkey(t, h) == 0 &&
		    memcmp(h->pubkey, op->tenant_key, TENANT_PUBKEY_BYTES) !=
			0) {
			tenant__fail(t, o, MESH_EEXIST,
				     "tenant already exists");
			return;
		}
		int rc = h != NULL ? 0 : tenant__hold(t, op->tenant, &h);
		if (rc != 0) {
			tenant__fail(t, o, rc, "cannot store the tenant");
			return;
		}
		tenant__do_write(t, now_ms, o, h, op);
		return;
	}
	if (h == NULL || tenant__pubkey(t, h) != 0) {
		Tenant__Reply r = TENANT__REPLY__INIT;
		r.rc = MESH_ENOENT;
		r.error = "no such tenant (or its replicas are still taking "
			  "it over: retry in a few seconds)";
		r.served_by = t->cfg.name;
		r.not_held = true;
		tenant__answer(t, o, &r);
		return;
	}
	uint32_t need = tenant__is_write(op->op) ? TENANT_WRITE : TENANT_READ;
	int rc =
	    tenant__authorize(t, now_ms, h, op->cap, op->cap_len, need, &why);
	if (rc != 0) {
		tenant__fail(t, o, rc, why ? why : "capability refused");
		return;
	}
	if (!tenant__is_write(op->op)) {
		tenant__do_read(t, o, h, op);
		return;
	}
	if (!tenant__rate_ok(t, now_ms, h)) {
		t->st.over_quota++;
		tenant__fail(t, o, MESH_EAGAIN,
			     "rate limit: too many writes to this tenant; "
			     "nothing written");
		return;
	}
	tenant__do_write(t, now_ms, o, h, op);
}

static void
tenant__op_to_request(const struct tenant__op *op, Tenant__Request *rq)
{
	tenant__request__init(rq);
	rq->op = (Tenant__Op)op->op;
	rq->tenant = (char *)op->tenant;
	rq->cap.data = (uint8_t *)op->cap;
	rq->cap.len = op->cap_len;
	rq->key.data = (uint8_t *)op->key;
	rq->key.len = op->key_len;
	rq->value.data = (uint8_t *)op->value;
	rq->value.len = op->value_len;
	rq->has_value = op->has_value;
	rq->lww = op->lww;
	rq->map.data = (uint8_t *)op->map;
	rq->map.len = op->map != NULL ? op->map_len : 0;
	rq->n = op->n;
	rq->ack = (Tenant__Ack)op->ack;
	if (op->tenant_key != NULL) {
		rq->tenant_key.data = (uint8_t *)op->tenant_key;
		rq->tenant_key.len = TENANT_PUBKEY_BYTES;
	}
}

/* Sends forward @p (its packed request) to its next replica. */
static bool
tenant__forward_send(struct tenant *t, struct tenant__pending *p)
{
	while (p->tries < p->nreplicas) {
		const char *to = p->replicas[p->tries++];
		if (strcmp(to, t->cfg.name) == 0)
			continue;
		struct tenant__peer *peer = tenant__peer(t, to);
		if (peer == NULL)
			continue;
		Tenant__Request *rq =
		    tenant__request__unpack(&t->pa, p->req_len, p->req);
		if (rq == NULL)
			return false;
		rq->id = p->id;
		tenant__append(t, peer, 5, &rq->base);
		tenant__request__free_unpacked(rq, &t->pa);
		/* It leaves in the next frame flushed to that peer. */
		p->seq = peer->frame_seq + 1;
		return true;
	}
	return false;
}

/* A forwarded request as an operation; pointers borrow from @rq. */
static void
tenant__op_from_request(const Tenant__Request *rq, struct tenant__op *op)
{
	*op = (struct tenant__op){
	    .op = (enum tenant_op)rq->op,
	    .tenant = rq->tenant,
	    .cap = rq->cap.data,
	    .cap_len = rq->cap.len,
	    .key = rq->key.data,
	    .key_len = rq->key.len,
	    .value = rq->value.data ? rq->value.data : (const uint8_t *)"",
	    .value_len = rq->value.len,
	    .has_value = rq->has_value,
	    .n = rq->n,
	    .ack = rq->ack <= TENANT__ACK__ACK_ALL ? (enum tenant_ack)rq->ack
						   : TENANT_ACK_ONE,
	    .tenant_key = rq->tenant_key.len == TENANT_PUBKEY_BYTES
			      ? rq->tenant_key.data
			      : NULL,
	    .lww = rq->lww,
	    .map = rq->map.len > 0 ? rq->map.data : NULL,
	    .map_len = rq->map.len};
}

/* Runs the packed request of forward @p here; false when it does not
 * decode (it always does: we packed it). */
static bool
tenant__run_packed(struct tenant *t, uint64_t now_ms,
		   const struct tenant__pending *p)
{
	Tenant__Request *rq =
	    tenant__request__unpack(&t->pa, p->req_len, p->req);
	if (rq == NULL)
		return false;
	struct tenant__op op;
	tenant__op_from_request(rq, &op);
	tenant__run(t, now_ms, &p->origin, &op);
	tenant__request__free_unpacked(rq, &t->pa);
	return true;
}

static int
tenant__submit(struct tenant *t, uint64_t now_ms,
	       const struct tenant_request *rq)
{
	struct tenant__origin o = {true, rq->id, ""};
	struct tenant__op op = {.op = rq->op,
				.tenant = rq->tenant,
				.cap = rq->cap,
				.cap_len = rq->cap_len,
				.key = rq->key,
				.key_len = rq->key_len,
				.value = rq->value,
				.value_len = rq->value_len,
				.has_value = rq->has_value,
				.n = rq->n,
				.ack = rq->ack,
				.tenant_key = rq->tenant_key,
				.lww = rq->lww,
				.map = rq->map,
				.map_len = rq->map_len};
	const char *why = tenant__check_op(&op);
	if (why == NULL && rq->system && !tenant__is_system(rq->tenant))
		why = "not the system tenant";
	if (why == NULL && !rq->system && rq->tenant[0] == '_')
		why = "tenant ids starting with '_' are reserved for the mesh";
	if (why == NULL && rq->system && rq->op == TENANT_OP_CREATE)
		why = "the system tenant needs no create";
	if (why != NULL) {
		t->st.ops++;
		tenant__fail(t, &o, MESH_EINVAL, why);
		return 0;
	}
	if (t->ring == NULL) {
		t->st.ops++;
		tenant__fail(t, &o, MESH_ESTATE,
			     "no membership view yet: try again");
		return 0;
	}
	uint32_t idx[RING_REPLICAS_MAX];
	uint64_t hash = ring_hash_key(t->ring, rq->tenant, strlen(rq->tenant));
	int n = ring_lookup(t->ring, hash, t->cfg.replicas, idx);
	if (n <= 0) {
		t->st.ops++;
		tenant__fail(t, &o, MESH_ESTATE,
			     "no eligible member to hold the tenant");
		return 0;
	}
	bool mine = false;
	for (int i = 0; i < n; i++)
		mine |=
		    strcmp(ring_node(t->ring, idx[i])->name, t->cfg.name) == 0;
	/* A replica that holds the tenant runs it; one that does not yet
	 * (it just became a replica and is still pulling) asks another. */
	struct tenant__held *h = tenant__find(t, rq->tenant);
	bool ready = h != NULL && (rq->system || tenant__pubkey(t, h) == 0);
	if (mine && (ready || rq->op == TENANT_OP_CREATE || n == 1)) {
		tenant__run(t, now_ms, &o, &op);
		return 0;
	}
	struct tenant__pending *p =
	    tenant__pending_add(t, TENANT__P_FORWARD, now_ms);
	if (p == NULL)
		return MESH_EFULL;
	Tenant__Request req;
	tenant__op_to_request(&op, &req);
	p->req_len = tenant__request__get_packed_size(&req);
	p->req = mesh_malloc(t->a, p->req_len ? p->req_len : 1);
	if (p->req == NULL) {
		tenant__pending_del(t, p);
		return MESH_ENOMEM;
	}
	tenant__request__pack(&req, p->req);
	p->origin = o;
	p->is_read = !tenant__is_write(rq->op);
	memcpy(p->tenant, rq->tenant, strlen(rq->tenant) + 1);
	for (int i = 0; i < n; i++)
		strcpy(p->replicas[p->nreplicas++],
		       ring_node(t->ring, idx[i])->name);
	t->st.forwarded++;
	if (!tenant__forward_send(t, p)) {
		tenant__fail(t, &o, MESH_ESTATE, "no replica to ask");
		tenant__pending_del(t, p);
	}
	return 0;
}

int
tenant_submit(struct tenant *t, uint64_t now_ms,
	      const struct tenant_request *rq)
{
	tenant__enter(t);
	int rc = tenant__submit(t, now_ms, rq);
	tenant__leave(t, now_ms);
	return rc;
}

/* ---- receiving -------------------------------------------------------------
 */

static bool
tenant__kind_ok(uint32_t k)
{
	return k >= CRDT_GCOUNTER && k <= CRDT_ORMAP;
}

static bool tenant__replicates(const struct tenant *t, const char *id);

/* Applies a received delta to the store. */
static int
tenant__apply(struct tenant *t, const Tenant__Delta *d)
{
	if (!tenant__id_ok(d->tenant) ||
	    d->n_fields > TENANT__DELTA_FIELDS_MAX ||
	    d->n_events > TENANT__PULL_EVENTS)
		return MESH_EDECODE;
	/* Only a replica (by our view) takes a tenant it does not hold yet:
	 * anyone else's delta would make us keep a copy nobody hands over. */
	bool fresh = tenant__find(t, d->tenant) == NULL;
	if (fresh && !tenant__replicates(t, d->tenant))
		return MESH_ESTATE;
	struct crdt_ormap *dm = NULL;
	int rc = crdt_ormap_decode(t->a, d->map.data, d->map.len, &dm);
	if (rc != 0)
		return rc == MESH_ENOMEM ? rc : MESH_EDECODE;
	/* The fields it touches: its own, then those listed. */
	size_t nmap = crdt_ormap_count(dm, NULL, 0);
	size_t nrefs = nmap + d->n_fields;
	if (nmap > TENANT__DELTA_FIELDS_MAX) {
		crdt_ormap_free(dm);
		return MESH_EDECODE;
	}
	struct tenant__ref *refs =
	    mesh_calloc(t->a, nrefs ? nrefs : 1, sizeof(*refs));
	struct tenant__event *ev =
	    mesh_calloc(t->a, d->n_events ? d->n_events : 1, sizeof(*ev));
	struct tenant__ref *sorted =
	    mesh_calloc(t->a, nrefs ? nrefs : 1, sizeof(*sorted));
	uint32_t *order = mesh_calloc(t->a, nrefs ? nrefs : 1, sizeof(*order));
	struct crdt_ormap *m = NULL;
	struct tenant__loaded ld = {0};
	struct tenant__held *h = NULL;
	if (refs == NULL || ev == NULL || sorted == NULL || order == NULL) {
		rc = MESH_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nmap; i++) {
		enum crdt_kind k;
		const void *key;
		size_t len;
		crdt_ormap_field(dm, NULL, 0, i, &k, &key, &len);
		refs[i] = (struct tenant__ref){k, key, len};
	}
	for (size_t i = 0; i < d->n_fields; i++) {
		const Tenant__FieldRef *f = d->fields[i];
		if (!tenant__kind_ok(f->kind) || f->key.len < 1 ||
		    f->key.len > TENANT_KEY_MAX) {
			rc = MESH_EDECODE;
			goto out;
		}
		refs[nmap + i] = (struct tenant__ref){(enum crdt_kind)f->kind,
						      f->key.data, f->key.len};
	}
	for (size_t i = 0; i < nmap; i++)
		if (refs[i].len < 1 || refs[i].len > TENANT_KEY_MAX) {
			rc = MESH_EDECODE;
			goto out;
		}
	/* Sorted and unique for the store; events point into the sorted
	 * list afterwards. */
	memcpy(sorted, refs, nrefs * sizeof(*refs));
	mesh_sort(sorted, nrefs, sizeof(*sorted), tenant__ref_qcmp);
	for (size_t i = 1; i < nrefs; i++)
		if (tenant__ref_cmp(&sorted[i - 1], &sorted[i]) == 0) {
			rc = MESH_EDECODE;
			goto out;
		}
	for (size_t i = 0; i < nrefs; i++) {
		size_t lo = 0, hi = nrefs;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (tenant__ref_cmp(&sorted[mid], &refs[i]) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		order[i] = (uint32_t)lo;
	}
	const struct crdt_cc *dcc = crdt_ormap_context(dm);
	/* A one-write delta leaves its event out: it is its only dot. */
	size_t nev = d->n_events;
	if (nev == 0 && !d->part) {
		size_t at;
		if (crdt_ormap_only_dot(dm, &ev[0].dot, &at) == 0) {
			ev[0].field = order[at];
			nev = 1;
		}
	}
	for (size_t i = 0; i < d->n_events; i++) {
		const Tenant__Event *e = d->events[i];
		struct crdt_dot dot = {e->replica, e->counter};
		if (e->field >= nrefs || e->counter == 0 ||
		    !crdt_cc_contains(dcc, &dot)) {
			rc = MESH_EDECODE;
			goto out;
		}
		ev[i] = (struct tenant__event){dot, order[e->field]};
	}
	if ((rc = tenant__hold(t, d->tenant, &h)) != 0)
		goto out;
	if ((rc = tenant__load(t->env, &t->cfg.kv, h, sorted, nrefs, &ld,
			       &m)) != 0)
		goto out;
	if ((rc = crdt_ormap_join(m, dm)) != 0)
		goto out;
	/* A delta brings its context; a part of a pull answer claims only
	 * the dots it carries (its map's context is the sender's whole one,
	 * which the join of these fields needs, but which would claim the
	 * fields still to come). */
	const struct crdt_cc *cc = crdt_ormap_context(m);
	if (d->part) {
		struct crdt_dot *extra = mesh_calloc(
		    t->a, d->n_events ? d->n_events : 1, sizeof(*extra));
		if (extra == NULL) {
			rc = MESH_ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < d->n_events; i++)
			extra[i] = ev[i].dot;
		rc = crdt_ormap_narrow_context(dm, extra, d->n_events);
		mesh_free(t->a, extra);
		if (rc != 0)
			goto out;
		cc = crdt_ormap_context(dm);
	}
	rc = tenant__commit(t->env, &t->cfg.kv, h, m, cc, &ld, ev, nev, 0, 0);
	if (rc == 0) {
		t->st.deltas_applied++;
		tenant__note_changes(t, h, sorted, nrefs);
		for (size_t i = 0; i < nrefs; i++)
			if (sorted[i].kind == CRDT_MV &&
			    sorted[i].len == TENANT__KEY_FIELD_LEN &&
			    memcmp(sorted[i].key, TENANT__KEY_FIELD,
				   TENANT__KEY_FIELD_LEN) == 0)
				h->has_pubkey = false;
	} else if (rc != MESH_ENOMEM) {
		t->st.store_errors++;
	}
out:
	/* A tenant opened for this delta and left empty is not held. */
	if (rc != 0 && fresh && h != NULL && crdt_cc_vv_count(h->cc) == 0 &&
	    crdt_cc_cloud_size(h->cc) == 0)
		tenant__held_remove(t, h);
	crdt_ormap_free(m);
	crdt_ormap_free(dm);
	tenant__loaded_free(t->env, &ld);
	mesh_free(t->a, refs);
	mesh_free(t->a, sorted);
	mesh_free(t->a, order);
	mesh_free(t->a, ev);
	return rc;
}

/* ---- anti-entropy ----------------------------------------------------------
 */

static bool
tenant__owned_by(const struct tenant__held *h, const char *name, unsigned *slot)
{
	for (unsigned i = 0; i < h->nowners; i++)
		if (strcmp(h->owners[i], name) == 0) {
			if (slot != NULL)
				*slot = i;
			return true;
		}
	return false;
}

/* Tenants we and @peer both replicate, by our view. */
static bool
tenant__shared(const struct tenant__held *h, const char *peer)
{
	return h->is_replica && tenant__owned_by(h, peer, NULL);
}

static uint64_t
tenant__pair_digest(const struct tenant *t, const char *peer, uint32_t *count)
{
	uint64_t sum = 0;
	uint32_t n = 0;
	for (size_t i = 0; i < t->nheld; i++) {
		const struct tenant__held *h = t->held[i];
		if (!tenant__shared(h, peer))
			continue;
		/* Order-free: a sum of mixed digests. */
		sum += mesh_mix64(h->digest);
		n++;
	}
	*count = n;
	return sum;
}

static void
tenant__mark_same(struct tenant__held *h, const char *peer)
{
	unsigned slot;
	if (tenant__owned_by(h, peer, &slot)) {
		h->owner_same |= 1u << slot;
		h->owner_diff &= ~(1u << slot);
		h->mismatches[slot] = 0;
	}
}

/*
 * Whether a digest that differs from ours means something is missing, not
 * just deltas still in flight. While writes flow, two replicas' digests
 * differ in most rounds and a pull would fetch what the next frame brings
 * anyway. So pull at once when no delta went either way for a round
 * (nothing in flight explains it) or its digest has not moved since the last
 * round (it is quiet: the difference is real), and otherwise after three
 * rounds of difference in a row (it is busy, but something may still be
 * missing).
 */
static bool
tenant__gap(const struct tenant *t, uint64_t now_ms, struct tenant__held *h,
	    const struct tenant__peer *p, uint64_t digest)
{
	unsigned slot;
	if (!tenant__owned_by(h, p->name, &slot))
		return true;
	/* No delta either way for a round: nothing in flight explains it. */
	if (now_ms >= p->last_delta_ms + t->cfg.anti_entropy_ms &&
	    now_ms >= p->last_sent_ms + t->cfg.anti_entropy_ms) {
		h->mismatches[slot] = 0;
		return true;
	}
	bool quiet = h->mismatches[slot] > 0 && h->seen_digest[slot] == digest;
	h->seen_digest[slot] = digest;
	if (quiet || ++h->mismatches[slot] >= 3) {
		h->mismatches[slot] = 0;
		return true;
	}
	return false;
}

static void
tenant__mark_differs(struct tenant__held *h, const char *peer)
{
	unsigned slot;
	if (tenant__owned_by(h, peer, &slot)) {
		h->owner_same &= ~(1u << slot);
		h->owner_diff |= 1u << slot;
	}
}

/* Whether we replicate @id by our view (for a tenant we do not hold). */
static bool
tenant__replicates(const struct tenant *t, const char *id)
{
	if (t->ring == NULL)
		return false;
	uint32_t idx[RING_REPLICAS_MAX];
	int n = ring_lookup(t->ring, ring_hash_key(t->ring, id, strlen(id)),
			    t->cfg.replicas, idx);
	for (int i = 0; i < n; i++)
		if (strcmp(ring_node(t->ring, idx[i])->name, t->cfg.name) == 0)
			return true;
	return false;
}

static void
tenant__send_pull(struct tenant *t, struct tenant__peer *p, const char *id)
{
	struct tenant__held *h = tenant__find(t, id);
	Tenant__Pull pl = TENANT__PULL__INIT;
	pl.tenant = (char *)id;
	if (h != NULL) {
		pl.ctx.data = h->cc_buf;
		pl.ctx.len = h->cc_len;
		pl.have = true;
	}
	tenant__append(t, p, 10, &pl.base);
	t->st.ae_pulls_sent++;
}

/* Sends our digests of the tenants shared with @p. */
static void
tenant__send_digests(struct tenant *t, struct tenant__peer *p, bool reply)
{
	for (size_t i = 0; i < t->nheld; i++) {
		const struct tenant__held *h = t->held[i];
		if (!tenant__shared(h, p->name))
			continue;
		Tenant__TenantDigest td = TENANT__TENANT_DIGEST__INIT;
		td.tenant = (char *)h->id;
		td.digest = h->digest;
		tenant__append(t, p, 8, &td.base);
	}
	tenant__append_flag(t, p, reply ? 9 : 13);
}

static int
tenant__str_qcmp(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static void
tenant__recv_digests(struct tenant *t, uint64_t now_ms, struct tenant__peer *p,
		     const Tenant__Frame *f)
{
	char **ids =
	    mesh_calloc(t->a, f->n_digests ? f->n_digests : 1, sizeof(*ids));
	if (ids == NULL)
		return;
	for (size_t i = 0; i < f->n_digests; i++) {
		const Tenant__TenantDigest *td = f->digests[i];
		ids[i] = td->tenant;
		if (!tenant__id_ok(td->tenant)) {
			t->st.drop_decode++;
			continue;
		}
		struct tenant__held *h = tenant__find(t, td->tenant);
		if (h != NULL && h->digest == td->digest) {
			tenant__mark_same(h, p->name);
			continue;
		}
		if (h != NULL)
			tenant__mark_differs(h, p->name);
		if (h != NULL ? h->is_replica &&
				    tenant__gap(t, now_ms, h, p, td->digest)
			      : tenant__replicates(t, td->tenant))
			tenant__send_pull(t, p, td->tenant);
	}
	if (!f->digests_reply) {
		/* Tell the peer of tenants it did not list, so that it pulls
		 * what it lacks from us. */
		mesh_sort(ids, f->n_digests, sizeof(*ids), tenant__str_qcmp);
		bool any = false;
		for (size_t i = 0; i < t->nheld; i++) {
			const struct tenant__held *h = t->held[i];
			if (!tenant__shared(h, p->name))
				continue;
			const char *key = h->id;
			if (bsearch(&key, ids, f->n_digests, sizeof(*ids),
				    tenant__str_qcmp) != NULL)
				continue;
			Tenant__TenantDigest td = TENANT__TENANT_DIGEST__INIT;
			td.tenant = (char *)h->id;
			td.digest = h->digest;
			tenant__append(t, p, 8, &td.base);
			any = true;
		}
		if (any)
			tenant__append_flag(t, p, 9);
	}
	mesh_free(t->a, ids);
}

/* Serving a pull: the event index names what the asker lacks. */
struct tenant__pull_ctx {
	const struct mesh_allocator *a;
	const struct crdt_cc *have; /* the asker's context, NULL: nothing */
	size_t prefix;		    /* 'e' T replica: bytes before counter */
	struct tenant__event *ev;
	struct tenant__ref *refs; /* one per event, keys owned */
	size_t n, cap;
	int rc;
};

static uint64_t
tenant__get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static int
tenant__pull_visit(void *arg, const void *key, size_t klen, const void *val,
		   size_t vlen)
{
	struct tenant__pull_ctx *c = arg;
	const uint8_t *k = key, *v = val;
	if (klen != c->prefix + 8 || vlen < 2 || vlen > 1 + TENANT_KEY_MAX ||
	    !tenant__kind_ok(v[0]))
		return 0; /* not ours to judge: skip a bad entry */
	struct crdt_dot dot = {tenant__get_be64(k + c->prefix - 8),
			       tenant__get_be64(k + c->prefix)};
	if (c->have != NULL && crdt_cc_contains(c->have, &dot))
		return 0;
	if (c->n == TENANT__PULL_EVENTS)
		return 1;
	if (mesh_grow(c->a, (void **)&c->ev, &c->cap, c->n + 1,
		      sizeof(*c->ev)) != 0)
		return c->rc = MESH_ENOMEM;
	size_t cap2 = c->cap;
	struct tenant__ref *nr =
	    mesh_realloc(c->a, c->refs, cap2 * sizeof(*c->refs));
	if (nr == NULL)
		return c->rc = MESH_ENOMEM;
	c->refs = nr;
	uint8_t *kk = mesh_malloc(c->a, vlen - 1);
	if (kk == NULL)
		return c->rc = MESH_ENOMEM;
	memcpy(kk, v + 1, vlen - 1);
	c->ev[c->n] = (struct tenant__event){dot, 0};
	c->refs[c->n] =
	    (struct tenant__ref){(enum crdt_kind)v[0], kk, vlen - 1};
	c->n++;
	return 0;
}

/* Sends @h's fields named in @refs[0..n) (sorted, unique) with @h's whole
 * context and the events @ev (field indexes into @refs). */
static bool
tenant__send_chunk(struct tenant *t, struct tenant__peer *p,
		   struct tenant__held *h, const struct tenant__ref *refs,
		   size_t n, const struct tenant__event *ev, size_t nev)
{
	struct tenant__loaded ld;
	struct crdt_ormap *m;
	if (tenant__load(t->env, &t->cfg.kv, h, refs, n, &ld, &m) != 0) {
		t->st.store_errors++;
		return false;
	}
	size_t bytes = 0;
	for (size_t i = 0; i < ld.n; i++)
		bytes += ld.len[i];
	if (bytes > TENANT__PULL_CHUNK && n > 1) {
		/* Too big for one part: halve it (events are in field order,
		 * so they split at the first event of the second half). */
		crdt_ormap_free(m);
		tenant__loaded_free(t->env, &ld);
		size_t k = n / 2, e = 0;
		while (e < nev && ev[e].field < k)
			e++;
		struct tenant__event *rest =
		    mesh_calloc(t->a, nev - e ? nev - e : 1, sizeof(*rest));
		if (rest == NULL)
			return false;
		for (size_t i = e; i < nev; i++) {
			rest[i - e] = ev[i];
			rest[i - e].field -= (uint32_t)k;
		}
		bool ok =
		    tenant__send_chunk(t, p, h, refs, k, ev, e) &&
		    tenant__send_chunk(t, p, h, refs + k, n - k, rest, nev - e);
		mesh_free(t->a, rest);
		return ok;
	}
	uint8_t *buf;
	size_t len;
	bool sent = false;
	if (crdt_ormap_encode(m, &buf, &len) == 0) {
		Tenant__Delta d = TENANT__DELTA__INIT;
		Tenant__FieldRef *fr =
		    mesh_calloc(t->a, n ? n : 1, sizeof(*fr));
		Tenant__FieldRef **frp =
		    mesh_calloc(t->a, n ? n : 1, sizeof(*frp));
		Tenant__Event *e = mesh_calloc(t->a, nev ? nev : 1, sizeof(*e));
		Tenant__Event **ep =
		    mesh_calloc(t->a, nev ? nev : 1, sizeof(*ep));
		uint32_t *pos = mesh_calloc(t->a, n ? n : 1, sizeof(*pos));
		if (fr != NULL && frp != NULL && e != NULL && ep != NULL &&
		    pos != NULL) {
			struct tenant__ref *extra =
			    mesh_calloc(t->a, n ? n : 1, sizeof(*extra));
			size_t ix = 0;
			if (extra != NULL)
				tenant__ref_positions(m, refs, n, pos, extra,
						      &ix);
			for (size_t i = 0; i < ix; i++) {
				tenant__field_ref__init(&fr[i]);
				fr[i].kind = extra[i].kind;
				fr[i].key.data = (uint8_t *)extra[i].key;
				fr[i].key.len = extra[i].len;
				frp[i] = &fr[i];
			}
			for (size_t i = 0; i < nev; i++) {
				tenant__event__init(&e[i]);
				e[i].replica = ev[i].dot.replica;
				e[i].counter = ev[i].dot.counter;
				e[i].field = pos[ev[i].field];
				ep[i] = &e[i];
			}
			d.tenant = h->id;
			d.map.data = buf;
			d.map.len = len;
			d.n_fields = ix;
			d.fields = frp;
			d.n_events = nev;
			d.events = ep;
			d.part = true;
			tenant__append(t, p, 3, &d.base);
			t->st.ae_bytes_sent += len;
			sent = extra != NULL;
			mesh_free(t->a, extra);
		}
		mesh_free(t->a, fr);
		mesh_free(t->a, frp);
		mesh_free(t->a, e);
		mesh_free(t->a, ep);
		mesh_free(t->a, pos);
		mesh_free(t->a, buf);
	}
	crdt_ormap_free(m);
	tenant__loaded_free(t->env, &ld);
	return sent;
}

struct tenant__evsort {
	struct tenant__event ev;
	struct tenant__ref ref;
};

static int
tenant__evsort_qcmp(const void *x, const void *y)
{
	const struct tenant__evsort *a = x, *b = y;
	return tenant__ref_cmp(&a->ref, &b->ref);
}

static void
tenant__serve_pull(struct tenant *t, struct tenant__peer *p,
		   const Tenant__Pull *pl)
{
	if (!tenant__id_ok(pl->tenant)) {
		t->st.drop_decode++;
		return;
	}
	struct tenant__held *h = tenant__find(t, pl->tenant);
	if (h == NULL ||
	    (!tenant__owned_by(h, p->name, NULL) && !tenant__is_system(h->id)))
		return; /* nothing to give, or not to this node */
	struct crdt_cc *have = NULL;
	if (pl->have && pl->ctx.len > 0 &&
	    crdt_cc_decode(t->a, pl->ctx.data, pl->ctx.len, &have) != 0) {
		t->st.drop_decode++;
		return;
	}
	t->st.ae_pulls_served++;
	struct tenant__pull_ctx c = {t->a, have, 0, NULL, NULL, 0, 0, 0};
	/* One scan per replica of our context, from just above what the
	 * asker has contiguously. */
	size_t nvv = crdt_cc_vv_count(h->cc), ncl = crdt_cc_cloud_size(h->cc);
	uint64_t last = 0;
	bool partial = false, complete = true;
	for (size_t i = 0; i < nvv + ncl && c.rc == 0 && !partial; i++) {
		struct crdt_dot d;
		if (i < nvv)
			crdt_cc_vv_at(h->cc, i, &d);
		else
			crdt_cc_cloud_at(h->cc, i - nvv, &d);
		/* Each replica once: the cloud repeats those of the vector. */
		if ((i > 0 && d.replica == last) ||
		    (i >= nvv && crdt_cc_vv(h->cc, d.replica) > 0))
			continue;
		last = d.replica;
		uint8_t prefix[TENANT_KV_KEY_MAX], from[TENANT_KV_KEY_MAX];
		struct crdt_dot start = {
		    d.replica, (have ? crdt_cc_vv(have, d.replica) : 0) + 1};
		size_t flen = tenant__event_key(from, h->id, h->id_len, &start);
		size_t plen = flen - 8;
		memcpy(prefix, from, plen);
		c.prefix = plen;
		int rc = t->cfg.kv.scan(t->cfg.kv.ctx, prefix, plen, from, flen,
					tenant__pull_visit, &c);
		if (rc == 1)
			partial = true;
		else if (rc < 0)
			c.rc = rc;
	}
	if (c.rc == 0 && c.n > 0) {
		/* Group the events by field; send fields in chunks. */
		struct tenant__evsort *es = mesh_calloc(t->a, c.n, sizeof(*es));
		struct tenant__ref *refs =
		    mesh_calloc(t->a, c.n, sizeof(*refs));
		struct tenant__event *ev = mesh_calloc(t->a, c.n, sizeof(*ev));
		if (es != NULL && refs != NULL && ev != NULL) {
			for (size_t i = 0; i < c.n; i++)
				es[i] =
				    (struct tenant__evsort){c.ev[i], c.refs[i]};
			mesh_sort(es, c.n, sizeof(*es), tenant__evsort_qcmp);
			size_t i = 0;
			while (i < c.n) {
				size_t nr = 0, ne = 0, bytes = 0;
				while (i < c.n && bytes < TENANT__PULL_CHUNK &&
				       nr < 4096) {
					if (nr == 0 ||
					    tenant__ref_cmp(&refs[nr - 1],
							    &es[i].ref) != 0) {
						refs[nr++] = es[i].ref;
						bytes += 64 + es[i].ref.len;
					}
					ev[ne] = es[i].ev;
					ev[ne++].field = (uint32_t)(nr - 1);
					i++;
				}
				/* Keep every event of the last field in this
				 * chunk. */
				while (i < c.n &&
				       tenant__ref_cmp(&refs[nr - 1],
						       &es[i].ref) == 0) {
					ev[ne] = es[i].ev;
					ev[ne++].field = (uint32_t)(nr - 1);
					i++;
				}
				complete &= tenant__send_chunk(t, p, h, refs,
							       nr, ev, ne);
			}
		}
		mesh_free(t->a, es);
		mesh_free(t->a, refs);
		mesh_free(t->a, ev);
	}
	/* No closing "whole context" part: every dot has an index entry, so
	 * the parts carry all the asker lacks, each claiming only its own.
	 * A part that could not be built (or applied there) leaves its dots
	 * unclaimed, and the next round asks again. */
	if (!complete || partial)
		t->st.ae_partial++;
	for (size_t i = 0; i < c.n; i++)
		mesh_free(t->a, (void *)c.refs[i].key);
	mesh_free(t->a, c.refs);
	mesh_free(t->a, c.ev);
	crdt_cc_free(have);
}

/* Whether @a has seen every dot of @b. */
static bool
tenant__cc_covers(const struct crdt_cc *a, const struct crdt_cc *b)
{
	size_t nvv = crdt_cc_vv_count(b), ncl = crdt_cc_cloud_size(b);
	for (size_t i = 0; i < nvv; i++) {
		struct crdt_dot d;
		crdt_cc_vv_at(b, i, &d);
		if (crdt_cc_vv(a, d.replica) >= d.counter)
			continue;
		/* The rest of b's run may sit in a's cloud: check each. */
		for (uint64_t c = crdt_cc_vv(a, d.replica) + 1; c <= d.counter;
		     c++) {
			struct crdt_dot x = {d.replica, c};
			if (!crdt_cc_contains(a, &x))
				return false;
		}
	}
	for (size_t i = 0; i < ncl; i++) {
		struct crdt_dot d;
		crdt_cc_cloud_at(b, i, &d);
		if (!crdt_cc_contains(a, &d))
			return false;
	}
	return true;
}

/* Handoff: a tenant we hold but no longer replicate. */
static void
tenant__recv_handoff(struct tenant *t, struct tenant__peer *p,
		     const Tenant__Frame *f)
{
	for (size_t i = 0; i < f->n_handoff; i++) {
		const Tenant__TenantDigest *td = f->handoff[i];
		if (!tenant__id_ok(td->tenant)) {
			t->st.drop_decode++;
			continue;
		}
		/* Covered: we have seen every operation the old holder has
		 * (we may have more: new writes come to us, not to it). */
		struct tenant__held *h = tenant__find(t, td->tenant);
		struct crdt_cc *theirs = NULL;
		bool covers = false;
		if (h != NULL && h->digest == td->digest) {
			covers = true;
		} else if (h != NULL && td->ctx.len > 0 &&
			   crdt_cc_decode(t->a, td->ctx.data, td->ctx.len,
					  &theirs) == 0) {
			covers = tenant__cc_covers(h->cc, theirs);
		}
		crdt_cc_free(theirs);
		if (!covers)
			tenant__send_pull(t, p, td->tenant);
		Tenant__TenantDigest r = TENANT__TENANT_DIGEST__INIT;
		r.tenant = td->tenant;
		r.digest = h != NULL ? h->digest : 0;
		r.covers = covers;
		tenant__append(t, p, 12, &r.base);
	}
	for (size_t i = 0; i < f->n_handoff_reply; i++) {
		const Tenant__TenantDigest *td = f->handoff_reply[i];
		if (!tenant__id_ok(td->tenant))
			continue;
		struct tenant__held *h = tenant__find(t, td->tenant);
		if (h == NULL || h->is_replica)
			continue;
		if (td->covers)
			tenant__mark_same(h, p->name);
		else
			tenant__mark_differs(h, p->name);
	}
}

/* A follower's digest of the system tenant: serve it what it lacks, pull
 * what it has and we do not (it may have been a replica before). */
static void
tenant__recv_follow(struct tenant *t, struct tenant__peer *p,
		    const Tenant__Frame *f)
{
	for (size_t i = 0; i < f->n_follow; i++) {
		const Tenant__TenantDigest *td = f->follow[i];
		struct tenant__held *h = NULL;
		if (td->tenant == NULL || !tenant__is_system(td->tenant) ||
		    (h = tenant__find(t, td->tenant)) == NULL)
			continue;
		if (h->digest == td->digest)
			continue;
		struct crdt_cc *theirs = NULL;
		if (td->ctx.len > 0 &&
		    crdt_cc_decode(t->a, td->ctx.data, td->ctx.len, &theirs) !=
			0) {
			t->st.drop_decode++;
			continue;
		}
		if (theirs != NULL && !tenant__cc_covers(h->cc, theirs))
			tenant__send_pull(t, p, td->tenant);
		if (theirs == NULL || !tenant__cc_covers(theirs, h->cc)) {
			Tenant__Pull pl = TENANT__PULL__INIT;
			pl.tenant = td->tenant;
			pl.ctx = td->ctx;
			pl.have = theirs != NULL;
			t->st.follow_served++;
			tenant__serve_pull(t, p, &pl);
		}
		crdt_cc_free(theirs);
	}
}

static int
tenant__recv(struct tenant *t, uint64_t now_ms, const uint8_t *data, size_t len)
{
	t->st.frames_recv++;
	if (len > TENANT__FRAME_MAX) {
		t->st.drop_decode++;
		return MESH_EDECODE;
	}
	struct tenant__budget b;
	tenant__budget_init(&b, t->a, len);
	Tenant__Frame *f = tenant__frame__unpack(&b.pc, len, data);
	if (f == NULL) {
		t->st.drop_decode++;
		return MESH_EDECODE;
	}
	int rc = 0;
	if (f->protocol_version >> 8 != TENANT_PROTOCOL_MAJOR) {
		t->st.drop_version++;
		MESH_LOG(t->env, MESH_LOG_DEBUG,
			 "tenant: dropped a frame of protocol %u.%u",
			 f->protocol_version >> 8, f->protocol_version & 0xff);
		rc = MESH_EVERSION;
		goto out;
	}
	if (!mesh_name_is_valid(f->from, SWIM_NAME_MAX) ||
	    strcmp(f->from, t->cfg.name) == 0) {
		t->st.drop_decode++;
		rc = MESH_EDECODE;
		goto out;
	}
	/* Only members talk to us: a name from nowhere would cost a peer
	 * entry for good. */
	if (t->ring != NULL && ring_find(t->ring, f->from) < 0) {
		t->st.drop_stranger++;
		rc = MESH_ESTATE;
		goto out;
	}
	struct tenant__peer *p = tenant__peer(t, f->from);
	if (p == NULL) {
		rc = MESH_ENOMEM;
		goto out;
	}
	if (f->n_deltas > 0)
		p->last_delta_ms = now_ms;
	for (size_t i = 0; i < f->n_deltas; i++) {
		const Tenant__Delta *d = f->deltas[i];
		t->st.deltas_recv++;
		int arc = tenant__apply(t, d);
		if (arc == MESH_EDECODE) {
			t->st.drop_bad_delta++;
			MESH_LOG(t->env, MESH_LOG_DEBUG,
				 "tenant: bad delta from %s", f->from);
		}
		if (d->ack_id != 0 && (d->urgent || arc != 0)) {
			Tenant__DeltaAck a = TENANT__DELTA_ACK__INIT;
			a.ack_id = d->ack_id;
			a.rc = arc;
			tenant__append(t, p, 4, &a.base);
		} else if (d->ack_id != 0) {
			if (p->lazy_ack == 0)
				p->lazy_since_ms = now_ms;
			if (d->ack_id > p->lazy_ack)
				p->lazy_ack = d->ack_id;
		}
	}
	for (size_t i = 0; i < f->n_acks; i++) {
		const Tenant__DeltaAck *a = f->acks[i];
		tenant__unacked_pop(p, a->ack_id);
		struct tenant__pending *w =
		    tenant__pending_find(t, TENANT__P_WRITE, a->ack_id);
		if (w == NULL || a->rc != 0)
			continue;
		/* Only the write's replicas count, each once. */
		bool dup = false, owner = false;
		for (unsigned k = 0; k < w->acks; k++)
			dup |= strcmp(w->acked[k], f->from) == 0;
		for (unsigned k = 0; k < w->nreplicas; k++)
			owner |= strcmp(w->replicas[k], f->from) == 0;
		if (dup || !owner || w->acks == RING_REPLICAS_MAX)
			continue;
		strcpy(w->acked[w->acks++], f->from);
		if (w->acks >= w->needed) {
			/* Committed in an earlier batch: this answer stands
			 * whatever becomes of the open one. */
			t->answer_settled = w->id <= t->batch_first_id;
			tenant__write_answer(t, w, 0, NULL);
			t->answer_settled = false;
			tenant__pending_del(t, w);
		}
	}
	for (size_t i = 0; i < f->n_requests; i++) {
		const Tenant__Request *rq = f->requests[i];
		struct tenant__origin o = {false, rq->id, ""};
		strcpy(o.peer, f->from);
		struct tenant__op op;
		tenant__op_from_request(rq, &op);
		tenant__run(t, now_ms, &o, &op);
	}
	for (size_t i = 0; i < f->n_replies; i++) {
		Tenant__Reply *r = f->replies[i];
		struct tenant__pending *w =
		    tenant__pending_find(t, TENANT__P_FORWARD, r->id);
		if (w == NULL)
			continue;
		/* A replica that does not hold the tenant yet did nothing:
		 * another may have it. */
		if (r->not_held && tenant__forward_send(t, w)) {
			w->deadline_ms = now_ms + t->cfg.request_timeout_ms;
			continue;
		}
		/* No new replica has it yet, but we do (we are handing it
		 * over): serve it here; handoff carries any write on. */
		struct tenant__held *h = tenant__find(t, w->tenant);
		if (r->not_held && h != NULL && tenant__pubkey(t, h) == 0) {
			/* Running it may add pending entries (and move the
			 * array): take it out first. */
			struct tenant__pending copy = *w;
			w->req = NULL;
			tenant__pending_del(t, w);
			bool ran = tenant__run_packed(t, now_ms, &copy);
			if (!ran)
				tenant__answer(t, &copy.origin, r);
			mesh_free(t->a, copy.req);
			continue;
		}
		tenant__answer(t, &w->origin, r);
		tenant__pending_del(t, w);
	}
	if (f->pair != NULL) {
		uint32_t n;
		uint64_t ours = tenant__pair_digest(t, f->from, &n);
		if (ours == f->pair->digest && n == f->pair->tenants) {
			for (size_t i = 0; i < t->nheld; i++)
				if (tenant__shared(t->held[i], f->from))
					tenant__mark_same(t->held[i], f->from);
			/* Equal: everything we sent it is there. */
			p->un_count = 0;
		} else {
			t->st.ae_digest_mismatch++;
			tenant__send_digests(t, p, false);
		}
	}
	if (f->n_digests > 0 || f->digests_follow || f->digests_reply)
		tenant__recv_digests(t, now_ms, p, f);
	for (size_t i = 0; i < f->n_pulls && i < TENANT__PULLS_PER_FRAME; i++)
		tenant__serve_pull(t, p, f->pulls[i]);
	if (f->n_handoff > 0 || f->n_handoff_reply > 0)
		tenant__recv_handoff(t, p, f);
	if (f->n_follow > 0)
		tenant__recv_follow(t, p, f);
out:
	tenant__frame__free_unpacked(f, &b.pc);
	return rc;
}

int
tenant_recv(struct tenant *t, uint64_t now_ms, const uint8_t *data, size_t len)
{
	tenant__enter(t);
	int rc = tenant__recv(t, now_ms, data, len);
	tenant__leave(t, now_ms);
	return rc;
}

/* ---- timers ----------------------------------------------------------------
 */

static void
tenant__timeouts(struct tenant *t, uint64_t now_ms)
{
	if (t->npending == 0 || now_ms < t->pending_min_ms)
		return;
	uint64_t min = UINT64_MAX;
	for (size_t i = 0; i < t->npending;) {
		struct tenant__pending *p = &t->pending[i];
		if (now_ms < p->deadline_ms) {
			if (p->deadline_ms < min)
				min = p->deadline_ms;
			i++;
			continue;
		}
		t->st.timeouts++;
		if (p->kind == TENANT__P_WRITE) {
			tenant__write_answer(
			    t, p, MESH_ETIMEDOUT,
			    "not enough replicas acknowledged in time; the "
			    "write is committed on those listed and will "
			    "reach the others");
		} else if (p->is_read && tenant__forward_send(t, p)) {
			p->deadline_ms = now_ms + t->cfg.request_timeout_ms;
			if (p->deadline_ms < min)
				min = p->deadline_ms;
			i++;
			continue;
		} else {
			tenant__fail(t, &p->origin, MESH_ETIMEDOUT,
				     p->is_read
					 ? "no replica answered"
					 : "no replica answered; the "
					   "write may have been applied");
		}
		tenant__pending_del(t, p);
	}
	/* Deadlines moved later elsewhere keep this conservative: an early
	 * wake-up only scans again. */
	t->pending_min_ms = min;
}

/* Every node holds the system tenant; a store that cannot take its first
 * record now (disk full) gets asked again at the next round. */
static void
tenant__hold_system(struct tenant *t)
{
	struct tenant__held *h;
	if (tenant__find(t, TENANT_SYSTEM) == NULL &&
	    tenant__hold(t, TENANT_SYSTEM, &h) != 0)
		t->st.store_errors++;
}

/* Appends our digest and context of @h to @p's frame as field @field: a
 * handoff offer (11) or a follow offer (14). */
static void
tenant__offer(struct tenant *t, struct tenant__peer *p,
	      const struct tenant__held *h, unsigned field)
{
	Tenant__TenantDigest td = TENANT__TENANT_DIGEST__INIT;
	td.tenant = (char *)h->id;
	td.digest = h->digest;
	td.ctx.data = h->cc_buf;
	td.ctx.len = h->cc_len;
	tenant__append(t, p, field, &td.base);
}

/* Offers our copy of the system tenant to @to (tenant__recv_follow()). */
static void
tenant__send_follow(struct tenant *t, const struct tenant__held *h,
		    const char *to)
{
	struct tenant__peer *p = tenant__peer(t, to);
	if (p == NULL)
		return;
	tenant__offer(t, p, h, 14);
	t->st.follow_sent++;
}

static void
tenant__anti_entropy(struct tenant *t, uint64_t now_ms)
{
	t->st.ae_rounds++;
	tenant__hold_system(t);
	for (size_t i = 0; i < t->npeers; i++)
		t->peers[i]->shared = false;
	for (size_t i = 0; i < t->nheld; i++) {
		struct tenant__held *h = t->held[i];
		if (tenant__is_system(h->id) &&
		    ++t->follow_round >= t->cfg.follow_rounds) {
			/* Every node asks one other owner every
			 * follow_rounds rounds, in turn; replicas too: two
			 * nodes whose views differ on who replicates it (one
			 * damped by the others, say, which learns it from
			 * here) still converge. */
			const char *to = NULL;
			t->follow_round = 0;
			for (unsigned k = 0; k < h->nowners && to == NULL;
			     k++) {
				const char *o =
				    h->owners[t->follow_rr++ % h->nowners];
				if (strcmp(o, t->cfg.name) != 0)
					to = o;
			}
			if (to != NULL)
				tenant__send_follow(t, h, to);
		}
		/* The system tenant is kept in step by following alone,
		 * replicas included: every node holds it, so pair digests
		 * among its replicas would only repeat what follow offers
		 * (and, in meshd, SWIM acks) already compare. */
		if (tenant__is_system(h->id))
			continue;
		for (unsigned k = 0; k < h->nowners; k++) {
			if (strcmp(h->owners[k], t->cfg.name) == 0)
				continue;
			struct tenant__peer *p = tenant__peer(t, h->owners[k]);
			if (p == NULL)
				continue;
			if (h->is_replica) {
				p->shared = true;
				continue;
			}
			/* Handoff: offer our context to each new owner. */
			tenant__offer(t, p, h, 11);
		}
	}
	for (size_t i = 0; i < t->npeers; i++) {
		struct tenant__peer *p = t->peers[i];
		if (!p->shared)
			continue;
		Tenant__PairDigest pd = TENANT__PAIR_DIGEST__INIT;
		pd.digest = tenant__pair_digest(t, p->name, &pd.tenants);
		tenant__append(t, p, 7, &pd.base);
	}
	(void)now_ms;
}

/* Drops tenants whose every new owner has them. */
static void
tenant__handoff(struct tenant *t)
{
	for (size_t i = 0; i < t->nheld;) {
		struct tenant__held *h = t->held[i];
		uint32_t all = h->nowners ? (1u << h->nowners) - 1 : 0;
		if (h->is_replica || h->nowners == 0 ||
		    tenant__is_system(h->id) || (h->owner_same & all) != all) {
			i++;
			continue;
		}
		int rc = tenant__drop(t->env, &t->cfg.kv, h);
		if (rc != 0) {
			t->st.store_errors++;
			i++;
			continue;
		}
		MESH_LOG(t->env, MESH_LOG_INFO,
			 "tenant: handed %s over to its replicas", h->id);
		t->st.handoffs_done++;
		tenant__held_remove(t, h);
	}
}

void
tenant_frame_lost(struct tenant *t, uint64_t now_ms, const char *name,
		  uint64_t seq)
{
	tenant__enter(t);
	for (size_t i = 0; i < t->npending;) {
		struct tenant__pending *p = &t->pending[i];
		if (p->kind != TENANT__P_FORWARD || p->seq != seq ||
		    p->tries == 0 ||
		    strcmp(p->replicas[p->tries - 1], name) != 0) {
			i++;
			continue;
		}
		if (tenant__forward_send(t, p)) {
			p->deadline_ms = now_ms + t->cfg.request_timeout_ms;
			i++;
			continue;
		}
		tenant__fail(t, &p->origin, MESH_ETIMEDOUT,
			     "no replica could be reached");
		tenant__pending_del(t, p);
	}
	tenant__leave(t, now_ms);
}

void
tenant_tick(struct tenant *t, uint64_t now_ms)
{
	tenant__enter(t);
	for (size_t i = 0; i < t->npeers; i++) {
		struct tenant__peer *p = t->peers[i];
		if (p->lazy_ack != 0 &&
		    now_ms >= p->lazy_since_ms + TENANT__LAZY_ACK_MS) {
			Tenant__DeltaAck a = TENANT__DELTA_ACK__INIT;
			a.ack_id = p->lazy_ack;
			p->lazy_ack = 0;
			tenant__append(t, p, 4, &a.base);
		}
	}
	tenant__timeouts(t, now_ms);
	if (now_ms >= t->next_ae_ms) {
		tenant__handoff(t);
		tenant__anti_entropy(t, now_ms);
		/* Jitter of +-25% keeps nodes from beating in step. */
		uint32_t base = t->cfg.anti_entropy_ms;
		t->next_ae_ms = now_ms + base * 3 / 4 +
				mesh_rand_below(&t->rng, base / 2 + 1);
	}
	tenant__leave(t, now_ms);
}

uint64_t
tenant_next_deadline(const struct tenant *t)
{
	uint64_t next = t->next_ae_ms;
	for (size_t i = 0; i < t->npeers; i++)
		if (t->peers[i]->lazy_ack != 0 &&
		    t->peers[i]->lazy_since_ms + TENANT__LAZY_ACK_MS < next)
			next = t->peers[i]->lazy_since_ms + TENANT__LAZY_ACK_MS;
	if (t->npending > 0 && t->pending_min_ms < next)
		next = t->pending_min_ms;
	return next;
}

void
tenant_set_view(struct tenant *t, uint64_t now_ms, const struct ring *ring,
		const struct swim *s)
{
	tenant__enter(t);
	t->ring = ring;
	t->swim = s;
	for (size_t i = 0; i < t->nheld; i++)
		tenant__held_view(t, t->held[i]);
	tenant__leave(t, now_ms);
}

/* ---- driver side -----------------------------------------------------------
 */

bool
tenant_poll_output(struct tenant *t, struct tenant_output *out)
{
	if (t->out_next >= t->out_mark)
		return false;
	const struct tenant__outq *o = &t->out[t->out_next++];
	out->to = o->to;
	out->addr = o->addr;
	out->data = o->data;
	out->len = o->len;
	out->seq = o->seq;
	return true;
}

bool
tenant_poll_reply(struct tenant *t, struct tenant_reply *out)
{
	if (t->rep_next >= t->rep_mark)
		return false;
	if (t->cur != NULL) {
		tenant__reply__free_unpacked(t->cur, &t->pa);
		t->cur = NULL;
	}
	mesh_free(t->a, t->cur_values);
	t->cur_values = NULL;
	size_t i = t->rep_next++;
	Tenant__Reply *r =
	    tenant__reply__unpack(&t->pa, t->rep[i].len, t->rep[i].data);
	memset(out, 0, sizeof(*out));
	if (r == NULL) {
		out->rc = MESH_ENOMEM;
		out->error = "out of memory";
		return true;
	}
	t->cur = r;
	out->id = r->id;
	out->rc = r->rc;
	out->error = r->error;
	out->acks = r->acks;
	size_t na = r->n_acked_by < RING_REPLICAS_MAX ? r->n_acked_by
						      : RING_REPLICAS_MAX;
	size_t nr = r->n_replicas < RING_REPLICAS_MAX ? r->n_replicas
						      : RING_REPLICAS_MAX;
	for (size_t k = 0; k < na; k++)
		t->cur_names[0][k] = r->acked_by[k];
	for (size_t k = 0; k < nr; k++)
		t->cur_names[1][k] = r->replicas[k];
	out->acked_by = t->cur_names[0];
	if (out->acks > na)
		out->acks = (unsigned)na;
	out->replicas = t->cur_names[1];
	out->nreplicas = (unsigned)nr;
	out->kind = (enum crdt_kind)r->kind;
	if (r->n_values > 0) {
		t->cur_values =
		    mesh_calloc(t->a, r->n_values, sizeof(*t->cur_values));
		if (t->cur_values != NULL) {
			for (size_t k = 0; k < r->n_values; k++)
				t->cur_values[k] = (struct tenant_bytes){
				    r->values[k].data, r->values[k].len};
			out->values = t->cur_values;
			out->nvalues = r->n_values;
		}
	}
	out->counter = r->counter;
	out->digest = r->digest;
	out->served_by = r->served_by;
	return true;
}

bool
tenant_poll_change(struct tenant *t, struct tenant_change *out)
{
	mesh_free(t->a, t->chg_cur);
	t->chg_cur = NULL;
	if (t->chg_head == t->nchg) {
		t->chg_head = t->nchg = 0;
		return false;
	}
	struct tenant_bytes *c = &t->chg[t->chg_head++];
	t->chg_cur = (uint8_t *)c->data;
	out->key = c->data;
	out->len = c->len;
	return true;
}

uint32_t
tenant_system_digest(const struct tenant *t)
{
	const struct tenant__held *h = tenant__find(t, TENANT_SYSTEM);
	uint32_t d = h != NULL ? (uint32_t)(h->digest ^ h->digest >> 32) : 0;
	return d != 0 ? d : 1;
}

void
tenant_follow(struct tenant *t, uint64_t now_ms, const char *peer)
{
	struct tenant__held *h = tenant__find(t, TENANT_SYSTEM);
	if (h == NULL || peer == NULL || strcmp(peer, t->cfg.name) == 0)
		return;
	if (t->st.follow_asked > 0 &&
	    now_ms < t->follow_asked_ms + TENANT_FOLLOW_GAP_MS) {
		t->st.follow_skipped++;
		return;
	}
	tenant__enter(t);
	t->follow_asked_ms = now_ms;
	t->st.follow_asked++;
	tenant__send_follow(t, h, peer);
	tenant__leave(t, now_ms);
}

int
tenant_system_read(struct tenant *t, const uint8_t *key, size_t len,
		   tenant_visit_fn *fn, void *ctx)
{
	struct tenant__held *h = tenant__find(t, TENANT_SYSTEM);
	if (h == NULL)
		return MESH_ENOENT;
	if (len < 1 || len > TENANT_KEY_MAX || key[0] == 0)
		return MESH_EINVAL;
	/* Sorted by kind: LWW before ORMAP. */
	struct tenant__ref refs[2] = {{CRDT_LWW, key, len},
				      {CRDT_ORMAP, key, len}};
	struct tenant__loaded ld;
	struct crdt_ormap *m;
	int rc = tenant__load(t->env, &t->cfg.kv, h, refs, 2, &ld, &m);
	if (rc != 0)
		return rc;
	struct crdt_key pv[2] = {{key, len}, {NULL, 0}};
	const void *v;
	size_t vlen;
	rc = MESH_ENOENT;
	if (crdt_ormap_lww_get(m, pv, 1, &v, &vlen) == 0) {
		fn(ctx, NULL, 0, v, vlen);
		rc = 0;
	}
	size_t n = crdt_ormap_has(m, pv, 1, CRDT_ORMAP)
		       ? crdt_ormap_count(m, pv, 1)
		       : 0;
	for (size_t i = 0; i < n; i++) {
		enum crdt_kind kind;
		const void *sub;
		size_t sublen;
		crdt_ormap_field(m, pv, 1, i, &kind, &sub, &sublen);
		pv[1] = (struct crdt_key){sub, sublen};
		if (kind == CRDT_LWW &&
		    crdt_ormap_lww_get(m, pv, 2, &v, &vlen) == 0)
			fn(ctx, sub, sublen, v, vlen);
		rc = 0;
	}
	crdt_ormap_free(m);
	tenant__loaded_free(t->env, &ld);
	return rc;
}

struct tenant__sys_scan {
	size_t skip; /* 'f', length byte, id, kind */
	const char *prefix;
	void (*fn)(void *, const uint8_t *, size_t);
	void *ctx;
};

static int
tenant__sys_scan_visit(void *arg, const void *key, size_t klen, const void *val,
		       size_t vlen)
{
	struct tenant__sys_scan *c = arg;
	(void)val;
	(void)vlen;
	const uint8_t *k = (const uint8_t *)key + c->skip;
	size_t len = klen > c->skip ? klen - c->skip : 0;
	size_t plen = strlen(c->prefix);
	if (len >= plen && memcmp(k, c->prefix, plen) == 0)
		c->fn(c->ctx, k, len);
	return 0;
}

int
tenant_system_scan(struct tenant *t, const char *prefix,
		   void (*fn)(void *ctx, const uint8_t *key, size_t len),
		   void *ctx)
{
	uint8_t pfx[TENANT_KV_KEY_MAX];
	size_t plen = tenant__key(pfx, TENANT__TAG_FIELD, TENANT_SYSTEM,
				  strlen(TENANT_SYSTEM), NULL);
	struct tenant__sys_scan c = {plen + 1, prefix, fn, ctx};
	return t->cfg.kv.scan(t->cfg.kv.ctx, pfx, plen, NULL, 0,
			      tenant__sys_scan_visit, &c);
}

const struct tenant_stats *
tenant_stats(const struct tenant *t)
{
	return &t->st;
}

size_t
tenant_count(const struct tenant *t)
{
	return t->nheld - (tenant__find(t, TENANT_SYSTEM) != NULL);
}

int
tenant_info_at(const struct tenant *t, uint64_t now_ms, size_t i,
	       struct tenant_info *out)
{
	/* Client tenants only: the system tenant is not counted here. */
	size_t sys = tenant__held_lower(t, TENANT_SYSTEM);
	if (i >= sys && tenant__find(t, TENANT_SYSTEM) != NULL)
		i++;
	if (i >= t->nheld)
		return MESH_ENOENT;
	const struct tenant__held *h = t->held[i];
	memset(out, 0, sizeof(*out));
	out->tenant = h->id;
	out->keys = h->keys;
	out->bytes = h->bytes;
	out->digest = h->digest;
	out->replica = h->is_replica;
	for (unsigned k = 0; k < h->nowners; k++) {
		if (strcmp(h->owners[k], t->cfg.name) == 0)
			continue;
		if (h->owner_diff & (1u << k))
			out->behind++;
	}
	uint64_t oldest = now_ms;
	for (size_t k = 0; k < t->npeers; k++) {
		const struct tenant__peer *p = t->peers[k];
		if (p->un_count > 0 && p->un_ms[p->un_head] < oldest &&
		    tenant__owned_by(h, p->name, NULL))
			oldest = p->un_ms[p->un_head];
	}
	out->oldest_unacked_ms = now_ms - oldest;
	return 0;
}

/* ---- life cycle ------------------------------------------------------------
 */

static int
tenant__load_visit(void *arg, const void *key, size_t klen, const void *val,
		   size_t vlen)
{
	struct tenant *t = arg;
	struct tenant__held *h;
	int rc =
	    tenant__held_load(t->env, &t->cfg.kv, key, klen, val, vlen, &h);
	if (rc != 0)
		return rc;
	/* Keys come sorted by (length, id): not strcmp order. */
	if ((rc = tenant__held_insert(t, h)) != 0)
		tenant__held_free(t->env, h);
	return rc;
}

/* Reads the tenants held again from the store (after a failed batch). */
static void
tenant__reload(struct tenant *t)
{
	for (size_t i = 0; i < t->nheld; i++)
		tenant__held_free(t->env, t->held[i]);
	t->nheld = 0;
	uint8_t prefix[1] = {TENANT__TAG_META};
	int rc = t->cfg.kv.scan(t->cfg.kv.ctx, prefix, 1, NULL, 0,
				tenant__load_visit, t);
	if (rc != 0)
		MESH_LOG(t->env, MESH_LOG_ERROR,
			 "tenant: cannot read the tenants held again: %s",
			 mesh_strerror(rc));
	tenant__hold_system(t);
}

int
tenant_new(const struct tenant_config *cfg, const struct mesh_env *env,
	   uint64_t now_ms, struct tenant **out)
{
	if (tenant_config_check(cfg, NULL) != 0)
		return MESH_EINVAL;
	struct tenant *t = mesh_calloc(env->alloc, 1, sizeof(*t));
	if (t == NULL)
		return MESH_ENOMEM;
	t->cfg = *cfg;
	t->env = env;
	t->a = env->alloc;
	t->pa = (ProtobufCAllocator){tenant__pb_alloc, tenant__pb_free,
				     (void *)t->a};
	mesh_rand_seed(&t->rng, cfg->seed);
	crdt_hlc_init(&t->clock, cfg->replica_id, 0);
	/* A small cache: 64 capabilities in use at once per node. */
	t->capcache =
	    mesh_calloc(env->alloc, TENANT__CAP_CACHE, sizeof(*t->capcache));
	t->next_ae_ms =
	    now_ms + mesh_rand_below(&t->rng, cfg->anti_entropy_ms + 1);
	uint8_t prefix[1] = {TENANT__TAG_META};
	int rc = cfg->kv.scan(cfg->kv.ctx, prefix, 1, NULL, 0,
			      tenant__load_visit, t);
	if (rc != 0) {
		MESH_LOG(env, MESH_LOG_ERROR,
			 "tenant: cannot load the tenants held: %s",
			 mesh_strerror(rc));
		tenant_free(t);
		return rc;
	}
	tenant__hold_system(t);
	*out = t;
	return 0;
}

void
tenant_free(struct tenant *t)
{
	if (t == NULL)
		return;
	if (t->batch_open && t->cfg.kv.batch_end != NULL)
		t->cfg.kv.batch_end(t->cfg.kv.ctx, false);
	tenant__release(t);
	for (size_t i = 0; i < t->nheld; i++)
		tenant__held_free(t->env, t->held[i]);
	mesh_free(t->a, t->held);
	for (size_t i = 0; i < t->npeers; i++) {
		mesh_free(t->a, t->peers[i]->buf);
		mesh_free(t->a, t->peers[i]->un_id);
		mesh_free(t->a, t->peers[i]->un_ms);
		mesh_free(t->a, t->peers[i]);
	}
	mesh_free(t->a, t->peers);
	while (t->npending > 0)
		tenant__pending_del(t, &t->pending[t->npending - 1]);
	mesh_free(t->a, t->pending);
	mesh_free(t->a, t->pidx);
	for (size_t i = 0; i < t->nout; i++)
		mesh_free(t->a, t->out[i].data);
	mesh_free(t->a, t->out);
	for (size_t i = 0; i < t->nrep; i++)
		mesh_free(t->a, t->rep[i].data);
	mesh_free(t->a, t->rep);
	mesh_free(t->a, t->capcache);
	for (size_t i = t->chg_head; i < t->nchg; i++)
		mesh_free(t->a, (void *)t->chg[i].data);
	mesh_free(t->a, t->chg);
	mesh_free(t->a, t->chg_cur);
	mesh_free(t->a, t);
}
