/*
 * pack.c - desired packs placed on the ring, and the hook state machine of
 * the packs owned here. See pack.h; docs/packs.md has the whole story.
 *
 * Memory: one 72-byte entry, the name and two index slots per pack, owners
 * included (as ids of an intern table of node names, so that they survive
 * the ring they were computed on); scratch for a placement is freed after
 * it. Only the packs owned here carry more (struct pack__local).
 * docs/pack-bench.md measures it.
 */
#include "pack.h"

#include "mesh_err.h"
#include "mesh_hash.h"
#include "mesh_sort.h"
#include "mesh_text.h"
#include "pack.pb-c.h"
#include "ring_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PACK__NONE UINT32_MAX
#define PACK__NO_DOMAIN (UINT32_MAX - 1) /* names no domain of the ring */

struct pack__entry {
	uint64_t hash;
	char *name; /* NULL: deleted, dropped at the next sort */
	uint32_t mem;
	uint32_t zone, region;		 /* intern ids, PACK__NONE: anywhere */
	uint32_t reporter;		 /* node whose report set @reported */
	uint32_t own[RING_REPLICAS_MAX]; /* node ids, PACK__NONE: empty */
	uint8_t replicas;
	uint8_t fit;	  /* enum ring_fit of the last placement */
	uint8_t reported; /* enum pack_state reported by @reporter */
	uint8_t pad;
};

/* A pack owned here, or being stopped here. */
struct pack__local {
	char *name;
	enum pack_state state;
	bool want; /* owned now: run it */
	bool busy; /* a hook run is out */
	enum pack_action running;
	uint64_t hook_id;
	uint64_t since_ms; /* monotonic: when @state began */
	uint64_t next_ms;  /* check, retry or stop again; 0: nothing due */
	int last_exit;
	unsigned attempts;
	bool adopted; /* from an earlier life: judged at the next placement */
	char detail[PACK_DETAIL_MAX + 1];
};

struct pack__hookq {
	uint64_t id;
	enum pack_action action;
	char *name;
};

struct pack__event {
	enum pack_event_kind kind;
	enum pack_state state;
	char *name, *node;
	uint8_t *data;
	size_t len;
};

/* Interned strings: node names, zones, regions. Never shrinks; bounded by
 * the members and domains ever seen. */
struct pack__intern {
	char **s;
	size_t n, cap;
	uint32_t *ix; /* open addressing: id + 1, 0 empty; size a power of 2 */
	size_t ixcap;
};

struct pack {
	struct pack_config cfg;
	const struct mesh_env *env;
	const struct mesh_allocator *a;
	struct pack__entry *e; /* sorted by (hash, name) when !unsorted */
	size_t n, cap, ndead;
	bool unsorted;
	/* Entries by name: open addressing on the pack hash, entry index + 1
	 * (0: empty), at most half full; rebuilt whenever entries move. */
	uint32_t *ix;
	size_t ixcap;
	struct pack__intern names;
	uint32_t self;	/* our intern id */
	uint8_t *alive; /* by intern id: eligible in the last ring */
	size_t nalive;
	struct pack__local **loc; /* sorted by name */
	size_t nloc, caploc;
	struct pack__hookq *hq;
	size_t nhq, caphq, hq_head;
	char *hq_cur;
	struct pack__event *evq;
	size_t nev, capev, ev_head;
	struct pack__event ev_cur;
	uint64_t next_hook_id;
	bool placed_once;
	struct pack_counts st;
	char why[160];
};

/* ---- small helpers ------------------------------------------------------ */

static char *
pack__strdup(const struct mesh_allocator *a, const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = mesh_malloc(a, n);
	if (d != NULL)
		memcpy(d, s, n);
	return d;
}

static uint64_t
pack__hash_name(const char *name)
{
	struct ring_config rc;
	ring_config_default(&rc);
	return ring__siphash(rc.key, name, strlen(name));
}

