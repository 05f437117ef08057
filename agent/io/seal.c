#include "seal.h"

#include "mesh_err.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A keyring with SEAL_MAX_KEYS keys and comments fits easily. */
#define SEAL_FILE_MAX 4096

_Static_assert(SEAL_NONCE_V1_BYTES ==
		   crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
	       "version 1 sends the whole XChaCha20 nonce");
_Static_assert(SEAL_NONCE_BYTES < crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
	       "version 2 sends a prefix of it");
_Static_assert(SEAL_TAG_BYTES == crypto_aead_xchacha20poly1305_ietf_ABYTES,
	       "the Poly1305 tag");

int
seal_init(void)
{
	return sodium_init() < 0 ? MESH_EIO : 0;
}

static int
seal__add_line(struct seal_keyring *ring, const char *line, size_t n)
{
	while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t' ||
			 line[n - 1] == '\r'))
		n--;
	while (n > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		n--;
	}
	if (n == 0 || line[0] == '#')
		return 0;
	if (ring->count == SEAL_MAX_KEYS)
		return MESH_ERANGE;
	uint8_t key[SEAL_KEY_BYTES + 4];
	size_t key_len = 0;
	if (sodium_base642bin(key, sizeof(key), line, n, NULL, &key_len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    key_len != SEAL_KEY_BYTES)
		return MESH_EINVAL;
	/* A key twice would be counted twice by a reload (and means the
	 * file is not what its writer thought). */
	for (unsigned i = 0; i < ring->count; i++)
		if (sodium_memcmp(ring->keys[i], key, SEAL_KEY_BYTES) == 0) {
			sodium_memzero(key, sizeof(key));
			return MESH_EEXIST;
		}
	memcpy(ring->keys[ring->count++], key, SEAL_KEY_BYTES);
	sodium_memzero(key, sizeof(key));
	return 0;
}

int
seal_keyring_parse(struct seal_keyring *ring, const char *text, size_t len,
		   int *err_line)
{
	memset(ring, 0, sizeof(*ring));
	int line_no = 0;
	size_t pos = 0;
	while (pos < len) {
		size_t end = pos;
		while (end < len && text[end] != '\n')
			end++;
		line_no++;
		int rc = seal__add_line(ring, text + pos, end - pos);
		if (rc != 0) {
			if (err_line != NULL)
				*err_line = line_no;
			sodium_memzero(ring, sizeof(*ring));
			return rc;
		}
		pos = end + 1;
	}
	if (ring->count == 0) {
		if (err_line != NULL)
			*err_line = 0;
		return MESH_ENOENT;
	}
	return 0;
}

int
seal_keyring_load(struct seal_keyring *ring, const char *path, int *err_line)
{
	char text[SEAL_FILE_MAX];
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return MESH_EIO;
	size_t n = fread(text, 1, sizeof(text), f);
	int too_big = n == sizeof(text);
	int failed = ferror(f);
	fclose(f);
	if (failed)
		return MESH_EIO;
	if (too_big)
		return MESH_ETOOBIG;
	int rc = seal_keyring_parse(ring, text, n, err_line);
	sodium_memzero(text, sizeof(text));
	return rc;
}

/* Reads all of @fd into @text (capacity @cap): 0, MESH_EIO or
 * MESH_ETOOBIG. */
static int
seal__read_all(int fd, char *text, size_t cap, size_t *len, int *sys_errno)
{
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, text + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*sys_errno = errno;
			return MESH_EIO;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n == cap)
			return MESH_ETOOBIG;
	}
	*len = n;
	return 0;
}

int
seal_keyring_read(struct seal_keyring *ring, const char *path, uid_t uid,
		  unsigned flags, struct seal_file *info)
{
	memset(info, 0, sizeof(*info));
	/* O_NONBLOCK: a FIFO put in the keyring's place must not hang the
	 * agent's loop; it has no effect on a regular file. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		info->sys_errno = errno;
		return MESH_EIO;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		info->sys_errno = errno;
		close(fd);
		return MESH_EIO;
	}
	info->mode = (unsigned)(st.st_mode & 07777);
	info->uid = (unsigned long)st.st_uid;
	info->not_regular = !S_ISREG(st.st_mode);
	info->loose = (st.st_mode & 077) != 0;
	info->foreign = st.st_uid != uid && st.st_uid != 0;
	if (info->not_regular) {
		close(fd);
		return MESH_EINVAL;
	}
	if ((info->loose || info->foreign) &&
	    !(flags & SEAL_FILE_INSECURE_OK)) {
		close(fd);
		return MESH_ESTATE;
	}
	char text[SEAL_FILE_MAX];
	size_t len = 0;
	int rc = seal__read_all(fd, text, sizeof(text), &len, &info->sys_errno);
	close(fd);
	struct seal_keyring tmp;
	if (rc == 0)
		rc = seal_keyring_parse(&tmp, text, len, &info->err_line);
	sodium_memzero(text, sizeof(text));
	if (rc == 0)
		*ring = tmp;
	sodium_memzero(&tmp, sizeof(tmp));
	return rc;
}

unsigned
seal_keyring_replace(struct seal_keyring *ring, struct seal_keyring *next)
{
	uint64_t counts[SEAL_MAX_KEYS] = {0};
	unsigned common = 0;
	for (unsigned i = 0; i < next->count; i++) {
		for (unsigned j = 0; j < ring->count; j++) {
			if (sodium_memcmp(next->keys[i], ring->keys[j],
					  SEAL_KEY_BYTES) != 0)
				continue;
			common++;
			if (ring->opened != NULL)
				counts[i] = ring->opened[j];
			break;
		}
	}
	memcpy(ring->keys, next->keys, sizeof(ring->keys));
	ring->count = next->count;
	/* The primary may have changed: start a new salt, as a keyring
	 * read afresh would (seal.h, why nonces never repeat). */
	sodium_memzero(&ring->nonce, sizeof(ring->nonce));
	if (ring->opened != NULL)
		memcpy(ring->opened, counts, sizeof(counts));
	sodium_memzero(next, sizeof(*next));
	return common;
}

