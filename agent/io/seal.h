/*
 * seal.h - sealing datagrams and frames with the cluster keyring.
 *
 * Sealed format, version 2 (docs/protocol.md), what seal_seal() writes:
 *
 *   byte 0        seal version, SEAL_VERSION = 2 (also authenticated)
 *   bytes 1..12   nonce: 8-byte random salt, 4-byte big-endian counter
 *   bytes 13..    XChaCha20-Poly1305 ciphertext of the plaintext + 16-byte tag
 *
 * The 24-byte XChaCha20 nonce is the 12 bytes of the wire followed by 12
 * zero bytes. 29 bytes of overhead (SEAL_OVERHEAD), 12 fewer than version 1,
 * which sent a random 24-byte nonce (bytes 1..24, 41 bytes of overhead):
 * most idle traffic is pings of a dozen plaintext bytes, so the overhead is
 * most of what an idle mesh sends.
 *
 * Why the nonce never repeats under a key: each keyring draws its salt with
 * randombytes_buf() before its first seal (a keyring parsed, read or
 * reloaded starts without one) and draws a new salt before its counter
 * would wrap past 2^32 - 1, and never seals twice with one (salt, counter).
 * So two seals under one key share a nonce only if two salts drawn under
 * that key are equal: with S salts ever drawn, p ~ S^2 / 2^65 (a million
 * salts: 3e-8). A copy of a keyring that has sealed shares its salt and
 * counter: only one copy may go on sealing (seal_keyring_replace() and the
 * parsers start afresh; a plain struct copy does not).
 *
 * seal_open() also opens version 1, so nodes still sending it are read.
 *
 * No key id travels on the wire: the opener tries the primary key first and
 * then the others, so a rotation needs no agreement on ids and leaks nothing.
 * With at most SEAL_MAX_KEYS keys, the cost of a miss is bounded.
 */
#ifndef SEAL_H
#define SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The version seal_seal() writes; seal_open() also takes SEAL_VERSION_1. */
#define SEAL_VERSION 2
#define SEAL_VERSION_1 1
#define SEAL_KEY_BYTES 32
/* Nonce bytes on the wire: the salt, then the big-endian counter. */
#define SEAL_SALT_BYTES 8
#define SEAL_NONCE_BYTES (SEAL_SALT_BYTES + 4)
#define SEAL_NONCE_V1_BYTES 24
#define SEAL_TAG_BYTES 16
/* What seal_seal() adds: size what we send with this (29). */
#define SEAL_OVERHEAD (1 + SEAL_NONCE_BYTES + SEAL_TAG_BYTES)
/* The largest overhead of a version seal_open() takes, version 1's (41):
 * size limits on what we accept with this. */
#define SEAL_OVERHEAD_MAX (1 + SEAL_NONCE_V1_BYTES + SEAL_TAG_BYTES)
/* Enough for a primary and a few keys being rotated in or out. */
#define SEAL_MAX_KEYS 8

/* Hex digits of a key's fingerprint: 32 bits tell keys of one keyring
 * apart and say nothing useful about the key. */
#define SEAL_FINGERPRINT_HEX 8

/**
 * A keyring: keys[0] is the primary (used to seal); all are accepted.
 * @opened, when not NULL, points at SEAL_MAX_KEYS counters owned by the
 * caller: seal_open() adds one to opened[i] for each buffer key i opens,
 * so an operator sees which keys are still in use. The parsers leave it
 * NULL.
 * @nonce is seal_seal()'s state (see the top of this file): all zero means
 * "draw a salt at the next seal"; otherwise @next is the counter the next
 * seal uses with @salt. A keyring is not for two threads at once.
 */
struct seal_keyring {
	uint8_t keys[SEAL_MAX_KEYS][SEAL_KEY_BYTES];
	unsigned count;
	uint64_t *opened;
	struct {
		uint8_t salt[SEAL_SALT_BYTES];
		uint32_t next;
		bool ready;
	} nonce;
};

/** What seal_keyring_read() found out about the file itself. */
struct seal_file {
	unsigned mode;	   /* permission bits, st_mode & 07777 */
	unsigned long uid; /* the file's owner */
	bool loose;	   /* group or others have some access (mode & 077) */
	bool foreign;	   /* owned by neither the reader nor root */
	bool not_regular;  /* a directory, FIFO, device... */
	int err_line;	   /* 1-based line of the first parse error, or 0 */
	int sys_errno;	   /* errno of a failed open or read, or 0 */
};

/* seal_keyring_read(): accept a loose or foreign file (the caller warns). */
#define SEAL_FILE_INSECURE_OK 1u

