/*
 * keyfile.h - the cluster keyring file of a running agent.
 *
 * meshd reads its keyring through this module at start and again on
 * `meshctl keyring reload` or SIGHUP: the file must be a regular file that
 * only its owner (the user meshd runs as, or root) can read or change,
 * unless --insecure-keyring; it is checked whole before it replaces the
 * keys in use, and a bad file keeps them. Keys are only ever shown as
 * fingerprints.
 */
#ifndef KEYFILE_H
#define KEYFILE_H

#include "admin.h"
#include "mesh_log.h"
#include "net.h"
#include "seal.h"

#include <stdbool.h>
#include <stdint.h>

struct keyfile {
	struct seal_keyring *ring; /* the keys in use: swapped on reload */
	const struct mesh_env *env;
	char path[4096]; /* absolute, not resolved: a swapped symlink is
			    followed at the next reload */
	bool insecure;	 /* --insecure-keyring */
	unsigned mode;
	unsigned reloads;
	uint64_t loaded_ms;
	uint64_t opened[SEAL_MAX_KEYS]; /* ring->opened points here */
};

/**
 * Reads the keyring at @path into @ring and sets up @kf to reload it.
 * @ring and @env are borrowed and must outlive @kf. On failure @why gets
 * one line naming the file, the fault and the fix.
 * Returns 0 or the error of seal_keyring_read() (MESH_EIO, MESH_ESTATE for
 * unsafe permissions, MESH_EINVAL, MESH_ERANGE, MESH_ENOENT, ...).
 */
int keyfile_open(struct keyfile *kf, struct seal_keyring *ring,
		 const char *path, bool insecure, const struct mesh_env *env,
		 struct admin_buf *why);

/**
 * Re-reads the file and swaps it in if it is valid; a bad file keeps the
 * keys in use. @by names the trigger in the log ("meshctl", "SIGHUP").
 * Answers in @out, which may be NULL.
 */
void keyfile_reload(struct keyfile *kf, const char *by, struct admin_buf *out);

/**
 * The admin command `keyring reload` or `keyring list [--json]` (argv[0]
 * is "keyring"); @c gives the drops no key opened.
 */
void keyfile_admin(struct keyfile *kf, const struct net_counters *c,
		   size_t argc, const struct admin_arg *argv,
		   struct admin_buf *out);

/** The "keyring" member of `status --json` (no separators around it). */
void keyfile_status_json(const struct keyfile *kf, struct admin_buf *b);

/** The keyring line of `status`. */
void keyfile_status_text(const struct keyfile *kf, struct admin_buf *b);

#endif