bool
pack_name_ok(const char *name)
{
	if (name == NULL)
		return false;
	size_t n = strnlen(name, PACK_NAME_MAX + 1);
	if (n == 0 || n > PACK_NAME_MAX)
		return false;
	/* Printable ASCII without '/' (hooks make file names of it) and
	 * not starting with '.' or '-' (no hidden files, no options). */
	if (name[0] == '.' || name[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (name[i] < 0x21 || name[i] > 0x7e || name[i] == '/')
			return false;
	return true;
}

const char *
pack_state_name(enum pack_state s)
{
	switch (s) {
	case PACK_PLACED:
		return "placed";
	case PACK_STARTING:
		return "starting";
	case PACK_RUNNING:
		return "running";
	case PACK_FAILED:
		return "failed";
	case PACK_STOPPING:
		return "stopping";
	default:
		return "unknown";
	}
}

/* ---- open addressing ---------------------------------------------------- */

/* Puts @id + 1 at the first free slot from @hash in @ix (@cap a power of
 * two, never full): the one probe sequence both indexes below use. */
static void
pack__slot_put(uint32_t *ix, size_t cap, uint64_t hash, uint32_t id)
{
	size_t i = (size_t)hash & (cap - 1);
	while (ix[i] != 0)
		i = (i + 1) & (cap - 1);
	ix[i] = id + 1;
}

static uint64_t
pack__str_hash(const char *s)
{
	return mesh_hash_bytes(s, strlen(s), 7);
}

/* ---- intern table ------------------------------------------------------- */

static uint32_t
pack__intern_find(const struct pack__intern *t, const char *s, size_t *slot)
{
	if (t->ixcap == 0) {
		*slot = 0;
		return PACK__NONE;
	}
	size_t mask = t->ixcap - 1;
	size_t i = (size_t)pack__str_hash(s) & mask;
	while (t->ix[i] != 0) {
		if (strcmp(t->s[t->ix[i] - 1], s) == 0) {
			*slot = i;
			return t->ix[i] - 1;
		}
		i = (i + 1) & mask;
	}
	*slot = i;
	return PACK__NONE;
}

/* The id of @s, added when new; PACK__NONE when out of memory. */
static uint32_t
pack__intern(struct pack *pk, const char *s)
{
	struct pack__intern *t = &pk->names;
	size_t slot;
	uint32_t id = pack__intern_find(t, s, &slot);
	if (id != PACK__NONE)
		return id;
	if ((t->n + 1) * 2 > t->ixcap) {
		size_t ncap = t->ixcap ? t->ixcap * 2 : 64;
		uint32_t *ix = mesh_calloc(pk->a, ncap, sizeof(*ix));
		if (ix == NULL)
			return PACK__NONE;
		mesh_free(pk->a, t->ix);
		t->ix = ix;
		t->ixcap = ncap;
		for (size_t k = 0; k < t->n; k++)
			pack__slot_put(ix, ncap, pack__str_hash(t->s[k]),
				       (uint32_t)k);
		pack__intern_find(t, s, &slot);
	}
	char *copy = pack__strdup(pk->a, s);
	if (copy == NULL || mesh_grow(pk->a, (void **)&t->s, &t->cap, t->n + 1,
				      sizeof(*t->s)) != 0) {
		mesh_free(pk->a, copy);
		return PACK__NONE;
	}
	t->s[t->n] = copy;
	t->ix[slot] = (uint32_t)t->n + 1;
	return (uint32_t)t->n++;
}

static const char *
pack__str(const struct pack *pk, uint32_t id)
{
	return id < pk->names.n ? pk->names.s[id] : "";
}

/* ---- specs -------------------------------------------------------------- */

struct pack__spec_buf {
	Pack__Spec *msg;
};

void
pack_spec_release(void *buf)
{
	if (buf != NULL)
		pack__spec__free_unpacked(buf, NULL);
}

static const char *
pack__spec_check(const struct pack_spec *s)
{
	if (s->replicas < 1 || s->replicas > RING_REPLICAS_MAX)
		return "replicas must be 1..8";
	if (s->tenant != NULL && s->tenant[0] != 0 &&
	    !mesh_name_is_valid(s->tenant, 128))
		return "tenant must be 1..128 bytes of [A-Za-z0-9._-]";
	if ((s->zone != NULL &&
	     !mesh_text_is_printable(s->zone, RING_TAG_MAX, true)) ||
	    (s->region != NULL &&
	     !mesh_text_is_printable(s->region, RING_TAG_MAX, true)))
		return "zone and region must be 0..32 printable bytes";
	if (s->region != NULL && s->region[0] != 0 &&
	    (s->zone == NULL || s->zone[0] == 0))
		return "a region needs its zone";
	if (s->nlabels > PACK_LABELS_MAX)
		return "at most 32 labels";
	for (size_t i = 0; i < s->nlabels; i++) {
		const char *k = s->label_key[i], *v = s->label_value[i];
		if (k == NULL || v == NULL || k[0] == 0 ||
		    strlen(k) > PACK_LABEL_MAX || strlen(v) > PACK_LABEL_MAX)
			return "a label is KEY=VALUE, each 1..256 bytes";
		for (const char *c = k; *c; c++)
			if (!((*c >= 'A' && *c <= 'Z') ||
			      (*c >= 'a' && *c <= 'z') ||
			      (*c >= '0' && *c <= '9') || *c == '_'))
				return "label keys are [A-Za-z0-9_] (they "
				       "become environment variables)";
		for (size_t j = 0; j < i; j++)
			if (strcmp(s->label_key[j], k) == 0)
				return "a label key appears twice";
	}
	return NULL;
}

int
pack_spec_decode(const uint8_t *data, size_t len, struct pack_spec *out,
		 void **buf, const char **why)
{
	*buf = NULL;
	Pack__Spec *m = pack__spec__unpack(NULL, len, data);
	if (m == NULL) {
		if (why)
			*why = "not a pack spec";
		return MESH_EDECODE;
	}
	memset(out, 0, sizeof(*out));
	out->tenant = m->tenant;
	out->mem_mib = m->mem_mib;
	out->replicas = m->replicas == 0 ? 1 : m->replicas;
	out->zone = m->zone;
	out->region = m->region;
	out->created_unix_ms = m->created_unix_ms;
	const char *w = NULL;
	if (m->n_labels > PACK_LABELS_MAX) {
		w = "at most 32 labels";
	} else {
		out->nlabels = m->n_labels;
		for (size_t i = 0; i < m->n_labels; i++) {
			out->label_key[i] = m->labels[i]->key;
			out->label_value[i] = m->labels[i]->value;
		}
		w = pack__spec_check(out);
	}
	if (w != NULL) {
		if (why)
			*why = w;
		pack__spec__free_unpacked(m, NULL);
		return MESH_EINVAL;
	}
	*buf = m;
	return 0;
}

int
pack_spec_encode(const struct pack_spec *spec, uint8_t **out, size_t *len,
		 const char **why)
{
	const char *w = pack__spec_check(spec);
	if (w != NULL) {
		if (why)
			*why = w;
		return MESH_EINVAL;
	}
	Pack__Spec m = PACK__SPEC__INIT;
	Pack__Label lab[PACK_LABELS_MAX], *lp[PACK_LABELS_MAX];
	m.tenant = (char *)(spec->tenant ? spec->tenant : "");
	m.mem_mib = spec->mem_mib;
	m.replicas = spec->replicas;
	m.zone = (char *)(spec->zone ? spec->zone : "");
	m.region = (char *)(spec->region ? spec->region : "");
	m.created_unix_ms = spec->created_unix_ms;
	for (size_t i = 0; i < spec->nlabels; i++) {
		pack__label__init(&lab[i]);
		lab[i].key = (char *)spec->label_key[i];
		lab[i].value = (char *)spec->label_value[i];
		lp[i] = &lab[i];
	}
	m.n_labels = spec->nlabels;
	m.labels = lp;
	*len = pack__spec__get_packed_size(&m);
	*out = malloc(*len ? *len : 1);
	if (*out == NULL)
		return MESH_ENOMEM;
	pack__spec__pack(&m, *out);
	return 0;
}

/* ---- the table of packs -------------------------------------------------- */

static int
pack__entry_cmp(const void *x, const void *y)
{
	const struct pack__entry *a = x, *b = y;
	if (a->name == NULL || b->name == NULL) /* deleted ones last */
		return (a->name == NULL) - (b->name == NULL);
	if (a->hash != b->hash)
		return a->hash < b->hash ? -1 : 1;
	return strcmp(a->name, b->name);
}

/* Rebuilds the index for @want entries at least. */
static int
pack__ix_rebuild(struct pack *pk, size_t want)
{
	size_t cap = 64;
	while (cap < 2 * want)
		cap *= 2;
	/* Never smaller: a rebuild after a sort then needs no memory. */
	if (cap > pk->ixcap) {
		uint32_t *ix = mesh_calloc(pk->a, cap, sizeof(*ix));
		if (ix == NULL)
			return MESH_ENOMEM;
		mesh_free(pk->a, pk->ix);
		pk->ix = ix;
		pk->ixcap = cap;
	} else {
		/* The larger index stays: probing uses pk->ixcap. */
		memset(pk->ix, 0, pk->ixcap * sizeof(*pk->ix));
	}
	for (size_t i = 0; i < pk->n; i++)
		if (pk->e[i].name != NULL)
			pack__slot_put(pk->ix, pk->ixcap, pk->e[i].hash,
				       (uint32_t)i);
	return 0;
}

/* Sorts the table and drops deleted entries. */
static void
pack__sort(struct pack *pk)
{
	if (!pk->unsorted && pk->ndead == 0)
		return;
	mesh_sort(pk->e, pk->n, sizeof(*pk->e), pack__entry_cmp);
	pk->n -= pk->ndead;
	pk->ndead = 0;
	pk->unsorted = false;
	pack__ix_rebuild(pk, pk->n); /* no larger: cannot fail */
}

static struct pack__entry *
pack__find(struct pack *pk, const char *name)
{
	if (pk->ixcap == 0)
		return NULL;
	uint64_t h = pack__hash_name(name);
	for (size_t i = (size_t)h & (pk->ixcap - 1); pk->ix[i] != 0;
	     i = (i + 1) & (pk->ixcap - 1)) {
		struct pack__entry *e = &pk->e[pk->ix[i] - 1];
		if (e->hash == h && e->name != NULL &&
		    strcmp(e->name, name) == 0)
			return e;
	}
	return NULL;
}

int
pack_set_spec(struct pack *pk, const char *name, const uint8_t *data,
	      size_t len)
{
	if (!pack_name_ok(name))
		return MESH_EINVAL;
	struct pack_spec s;
	void *buf;
	int rc = pack_spec_decode(data, len, &s, &buf, NULL);
	if (rc != 0)
		return rc;
	uint32_t zone = PACK__NONE, region = PACK__NONE;
	if (s.zone[0] != 0)
		zone = pack__intern(pk, s.zone);
	if (s.region[0] != 0)
		region = pack__intern(pk, s.region);
	struct pack__entry *e = pack__find(pk, name);
	if (e == NULL) {
		if (pk->n - pk->ndead >= PACK_PACKS_MAX)
			rc = MESH_ERANGE;
		else if (mesh_grow(pk->a, (void **)&pk->e, &pk->cap, pk->n + 1,
				   sizeof(*pk->e)) != 0 ||
			 (2 * (pk->n + 1) > pk->ixcap &&
			  pack__ix_rebuild(pk, pk->n + 1) != 0))
			rc = MESH_ENOMEM;
		char *copy = rc == 0 ? pack__strdup(pk->a, name) : NULL;
		if (rc == 0 && copy == NULL)
			rc = MESH_ENOMEM;
		if (rc == 0) {
			e = &pk->e[pk->n++];
			memset(e, 0, sizeof(*e));
			e->name = copy;
			e->hash = pack__hash_name(name);
			e->reporter = PACK__NONE;
			for (unsigned k = 0; k < RING_REPLICAS_MAX; k++)
				e->own[k] = PACK__NONE;
			pack__slot_put(pk->ix, pk->ixcap, e->hash,
				       (uint32_t)(pk->n - 1));
			pk->unsorted = true;
		}
	}
	if (rc == 0 && (zone == PACK__NONE) != (s.zone[0] == 0))
		rc = MESH_ENOMEM;
	if (rc == 0) {
		e->mem = s.mem_mib;
		e->zone = zone;
		e->region = region;
		e->replicas = (uint8_t)s.replicas;
	}
	pack_spec_release(buf);
	return rc;
}

int
pack_del(struct pack *pk, const char *name)
{
	struct pack__entry *e = pack__find(pk, name);
	if (e == NULL)
		return MESH_ENOENT;
	/* Its owners lose it at the next placement, as if moved nowhere:
	 * keep the entry (nameless) until then so the diff sees it. */
	mesh_free(pk->a, e->name);
	e->name = NULL;
	pk->ndead++;
	return 0;
}

size_t
pack_count(const struct pack *pk)
{
	return pk->n - pk->ndead;
}

/* ---- queues ---------------------------------------------------------------
 */

static struct pack__local *pack__local_find(struct pack *pk, const char *name,
					    size_t *at);

static void
pack__hook(struct pack *pk, struct pack__local *l, enum pack_action act)
{
	char *name = pack__strdup(pk->a, l->name);
	if (name == NULL || mesh_grow(pk->a, (void **)&pk->hq, &pk->caphq,
				      pk->nhq + 1, sizeof(*pk->hq)) != 0) {
		mesh_free(pk->a, name);
		/* Retried by the timer. */
		l->next_ms = 1;
		return;
	}
	l->busy = true;
	l->running = act;
	l->hook_id = ++pk->next_hook_id;
	pk->hq[pk->nhq++] = (struct pack__hookq){l->hook_id, act, name};
	pk->st.hooks_run++;
}

static void
pack__event(struct pack *pk, enum pack_event_kind kind, const char *name,
	    const char *node, uint8_t *data, size_t len)
{
	struct pack__event ev = {kind,
				 PACK_NONE,
				 pack__strdup(pk->a, name),
				 node ? pack__strdup(pk->a, node) : NULL,
				 data,
				 len};
	if (ev.name == NULL || (node != NULL && ev.node == NULL) ||
	    mesh_grow(pk->a, (void **)&pk->evq, &pk->capev, pk->nev + 1,
		      sizeof(*pk->evq)) != 0) {
		mesh_free(pk->a, ev.name);
		mesh_free(pk->a, ev.node);
		mesh_free(pk->a, data);
		MESH_LOG(pk->env, MESH_LOG_ERROR,
			 "pack: out of memory: an event of %s is lost", name);
		return;
	}
	pk->evq[pk->nev++] = ev;
}

/* Publishes our run state of @l. */
static void
pack__publish(struct pack *pk, const struct pack__local *l)
{
	Pack__Run r = PACK__RUN__INIT;
	r.state = (Pack__State)l->state;
	int64_t w = (int64_t)l->since_ms + pk->cfg.wall_offset_ms;
	r.since_unix_ms = w > 0 ? (uint64_t)w : 0;
	r.exit = l->last_exit;
	r.detail = (char *)l->detail;
	r.attempts = l->attempts;
	size_t len = pack__run__get_packed_size(&r);
	uint8_t *b = mesh_malloc(pk->a, len ? len : 1);
	if (b == NULL)
		return;
	pack__run__pack(&r, b);
	pack__event(pk, PACK_EV_RUN, l->name, NULL, b, len);
	if (pk->nev > 0 && pk->evq[pk->nev - 1].kind == PACK_EV_RUN)
		pk->evq[pk->nev - 1].state = l->state;
}

static void
pack__set_state(struct pack *pk, uint64_t now_ms, struct pack__local *l,
		enum pack_state st)
{
	if (l->state != st)
		l->since_ms = now_ms;
	l->state = st;
	if (pk->cfg.hook)
		pack__publish(pk, l);
}

bool
pack_poll_hook(struct pack *pk, struct pack_hook *out)
{
	mesh_free(pk->a, pk->hq_cur);
	pk->hq_cur = NULL;
	if (pk->hq_head == pk->nhq) {
		pk->hq_head = pk->nhq = 0;
		return false;
	}
	struct pack__hookq *q = &pk->hq[pk->hq_head++];
	pk->hq_cur = q->name;
	out->id = q->id;
	out->action = q->action;
	out->name = q->name;
	return true;
}

static void
pack__event_free(struct pack *pk, struct pack__event *ev)
{
	mesh_free(pk->a, ev->name);
	mesh_free(pk->a, ev->node);
	mesh_free(pk->a, ev->data);
	memset(ev, 0, sizeof(*ev));
}

bool
pack_poll_event(struct pack *pk, struct pack_event *out)
{
	pack__event_free(pk, &pk->ev_cur);
	if (pk->ev_head == pk->nev) {
		pk->ev_head = pk->nev = 0;
		return false;
	}
	pk->ev_cur = pk->evq[pk->ev_head++];
	out->kind = pk->ev_cur.kind;
	out->state = pk->ev_cur.state;
	out->name = pk->ev_cur.name;
	out->node = pk->ev_cur.node;
	out->data = pk->ev_cur.data;
	out->len = pk->ev_cur.len;
	return true;
}

/* ---- packs owned here -----------------------------------------------------
 */

static struct pack__local *
pack__local_find(struct pack *pk, const char *name, size_t *at)
{
	size_t lo = 0, hi = pk->nloc;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(pk->loc[mid]->name, name);
		if (c == 0) {
			if (at)
				*at = mid;
			return pk->loc[mid];
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (at)
		*at = lo;
	return NULL;
}

static struct pack__local *
pack__local_add(struct pack *pk, const char *name)
{
	size_t at;
	struct pack__local *l = pack__local_find(pk, name, &at);
	if (l != NULL)
		return l;
	l = mesh_calloc(pk->a, 1, sizeof(*l));
	char *copy = pack__strdup(pk->a, name);
	if (l == NULL || copy == NULL ||
	    mesh_grow(pk->a, (void **)&pk->loc, &pk->caploc, pk->nloc + 1,
		      sizeof(*pk->loc)) != 0) {
		mesh_free(pk->a, l);
		mesh_free(pk->a, copy);
		return NULL;
	}
	l->name = copy;
	l->last_exit = -1;
	memmove(&pk->loc[at + 1], &pk->loc[at],
		(pk->nloc - at) * sizeof(*pk->loc));
	pk->loc[at] = l;
	pk->nloc++;
	return l;
}

static void
pack__local_remove(struct pack *pk, struct pack__local *l)
{
	size_t at;
	if (pack__local_find(pk, l->name, &at) != l)
		return;
	memmove(&pk->loc[at], &pk->loc[at + 1],
		(pk->nloc - at - 1) * sizeof(*pk->loc));
	pk->nloc--;
	mesh_free(pk->a, l->name);
	mesh_free(pk->a, l);
}

static uint64_t
pack__backoff(const struct pack *pk, unsigned attempts)
{
	uint64_t d = pk->cfg.retry_min_ms;
	for (unsigned i = 1; i < attempts && d < pk->cfg.retry_max_ms; i++)
		d *= 2;
	return d < pk->cfg.retry_max_ms ? d : pk->cfg.retry_max_ms;
}

/* Ownership of @name here began (@want) or ended (!@want). */
static void
pack__own(struct pack *pk, uint64_t now_ms, const char *name, bool want)
{
	struct pack__local *l = pack__local_find(pk, name, NULL);
	if (want && l == NULL) {
		l = pack__local_add(pk, name);
		if (l == NULL) {
			MESH_LOG(pk->env, MESH_LOG_ERROR,
				 "pack: out of memory: %s is not started",
				 name);
			return;
		}
		l->since_ms = now_ms;
	}
	if (l == NULL)
		return;
	l->want = want;
	if (!pk->cfg.hook) {
		l->state = PACK_PLACED;
		if (!want)
			pack__local_remove(pk, l);
		return;
	}
	if (l->busy)
		return; /* decided when the hook run ends */
	if (want && (l->state == PACK_NONE || l->state == PACK_STOPPING ||
		     l->state == PACK_FAILED)) {
		l->detail[0] = 0;
		pack__set_state(pk, now_ms, l, PACK_STARTING);
		pack__hook(pk, l, PACK_START);
	} else if (!want && l->state != PACK_NONE) {
		pack__set_state(pk, now_ms, l, PACK_STOPPING);
		pack__hook(pk, l, PACK_STOP);
	} else if (!want) {
		pack__local_remove(pk, l);
	}
}

int
pack_adopt(struct pack *pk, uint64_t now_ms, const char *name)
{
	if (!pack_name_ok(name))
		return MESH_EINVAL;
	if (pack__local_find(pk, name, NULL) != NULL)
		return 0;
	struct pack__local *l = pack__local_add(pk, name);
	if (l == NULL)
		return MESH_ENOMEM;
	l->state = PACK_RUNNING; /* what we last knew */
	l->since_ms = now_ms;
	l->adopted = true;
	return 0;
}

void
pack_hook_done(struct pack *pk, uint64_t now_ms, uint64_t id, int status,
	       const char *detail)
{
	struct pack__local *l = NULL;
	for (size_t i = 0; i < pk->nloc && l == NULL; i++)
		if (pk->loc[i]->busy && pk->loc[i]->hook_id == id)
			l = pk->loc[i];
	if (l == NULL)
		return; /* a run the core forgot (its pack went and came) */
	l->busy = false;
	l->last_exit = status;
	snprintf(l->detail, sizeof(l->detail), "%s", detail ? detail : "");
	enum pack_action act = l->running;
	if (status != 0)
		pk->st.hooks_failed++;
	if (act == PACK_STOP) {
		if (l->want) {
			l->detail[0] = 0;
			pack__set_state(pk, now_ms, l, PACK_STARTING);
			pack__hook(pk, l, PACK_START);
		} else if (status == 0) {
			pack__event(pk, PACK_EV_UNRUN, l->name, pk->cfg.name,
				    NULL, 0);
			pack__local_remove(pk, l);
		} else {
			/* Still running somewhere here: try again. */
			l->attempts++;
			l->next_ms = now_ms + pack__backoff(pk, l->attempts);
			pack__set_state(pk, now_ms, l, PACK_STOPPING);
			MESH_LOG(pk->env, MESH_LOG_WARN,
				 "pack: stop %s failed (exit %d); again in "
				 "%llu ms",
				 l->name, status,
				 (unsigned long long)(l->next_ms - now_ms));
		}
		return;
	}
	if (!l->want) {
		pack__set_state(pk, now_ms, l, PACK_STOPPING);
		pack__hook(pk, l, PACK_STOP);
		return;
	}
	if (status == 0) {
		l->attempts = 0;
		l->next_ms = now_ms + pk->cfg.check_ms;
		if (l->state != PACK_RUNNING)
			pack__set_state(pk, now_ms, l, PACK_RUNNING);
		return;
	}
	l->attempts++;
	l->next_ms = now_ms + pack__backoff(pk, l->attempts);
	pack__set_state(pk, now_ms, l, PACK_FAILED);
	MESH_LOG(pk->env, MESH_LOG_WARN,
		 "pack: %s %s failed (exit %d, attempt %u); start again in "
		 "%llu ms",
		 act == PACK_START ? "start" : "check", l->name, status,
		 l->attempts, (unsigned long long)(l->next_ms - now_ms));
}

void
pack_tick(struct pack *pk, uint64_t now_ms)
{
	for (size_t i = 0; i < pk->nloc; i++) {
		struct pack__local *l = pk->loc[i];
		if (l->busy || l->next_ms == 0 || l->next_ms > now_ms)
			continue;
		l->next_ms = 0;
		if (!pk->cfg.hook)
			continue;
		if (!l->want) {
			pack__hook(pk, l, PACK_STOP);
		} else if (l->state == PACK_RUNNING) {
			pack__hook(pk, l, PACK_CHECK);
		} else {
			pack__set_state(pk, now_ms, l, PACK_STARTING);
			pack__hook(pk, l, PACK_START);
		}
	}
}

uint64_t
pack_next_deadline(const struct pack *pk)
{
	uint64_t next = UINT64_MAX;
	for (size_t i = 0; i < pk->nloc; i++) {
		const struct pack__local *l = pk->loc[i];
		if (!l->busy && l->next_ms != 0 && l->next_ms < next)
			next = l->next_ms;
	}
	return next;
}

/* ---- placement --------------------------------------------------------------
 */

static bool
pack__has(const uint32_t *own, uint32_t id)
{
	for (unsigned k = 0; k < RING_REPLICAS_MAX; k++)
		if (own[k] == id)
			return true;
	return false;
}

/* Why @from's copy of a pack left it, by the new ring. */
static const char *
pack__reason(const struct ring *r, const char *from, bool first)
{
	if (first)
		return "start";
	if (from == NULL)
		return "placed";
	int idx = ring_find(r, from);
	if (idx < 0)
		return "gone";
	const struct ring_node_info *ni = ring_node(r, (uint32_t)idx);
	if (!ni->alive)
		return "down";
	if (ni->draining)
		return "drained";
	return "rebalance";
}

static void
pack__move(struct pack *pk, uint64_t now_ms, const struct ring *r,
	   const char *pack, const char *from, const char *to)
{
	Pack__Move m = PACK__MOVE__INIT;
	m.pack = (char *)pack;
	m.from = (char *)(from ? from : "");
	m.to = (char *)(to ? to : "");
	m.reason = (char *)pack__reason(r, from, !pk->placed_once);
	int64_t w = (int64_t)now_ms + pk->cfg.wall_offset_ms;
	m.unix_ms = w > 0 ? (uint64_t)w : 0;
	size_t len = pack__move__get_packed_size(&m);
	uint8_t *b = mesh_malloc(pk->a, len ? len : 1);
	if (b == NULL)
		return;
	pack__move__pack(&m, b);
	pack__event(pk, PACK_EV_MOVE, pack, NULL, b, len);
}

/* Old owners @old of @e against its new ones: counts moves, records
 * those that involve us, starts or stops the pack here. */
static void
pack__diff(struct pack *pk, uint64_t now_ms, const struct ring *r,
	   const struct pack__entry *e, const uint32_t *old, const char *name)
{
	uint32_t gone[RING_REPLICAS_MAX], came[RING_REPLICAS_MAX];
	unsigned ng = 0, nc = 0;
	for (unsigned k = 0; k < RING_REPLICAS_MAX; k++) {
		if (old[k] != PACK__NONE && !pack__has(e->own, old[k]))
			gone[ng++] = old[k];
		if (e->own[k] != PACK__NONE && !pack__has(old, e->own[k]))
			came[nc++] = e->own[k];
	}
	unsigned moves = ng > nc ? ng : nc;
	pk->st.moves += moves;
	for (unsigned k = 0; k < moves; k++) {
		uint32_t from = k < ng ? gone[k] : PACK__NONE;
		uint32_t to = k < nc ? came[k] : PACK__NONE;
		if (from == pk->self || to == pk->self)
			pack__move(pk, now_ms, r, name,
				   from == PACK__NONE ? NULL
						      : pack__str(pk, from),
				   to == PACK__NONE ? NULL : pack__str(pk, to));
	}
	bool was = pack__has(old, pk->self), is = pack__has(e->own, pk->self);
	if (was != is)
		pack__own(pk, now_ms, name, is);
	/* A new primary: the run states are read again, since the one
	 * that counts is the primary's (which may have come before this
	 * node saw it as primary), and the new primary clears entries left
	 * by owners that are down. */
	if (e->own[0] != old[0] && e->own[0] != PACK__NONE)
		pack__event(pk, PACK_EV_SWEEP, name, NULL, NULL, 0);
}

/* The ring's id of the zone or region @id names, cached per placement. */
struct pack__dom {
	uint32_t zone, region, ring_id;
};

static uint32_t
pack__domain(struct pack *pk, const struct ring *r, struct pack__dom **cache,
	     size_t *n, size_t *cap, uint32_t zone, uint32_t region)
{
	for (size_t i = 0; i < *n; i++)
		if ((*cache)[i].zone == zone && (*cache)[i].region == region)
			return (*cache)[i].ring_id;
	int id = region == PACK__NONE ? ring_zone_id(r, pack__str(pk, zone))
				      : ring_region_id(r, pack__str(pk, zone),
						       pack__str(pk, region));
	uint32_t rid = id < 0 ? PACK__NO_DOMAIN : (uint32_t)id;
	if (mesh_grow(pk->a, (void **)cache, cap, *n + 1, sizeof(**cache)) == 0)
		(*cache)[(*n)++] = (struct pack__dom){zone, region, rid};
	return rid;
}

int
pack_update(struct pack *pk, uint64_t now_ms, const struct ring *r)
{
	/* Deleted packs first lose their owners here. */
	for (size_t i = 0; i < pk->n; i++) {
		struct pack__entry *e = &pk->e[i];
		if (e->name != NULL)
			continue;
		for (unsigned k = 0; k < RING_REPLICAS_MAX; k++) {
			if (e->own[k] == PACK__NONE)
				continue;
			pk->st.moves++;
			e->own[k] = PACK__NONE;
		}
	}
	/* Their names are gone: the local state is found by name instead. */
	for (size_t i = 0; i < pk->nloc; i++) {
		struct pack__local *l = pk->loc[i];
		if (l->want && pack__find(pk, l->name) == NULL) {
			pack__own(pk, now_ms, l->name, false);
			if (i < pk->nloc && pk->loc[i] != l)
				i--; /* removed */
		}
	}
	pack__sort(pk);
	size_t n = pk->n;
	unsigned stride = 1;
	for (size_t i = 0; i < n; i++)
		if (pk->e[i].replicas > stride)
			stride = pk->e[i].replicas;
	uint32_t nn = r != NULL ? ring_node_count(r) : 0;
	struct ring_pack *rp = mesh_malloc(pk->a, (n ? n : 1) * sizeof(*rp));
	uint32_t *owners =
	    mesh_malloc(pk->a, (n ? n : 1) * stride * sizeof(*owners));
	uint8_t *why = mesh_malloc(pk->a, n ? n : 1);
	uint32_t *ids = mesh_malloc(pk->a, (nn ? nn : 1) * sizeof(*ids));
	uint64_t *mem_used = mesh_calloc(pk->a, nn ? nn : 1, sizeof(*mem_used));
	struct pack__dom *dc = NULL;
	size_t ndc = 0, capdc = 0;
	int rc = rp && owners && why && ids && mem_used ? 0 : MESH_ENOMEM;
	pk->self = pack__intern(pk, pk->cfg.name);
	for (uint32_t i = 0; rc == 0 && i < nn; i++) {
		ids[i] = pack__intern(pk, ring_node(r, i)->name);
		if (ids[i] == PACK__NONE || pk->self == PACK__NONE)
			rc = MESH_ENOMEM;
	}
	if (rc == 0 && r != NULL) {
		for (size_t i = 0; i < n; i++) {
			const struct pack__entry *e = &pk->e[i];
			rp[i] = (struct ring_pack){e->hash, e->mem, RING_ANY,
						   RING_ANY, e->replicas};
			if (e->zone != PACK__NONE)
				rp[i].zone =
				    pack__domain(pk, r, &dc, &ndc, &capdc,
						 e->zone, PACK__NONE);
			if (e->region != PACK__NONE)
				rp[i].region =
				    pack__domain(pk, r, &dc, &ndc, &capdc,
						 e->zone, e->region);
		}
		struct ring_place opt = {stride, pk->cfg.bounded,
					 pk->cfg.eps_milli};
		rc = ring_assign_fit(r, rp, n, stride, &opt, owners, why,
				     mem_used, NULL);
	} else if (rc == 0) {
		for (size_t i = 0; i < n * stride; i++)
			owners[i] = RING_NONE;
		memset(why, RING_FIT_NODES, n);
	}
	if (rc == 0) {
		/* Who is eligible, for pack_report(). */
		if (mesh_grow(pk->a, (void **)&pk->alive, &pk->nalive,
			      pk->names.n, 1) == 0) {
			memset(pk->alive, 0, pk->nalive);
			for (uint32_t i = 0; i < nn; i++)
				pk->alive[ids[i]] = ring_node(r, i)->eligible;
		}
		pk->st.mem_mib_here = 0;
		for (size_t i = 0; i < n; i++) {
			struct pack__entry *e = &pk->e[i];
			uint32_t old[RING_REPLICAS_MAX];
			memcpy(old, e->own, sizeof(old));
			for (unsigned k = 0; k < RING_REPLICAS_MAX; k++) {
				uint32_t o = k < stride ? owners[i * stride + k]
							: RING_NONE;
				e->own[k] =
				    o == RING_NONE ? PACK__NONE : ids[o];
			}
			e->fit = why[i];
			if (pack__has(e->own, pk->self))
				pk->st.mem_mib_here += e->mem;
			pack__diff(pk, now_ms, r, e, old, e->name);
		}
		pk->placed_once = true;
		pk->st.updates++;
		/* Left running by an earlier life: stop what is not ours,
		 * check what is. */
		for (size_t i = 0; i < pk->nloc; i++) {
			struct pack__local *l = pk->loc[i];
			if (!l->adopted)
				continue;
			l->adopted = false;
			if (!pk->cfg.hook && !l->want) {
				pack__local_remove(pk, l);
				i--;
			} else if (!pk->cfg.hook) {
				l->state = PACK_PLACED;
			} else if (l->want) {
				/* Ours still: say so, check it at once. */
				pack__set_state(pk, now_ms, l, PACK_RUNNING);
				l->next_ms = now_ms;
			} else if (!l->busy) {
				pack__set_state(pk, now_ms, l, PACK_STOPPING);
				pack__hook(pk, l, PACK_STOP);
			}
		}
	} else {
		MESH_LOG(pk->env, MESH_LOG_ERROR,
			 "pack: cannot place the packs: %s", mesh_strerror(rc));
	}
	mesh_free(pk->a, rp);
	mesh_free(pk->a, owners);
	mesh_free(pk->a, why);
	mesh_free(pk->a, ids);
	mesh_free(pk->a, mem_used);
	mesh_free(pk->a, dc);
	return rc;
}

/* ---- reports ----------------------------------------------------------------
 */

void
pack_report(struct pack *pk, const char *name, const char *node,
	    const uint8_t *data, size_t len)
{
	struct pack__entry *e = pack__find(pk, name);
	if (e == NULL)
		return;
	if (node == NULL) {
		e->reported = PACK_NONE;
		e->reporter = PACK__NONE;
		return;
	}
	size_t slot;
	uint32_t id = pack__intern_find(&pk->names, node, &slot);
	enum pack_state st = PACK_NONE;
	if (len > 0) {
		Pack__Run *m = pack__run__unpack(NULL, len, data);
		if (m == NULL)
			return;
		st = (int)m->state <= (int)PACK_STOPPING
			 ? (enum pack_state)m->state
			 : PACK_NONE;
		pack__run__free_unpacked(m, NULL);
	}
	if (id != PACK__NONE && id == e->own[0]) {
		e->reported = (uint8_t)st;
		e->reporter = id;
	}
	/* The primary clears what owners that are down left behind. */
	bool down = id == PACK__NONE || id >= pk->nalive || !pk->alive[id];
	if (len > 0 && e->own[0] == pk->self && id != pk->self && down &&
	    !pack__has(e->own, id))
		pack__event(pk, PACK_EV_UNRUN, name, node, NULL, 0);
}

/* ---- status
 * ------------------------------------------------------------------ */

void
pack_counts(const struct pack *pk, struct pack_counts *out)
{
	*out = pk->st;
	out->desired = out->placed = out->short_owned = out->unplaceable = 0;
	out->running = out->starting = out->failed = out->no_hook = 0;
	out->mine = 0;
	for (size_t i = 0; i < pk->n; i++) {
		const struct pack__entry *e = &pk->e[i];
		if (e->name == NULL)
			continue;
		out->desired++;
		if (e->own[0] == PACK__NONE) {
			out->unplaceable++;
			continue;
		}
		if (e->fit == RING_FIT_OK)
			out->placed++;
		else
			out->short_owned++;
		out->mine += pack__has(e->own, pk->self);
		enum pack_state st =
		    e->reporter == e->own[0] ? e->reported : PACK_NONE;
		if (!pk->cfg.hook && e->own[0] == pk->self)
			st = PACK_PLACED;
		out->running += st == PACK_RUNNING;
		out->starting += st == PACK_STARTING;
		out->failed += st == PACK_FAILED;
		out->no_hook += st == PACK_PLACED;
	}
}

static const char *
pack__why(struct pack *pk, const struct pack__entry *e)
{
	switch (e->fit) {
	case RING_FIT_OK:
		return "";
	case RING_FIT_DOMAIN:
		snprintf(
		    pk->why, sizeof(pk->why), "no eligible node in zone %s%s%s",
		    pack__str(pk, e->zone),
		    e->region != PACK__NONE ? " region " : "",
		    e->region != PACK__NONE ? pack__str(pk, e->region) : "");
		return pk->why;
	case RING_FIT_MEM:
		snprintf(pk->why, sizeof(pk->why),
			 "needs %u MiB on each of %u owners: too few eligible "
			 "nodes have that much memory free",
			 e->mem, e->replicas);
		return pk->why;
	default:
		return e->own[0] == PACK__NONE
			   ? "no eligible node (all down or draining?)"
			   : "fewer eligible nodes than replicas";
	}
}

static void
pack__info(struct pack *pk, const struct pack__entry *e, struct pack_info *out)
{
	memset(out, 0, sizeof(*out));
	out->name = e->name;
	out->mem_mib = e->mem;
	out->replicas = e->replicas;
	out->zone = e->zone != PACK__NONE ? pack__str(pk, e->zone) : "";
	out->region = e->region != PACK__NONE ? pack__str(pk, e->region) : "";
	for (unsigned k = 0; k < RING_REPLICAS_MAX; k++)
		if (e->own[k] != PACK__NONE)
			out->owners[out->nowners++] = pack__str(pk, e->own[k]);
	out->fit = (enum ring_fit)e->fit;
	out->why = pack__why(pk, e);
	out->reported = e->reporter == e->own[0] && e->own[0] != PACK__NONE
			    ? (enum pack_state)e->reported
			    : PACK_NONE;
	out->last_exit = -1;
	const struct pack__local *l = pack__local_find(pk, e->name, NULL);
	if (l != NULL) {
		out->here = true;
		out->state = l->state;
		int64_t w = (int64_t)l->since_ms + pk->cfg.wall_offset_ms;
		out->since_unix_ms = w > 0 ? (uint64_t)w : 0;
		out->last_exit = l->last_exit;
		out->attempts = l->attempts;
		out->detail = l->detail;
	}
}

int
pack_info(struct pack *pk, const char *name, struct pack_info *out)
{
	const struct pack__entry *e = pack__find(pk, name);
	if (e == NULL)
		return MESH_ENOENT;
	pack__info(pk, e, out);
	return 0;
}

int
pack_info_at(struct pack *pk, size_t i, struct pack_info *out)
{
	pack__sort(pk);
	if (i >= pk->n)
		return MESH_ENOENT;
	pack__info(pk, &pk->e[i], out);
	return 0;
}

/* ---- life
 * ---------------------------------------------------------------------- */

void
pack_config_default(struct pack_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	/* A check every 10 s finds a dead process well within what an
	 * operator waits for, at one fork per pack per 10 s. */
	cfg->check_ms = 10000;
	/* 1 s, 2 s, 4 s ... 60 s: a broken pack costs one run a minute. */
	cfg->retry_min_ms = 1000;
	cfg->retry_max_ms = 60000;
	cfg->bounded = true;
	cfg->eps_milli = 250; /* no node above 1.25 x the mean */
}

int
pack_new(const struct pack_config *cfg, const struct mesh_env *env,
	 struct pack **out)
{
	if (!mesh_name_is_valid(cfg->name, RING_NAME_MAX) ||
	    cfg->check_ms < 10 || cfg->retry_min_ms < 10 ||
	    cfg->retry_max_ms < cfg->retry_min_ms ||
	    (cfg->bounded &&
	     (cfg->eps_milli < RING_EPS_MIN || cfg->eps_milli > RING_EPS_MAX)))
		return MESH_EINVAL;
	struct pack *pk = mesh_calloc(env->alloc, 1, sizeof(*pk));
	if (pk == NULL)
		return MESH_ENOMEM;
	pk->cfg = *cfg;
	pk->env = env;
	pk->a = env->alloc;
	pk->self = pack__intern(pk, cfg->name);
	if (pk->self == PACK__NONE) {
		pack_free(pk);
		return MESH_ENOMEM;
	}
	*out = pk;
	return 0;
}

void
pack_free(struct pack *pk)
{
	if (pk == NULL)
		return;
	for (size_t i = 0; i < pk->n; i++)
		mesh_free(pk->a, pk->e[i].name);
	mesh_free(pk->a, pk->e);
	mesh_free(pk->a, pk->ix);
	for (size_t i = 0; i < pk->names.n; i++)
		mesh_free(pk->a, pk->names.s[i]);
	mesh_free(pk->a, pk->names.s);
	mesh_free(pk->a, pk->names.ix);
	mesh_free(pk->a, pk->alive);
	for (size_t i = 0; i < pk->nloc; i++) {
		mesh_free(pk->a, pk->loc[i]->name);
		mesh_free(pk->a, pk->loc[i]);
	}
	mesh_free(pk->a, pk->loc);
	for (size_t i = pk->hq_head; i < pk->nhq; i++)
		mesh_free(pk->a, pk->hq[i].name);
	mesh_free(pk->a, pk->hq);
	mesh_free(pk->a, pk->hq_cur);
	for (size_t i = pk->ev_head; i < pk->nev; i++)
		pack__event_free(pk, &pk->evq[i]);
	mesh_free(pk->a, pk->evq);
	pack__event_free(pk, &pk->ev_cur);
	mesh_free(pk->a, pk);
}