/**
 * Initialises libsodium. Call once before anything else here.
 * Returns 0 or MESH_EIO.
 */
int seal_init(void);

/**
 * Parses a keyring text: one base64 key (32 bytes) per line, the first is the
 * primary; blank lines and lines starting with '#' are ignored.
 * @text need not be NUL-terminated. @err_line, if not NULL, gets the 1-based
 * line of the first error.
 * Returns 0, MESH_EINVAL (bad base64 or key length), MESH_EEXIST (a key
 * given twice), MESH_ERANGE (more than
 * SEAL_MAX_KEYS keys) or MESH_ENOENT (no key at all).
 */
int seal_keyring_parse(struct seal_keyring *ring, const char *text, size_t len,
		       int *err_line);

/**
 * Reads and parses a keyring file with no check of its mode or owner (see
 * seal_keyring_read() for what an agent uses). Returns the codes of
 * seal_keyring_parse() or MESH_EIO when the file cannot be read.
 */
int seal_keyring_load(struct seal_keyring *ring, const char *path,
		      int *err_line);

/**
 * Reads and parses the keyring file @path for a process running as @uid,
 * as meshd does at start and at every reload. The file is opened once and
 * checked through that descriptor (no race with a rename): it must be a
 * regular file that neither group nor others may access in any way and
 * that belongs to @uid or to root (who can read it anyway), the rule ssh
 * applies to private keys. With SEAL_FILE_INSECURE_OK in @flags a loose or
 * foreign file is read all the same. @info (not NULL) always says what was
 * found, so the caller can name the mode and owner in its message.
 * @ring is written only on success; on failure it is untouched, so a
 * running agent keeps its keys.
 * Returns 0, MESH_EIO (open or read failed: info->sys_errno), MESH_EINVAL
 * (not a regular file), MESH_ESTATE (loose or foreign, see @info),
 * MESH_ETOOBIG (4 KiB or more) or the codes of seal_keyring_parse() (line
 * in info->err_line).
 */
int seal_keyring_read(struct seal_keyring *ring, const char *path, uid_t uid,
		      unsigned flags, struct seal_file *info);

/**
 * Replaces the keys of @ring by those of @next (which is wiped), keeping
 * @ring->opened: a key present in both keeps its counter wherever it moves,
 * a new key starts at 0. @ring's next seal draws a new nonce salt. Returns how
 * many keys of @next @ring held before (0: no key in common, so this node can
 * no longer talk to nodes that still hold only the old keys).
 */
unsigned seal_keyring_replace(struct seal_keyring *ring,
			      struct seal_keyring *next);

/**
 * Writes the fingerprint of @key into @out (SEAL_FINGERPRINT_HEX hex
 * digits and a NUL): the first 4 bytes of its unkeyed BLAKE2b-256 hash,
 * so `base64 -d | b2sum -l 256` of a keyring line starts with it.
 */
void seal_key_fingerprint(const uint8_t key[SEAL_KEY_BYTES],
			  char out[SEAL_FINGERPRINT_HEX + 1]);

/**
 * Writes a new keyring text with one fresh random key into @buf.
 * Returns 0 or MESH_ERANGE when @cap is too small (128 bytes is enough).
 */
int seal_keyring_generate(char *buf, size_t cap);

/**
 * Seals @len bytes of @plain with the primary key into @out (capacity @cap),
 * in version 2, taking the next nonce from @ring->nonce (a salt is drawn
 * first when there is none, or when the counter is spent).
 * @out and @plain must not overlap. On success *@out_len = @len +
 * SEAL_OVERHEAD. Returns 0, MESH_ETOOBIG when @cap is too small, MESH_ESTATE
 * with no key; a failed call uses no nonce.
 */
int seal_seal(struct seal_keyring *ring, const uint8_t *plain, size_t len,
	      uint8_t *out, size_t cap, size_t *out_len);

/**
 * Opens a sealed buffer of version 2 or 1 into @out (capacity @cap, at least
 * @len less the overhead of its version; @len - SEAL_OVERHEAD is always
 * enough). Returns 0, MESH_ETRUNC (shorter than SEAL_OVERHEAD, or than the
 * overhead of its version), MESH_EVERSION (unknown seal version),
 * MESH_ETOOBIG (@cap too small) or
 * MESH_EAUTH (no key opens it: wrong key, garbage or tampering). @out is
 * unspecified on failure. Counts the opening key in @ring->opened.
 */
int seal_open(const struct seal_keyring *ring, const uint8_t *sealed,
	      size_t len, uint8_t *out, size_t cap, size_t *out_len);

#endif
