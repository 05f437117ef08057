/*
 * keyfile.c - the cluster keyring file of a running agent: read with its
 * permission checks, reloaded without a restart (meshctl keyring reload,
 * SIGHUP), described for operators (keyring list, status).
 */
#include "keyfile.h"

#include "mesh_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Why the keyring file @path was refused (@rc, @f from seal_keyring_read),
 * one line with no final newline, naming the fix. */
static void
keyfile__why(struct admin_buf *b, const char *path, int rc,
	     const struct seal_file *f)
{
	admin_printf(b, "keyring %s: ", path);
	if (rc == MESH_EIO) {
		admin_printf(b, "%s", strerror(f->sys_errno));
	} else if (rc == MESH_EINVAL && f->not_regular) {
		admin_printf(b, "not a regular file");
	} else if (rc == MESH_ESTATE) {
		unsigned long uid = (unsigned long)geteuid();
		if (f->loose)
			admin_printf(b,
				     "mode %04o lets group or others read or "
				     "change the cluster key; ",
				     f->mode);
		if (f->foreign)
			admin_printf(b,
				     "owned by uid %lu, not by the user meshd "
				     "runs as (uid %lu) or root; ",
				     f->uid, uid);
		admin_printf(b, "fix: ");
		if (f->foreign)
			admin_printf(b, "chown %lu %s%s", uid, path,
				     f->loose ? " && " : "");
		if (f->loose)
			admin_printf(b, "chmod 600 %s", path);
		admin_printf(b, " (or start meshd with --insecure-keyring)");
	} else if (rc == MESH_ENOENT) {
		admin_printf(b, "no key in the file");
	} else if (rc == MESH_EINVAL) {
		admin_printf(b,
			     "line %d: not a base64 32-byte key (one key per "
			     "line, '#' starts a comment)",
			     f->err_line);
	} else if (rc == MESH_EEXIST) {
		admin_printf(b, "line %d: the same key as an earlier line",
			     f->err_line);
	} else if (rc == MESH_ERANGE) {
		admin_printf(b, "line %d: more than %d keys", f->err_line,
			     SEAL_MAX_KEYS);
	} else if (rc == MESH_ETOOBIG) {
		admin_printf(b, "4 KiB or more: not a keyring");
	} else {
		admin_printf(b, "%s", mesh_strerror(rc));
	}
}

/* Reads the keyring file into @next: 0, or an error with the reason in
 * @why. A file accepted only through --insecure-keyring is logged. */
static int
keyfile__read(struct keyfile *kf, struct seal_keyring *next,
	      struct seal_file *f, struct admin_buf *why)
{
	int rc = seal_keyring_read(next, kf->path, geteuid(),
				   kf->insecure ? SEAL_FILE_INSECURE_OK : 0, f);
	if (rc != 0) {
		keyfile__why(why, kf->path, rc, f);
		return rc;
	}
	if (f->loose || f->foreign)
		MESH_LOG(kf->env, MESH_LOG_WARN,
			 "keyring %s: mode %04o, owner uid %lu: %s%s%s; "
			 "accepted because of --insecure-keyring",
			 kf->path, f->mode, f->uid,
			 f->loose ? "group or others have access" : "",
			 f->loose && f->foreign ? ", " : "",
			 f->foreign ? "another user owns it" : "");
	return 0;
}

/* Re-reads the keyring file and swaps it in if it is valid; a bad file
 * keeps the keys in use. Answers in @out (NULL for SIGHUP) and logs. */
void
keyfile_reload(struct keyfile *kf, const char *by, struct admin_buf *out)
{
	struct seal_keyring next;
	struct seal_file f;
	struct admin_buf why = {0};
	char was[SEAL_FINGERPRINT_HEX + 1], now[SEAL_FINGERPRINT_HEX + 1];
	seal_key_fingerprint(kf->ring->keys[0], was);
	if (keyfile__read(kf, &next, &f, &why) != 0) {
		const char *w = why.failed ? "cannot read" : why.data;
		MESH_LOG(kf->env, MESH_LOG_ERROR,
			 "keyring: reload by %s failed: %s; keeping the %u "
			 "key%s in use, primary %s",
			 by, w, kf->ring->count,
			 kf->ring->count == 1 ? "" : "s", was);
		if (out != NULL)
			admin_printf(out,
				     "error: %s; keeping the %u key%s in use, "
				     "primary %s\n",
				     w, kf->ring->count,
				     kf->ring->count == 1 ? "" : "s", was);
		free(why.data);
		return;
	}
	free(why.data);
	unsigned before = kf->ring->count, count = next.count;
	unsigned common = seal_keyring_replace(kf->ring, &next);
	seal_key_fingerprint(kf->ring->keys[0], now);
	kf->mode = f.mode;
	kf->reloads++;
	kf->loaded_ms = net_now_ms();
	MESH_LOG(kf->env, MESH_LOG_INFO,
		 "keyring: reloaded %s (by %s): %u key%s, primary %s%s%s%s, "
		 "%u added, %u removed",
		 kf->path, by, count, count == 1 ? "" : "s", now,
		 strcmp(was, now) == 0 ? "" : " (was ",
		 strcmp(was, now) == 0 ? "" : was,
		 strcmp(was, now) == 0 ? "" : ")", count - common,
		 before - common);
	if (common == 0)
		MESH_LOG(kf->env, MESH_LOG_WARN,
			 "keyring: no key in common with the keys before: "
			 "this node cannot talk to nodes that still hold only "
			 "those");
	if (out == NULL)
		return;
	admin_printf(out, "reloaded %s: %u key%s, primary %s", kf->path, count,
		     count == 1 ? "" : "s", now);
	if (strcmp(was, now) != 0)
		admin_printf(out, " (was %s)", was);
	admin_printf(out, "; %u added, %u removed\n", count - common,
		     before - common);
	if (common == 0)
		admin_printf(out,
			     "warning: no key in common with the keys before: "
			     "this node cannot talk to nodes that still hold "
			     "only those\n");
}

