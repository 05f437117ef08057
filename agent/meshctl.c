/*
 * meshctl - asks the local meshd over DIR/meshd.sock.
 *
 *   meshctl [--data-dir DIR] status [--json]
 *   meshctl [--data-dir DIR] members [--json]
 *   meshctl [--data-dir DIR] packs [--json]
 *   meshctl [--data-dir DIR] place ID [--json]
 *   meshctl [--data-dir DIR] drain
 *   meshctl [--data-dir DIR] leave
 *   meshctl keygen
 */
#include "admin.h"
#include "seal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define MESHCTL_DEFAULT_DIR "/var/lib/packmesh"
#define MESHCTL_TIMEOUT_S 5

static void
meshctl_usage(FILE *f)
{
	fprintf(f, "usage: meshctl [--data-dir DIR] status|members [--json]\n"
		   "       meshctl [--data-dir DIR] packs [--json]\n"
		   "       meshctl [--data-dir DIR] place ID [--json]\n"
		   "       meshctl [--data-dir DIR] drain|leave\n"
		   "       meshctl keygen\n"
		   "DIR defaults to $MESH_DATA_DIR, then " MESHCTL_DEFAULT_DIR
		   ".\n");
}

static int
meshctl_ask(const char *dir, const char *line)
{
	struct sockaddr_un sa = {0};
	sa.sun_family = AF_UNIX;
	int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir,
			 ADMIN_SOCKET_NAME);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
		fprintf(stderr, "meshctl: data dir path too long: %s\n", dir);
		return 1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "meshctl: socket: %s\n", strerror(errno));
		return 1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		fprintf(stderr, "meshctl: no agent running at %s (%s)\n",
			sa.sun_path, strerror(errno));
		close(fd);
		return 1;
	}
	struct timeval tv = {MESHCTL_TIMEOUT_S, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	size_t len = strlen(line);
	if (write(fd, line, len) != (ssize_t)len) {
		fprintf(stderr, "meshctl: cannot send to agent: %s\n",
			strerror(errno));
		close(fd);
		return 1;
	}
	size_t cap = 65536, got = 0;
	char *buf = malloc(cap + 1);
	for (;;) {
		if (buf == NULL) {
			fprintf(stderr, "meshctl: out of memory\n");
			close(fd);
			return 1;
		}
		ssize_t r = read(fd, buf + got, cap - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "meshctl: no answer from agent: %s\n",
				strerror(errno));
			free(buf);
			close(fd);
			return 1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
		if (got == cap) {
			cap *= 2;
			char *p = realloc(buf, cap + 1);
			if (p == NULL)
				free(buf);
			buf = p;
		}
	}
	close(fd);
	buf[got] = 0;
	int rc = 0;
	if (got == 0) {
		fprintf(stderr, "meshctl: agent closed without answering\n");
		rc = 1;
	} else if (strncmp(buf, "error: ", 7) == 0) {
		fprintf(stderr, "meshctl: %s", buf + 7);
		rc = 1;
	} else {
		fputs(buf, stdout);
	}
	free(buf);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *dir = getenv("MESH_DATA_DIR");
	if (dir == NULL || dir[0] == 0)
		dir = MESHCTL_DEFAULT_DIR;
	int i = 1;
	while (i < argc && strncmp(argv[i], "--", 2) == 0) {
		if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc) {
			dir = argv[i + 1];
			i += 2;
		} else if (strncmp(argv[i], "--data-dir=", 11) == 0) {
			dir = argv[i] + 11;
			i++;
		} else if (strcmp(argv[i], "--help") == 0) {
			meshctl_usage(stdout);
			return 0;
		} else {
			break;
		}
	}
	if (i >= argc) {
		meshctl_usage(stderr);
		return 2;
	}
	const char *cmd = argv[i++];
	const char *arg = NULL;
	int json = 0;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = 1;
		} else if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc) {
			dir = argv[++i];
		} else if (strcmp(cmd, "place") == 0 && arg == NULL &&
			   argv[i][0] != '-' && strlen(argv[i]) < 32) {
			arg = argv[i];
		} else {
			fprintf(stderr, "meshctl: unexpected argument '%s'\n",
				argv[i]);
			meshctl_usage(stderr);
			return 2;
		}
	}
	if (strcmp(cmd, "keygen") == 0) {
		char text[256];
		if (seal_init() != 0 ||
		    seal_keyring_generate(text, sizeof(text)) != 0) {
			fprintf(stderr, "meshctl: cannot generate a key\n");
			return 1;
		}
		fputs(text, stdout);
		return 0;
	}
	bool with_json = strcmp(cmd, "status") == 0 ||
			 strcmp(cmd, "members") == 0 ||
			 strcmp(cmd, "packs") == 0 || strcmp(cmd, "place") == 0;
	if (!with_json && strcmp(cmd, "leave") != 0 &&
	    strcmp(cmd, "drain") != 0) {
		fprintf(stderr, "meshctl: unknown command '%s'\n", cmd);
		meshctl_usage(stderr);
		return 2;
	}
	if (json && !with_json) {
		fprintf(stderr, "meshctl: %s takes no --json\n", cmd);
		return 2;
	}
	if (strcmp(cmd, "place") == 0 && arg == NULL) {
		fprintf(stderr, "meshctl: place needs a pack id\n");
		return 2;
	}
	char line[96];
	snprintf(line, sizeof(line), "%s%s%s%s\n", cmd, arg ? " " : "",
		 arg ? arg : "", json ? " --json" : "");
	return meshctl_ask(dir, line);
}