void
seal_key_fingerprint(const uint8_t key[SEAL_KEY_BYTES],
		     char out[SEAL_FINGERPRINT_HEX + 1])
{
	uint8_t h[32];
	crypto_generichash(h, sizeof(h), key, SEAL_KEY_BYTES, NULL, 0);
	sodium_bin2hex(out, SEAL_FINGERPRINT_HEX + 1, h,
		       SEAL_FINGERPRINT_HEX / 2);
}

int
seal_keyring_generate(char *buf, size_t cap)
{
	uint8_t key[SEAL_KEY_BYTES];
	char b64[sodium_base64_ENCODED_LEN(SEAL_KEY_BYTES,
					   sodium_base64_VARIANT_ORIGINAL)];
	randombytes_buf(key, sizeof(key));
	sodium_bin2base64(b64, sizeof(b64), key, sizeof(key),
			  sodium_base64_VARIANT_ORIGINAL);
	sodium_memzero(key, sizeof(key));
	int n = snprintf(buf, cap,
			 "# packmesh keyring: first key seals, all keys open\n"
			 "%s\n",
			 b64);
	sodium_memzero(b64, sizeof(b64));
	return n < 0 || (size_t)n >= cap ? MESH_ERANGE : 0;
}

/*
 * Writes the next version-2 nonce of @ring into @wire (SEAL_NONCE_BYTES)
 * and moves the state on; seal.h says why nonces never repeat under a key.
 * A counter is handed out once per salt: after UINT32_MAX the state goes
 * back to "no salt", so the next seal draws a new one instead of wrapping
 * to 0 under the old.
 */
static void
seal__next_nonce(struct seal_keyring *ring, uint8_t wire[SEAL_NONCE_BYTES])
{
	if (!ring->nonce.ready) {
		randombytes_buf(ring->nonce.salt, sizeof(ring->nonce.salt));
		ring->nonce.next = 0;
		ring->nonce.ready = true;
	}
	uint32_t ctr = ring->nonce.next;
	memcpy(wire, ring->nonce.salt, SEAL_SALT_BYTES);
	wire[SEAL_SALT_BYTES] = (uint8_t)(ctr >> 24);
	wire[SEAL_SALT_BYTES + 1] = (uint8_t)(ctr >> 16);
	wire[SEAL_SALT_BYTES + 2] = (uint8_t)(ctr >> 8);
	wire[SEAL_SALT_BYTES + 3] = (uint8_t)ctr;
	if (ctr == UINT32_MAX)
		ring->nonce.ready = false;
	else
		ring->nonce.next = ctr + 1;
}

int
seal_seal(struct seal_keyring *ring, const uint8_t *plain, size_t len,
	  uint8_t *out, size_t cap, size_t *out_len)
{
	if (ring->count == 0)
		return MESH_ESTATE;
	if (cap < SEAL_OVERHEAD || len > cap - SEAL_OVERHEAD)
		return MESH_ETOOBIG;
	out[0] = SEAL_VERSION;
	seal__next_nonce(ring, out + 1);
	/* The wire's 12 bytes, then 12 zero bytes. */
	uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES] = {0};
	memcpy(nonce, out + 1, SEAL_NONCE_BYTES);
	unsigned long long clen = 0;
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + 1 + SEAL_NONCE_BYTES,
						   &clen, plain, len, out, 1,
						   NULL, nonce, ring->keys[0]);
	*out_len = 1 + SEAL_NONCE_BYTES + (size_t)clen;
	return 0;
}

int
seal_open(const struct seal_keyring *ring, const uint8_t *sealed, size_t len,
	  uint8_t *out, size_t cap, size_t *out_len)
{
	/* Shorter than any version's overhead: truncated, whatever byte 0
	 * says. */
	if (len < SEAL_OVERHEAD)
		return MESH_ETRUNC;
	size_t nonce_len;
	if (sealed[0] == SEAL_VERSION)
		nonce_len = SEAL_NONCE_BYTES;
	else if (sealed[0] == SEAL_VERSION_1)
		nonce_len = SEAL_NONCE_V1_BYTES;
	else
		return MESH_EVERSION;
	if (len < 1 + nonce_len + SEAL_TAG_BYTES)
		return MESH_ETRUNC;
	if (cap < len - 1 - nonce_len - SEAL_TAG_BYTES)
		return MESH_ETOOBIG;
	/* Version 2's 12 bytes are padded with zeros, version 1's fill it. */
	uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES] = {0};
	memcpy(nonce, sealed + 1, nonce_len);
	const uint8_t *c = sealed + 1 + nonce_len;
	size_t clen = len - 1 - nonce_len;
	for (unsigned i = 0; i < ring->count; i++) {
		unsigned long long mlen = 0;
		if (crypto_aead_xchacha20poly1305_ietf_decrypt(
			out, &mlen, NULL, c, clen, sealed, 1, nonce,
			ring->keys[i]) == 0) {
			*out_len = (size_t)mlen;
			if (ring->opened != NULL)
				ring->opened[i]++;
			return 0;
		}
	}
	return MESH_EAUTH;
}