/* `keyring list`: fingerprints (never keys), which seals, what each
 * opened, and the datagrams and frames no key opened. */
static void
keyfile__list(const struct keyfile *kf, bool json, const struct net_counters *c,
	      struct admin_buf *out)
{
	uint64_t ago = net_now_ms() - kf->loaded_ms;
	char fp[SEAL_FINGERPRINT_HEX + 1];
	if (json) {
		admin_printf(out, "{\"path\":");
		admin_json_str(out, kf->path);
		admin_printf(out,
			     ",\"mode\":\"%04o\",\"reloads\":%u,"
			     "\"loaded_ago_ms\":%llu,\"keys\":[",
			     kf->mode, kf->reloads, (unsigned long long)ago);
		for (unsigned i = 0; i < kf->ring->count; i++) {
			seal_key_fingerprint(kf->ring->keys[i], fp);
			admin_printf(out,
				     "%s{\"fingerprint\":\"%s\","
				     "\"primary\":%s,\"opened\":%llu}",
				     i ? "," : "", fp,
				     i == 0 ? "true" : "false",
				     (unsigned long long)kf->opened[i]);
		}
		admin_printf(out,
			     "],\"dropped\":{\"wrong_key\":%llu,"
			     "\"seal_version\":%llu}}\n",
			     (unsigned long long)c->drop_auth,
			     (unsigned long long)c->drop_seal_version);
		return;
	}
	admin_printf(out,
		     "keyring      %s (mode %04o), loaded %llu s ago, %u "
		     "reloads\n",
		     kf->path, kf->mode, (unsigned long long)(ago / 1000),
		     kf->reloads);
	for (unsigned i = 0; i < kf->ring->count; i++) {
		seal_key_fingerprint(kf->ring->keys[i], fp);
		admin_printf(out, "  %-10s %s  opened %llu\n",
			     i == 0 ? "primary" : "accepted", fp,
			     (unsigned long long)kf->opened[i]);
	}
	admin_printf(out,
		     "dropped      wrong_key=%llu (no key opens them) "
		     "seal_version=%llu\n",
		     (unsigned long long)c->drop_auth,
		     (unsigned long long)c->drop_seal_version);
}

/* keyring reload|list [--json] */
void
keyfile_admin(struct keyfile *kf, const struct net_counters *c, size_t argc,
	      const struct admin_arg *argv, struct admin_buf *out)
{
	const char *sub =
	    argc > 1 && argv[1].len == strlen(argv[1].data) ? argv[1].data : "";
	bool json = false, bad = false;
	for (size_t i = 2; i < argc; i++) {
		if (argv[i].len == 6 &&
		    memcmp(argv[i].data, "--json", 6) == 0 && !json)
			json = true;
		else
			bad = true;
	}
	if (strcmp(sub, "list") == 0 && !bad)
		keyfile__list(kf, json, c, out);
	else if (strcmp(sub, "reload") == 0 && !bad && !json)
		keyfile_reload(kf, "meshctl", out);
	else
		admin_printf(out, "error: usage: keyring list [--json] | "
				  "keyring reload\n");
}

int
keyfile_open(struct keyfile *kf, struct seal_keyring *ring, const char *path,
	     bool insecure, const struct mesh_env *env, struct admin_buf *why)
{
	memset(kf, 0, sizeof(*kf));
	kf->ring = ring;
	kf->env = env;
	kf->insecure = insecure;
	/* Absolute, so messages name the file wherever they are read; not
	 * resolved, so a symlink swapped to a new file (a mounted secret) is
	 * followed at each reload. */
	char cwd[2048];
	int n;
	if (path[0] != '/' && getcwd(cwd, sizeof(cwd)) != NULL)
		n = snprintf(kf->path, sizeof(kf->path), "%s/%s", cwd, path);
	else
		n = snprintf(kf->path, sizeof(kf->path), "%s", path);
	if (n < 0 || (size_t)n >= sizeof(kf->path)) {
		admin_printf(why, "keyring %s: path too long", path);
		return MESH_EINVAL;
	}
	struct seal_file f;
	int rc = keyfile__read(kf, ring, &f, why);
	if (rc != 0)
		return rc;
	ring->opened = kf->opened;
	kf->mode = f.mode;
	kf->loaded_ms = net_now_ms();
	return 0;
}

void
keyfile_status_json(const struct keyfile *kf, struct admin_buf *b)
{
	char fp[SEAL_FINGERPRINT_HEX + 1];
	seal_key_fingerprint(kf->ring->keys[0], fp);
	admin_printf(b,
		     "\"keyring\":{\"keys\":%u,\"primary\":\"%s\","
		     "\"reloads\":%u}",
		     kf->ring->count, fp, kf->reloads);
}

void
keyfile_status_text(const struct keyfile *kf, struct admin_buf *b)
{
	char fp[SEAL_FINGERPRINT_HEX + 1];
	seal_key_fingerprint(kf->ring->keys[0], fp);
	admin_printf(b, "keyring      %u key%s, primary %s (`keyring list`)\n",
		     kf->ring->count, kf->ring->count == 1 ? "" : "s", fp);
}
