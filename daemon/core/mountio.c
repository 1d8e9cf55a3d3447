/* mountio.c - the daemon writing into its own mount (see mountio.h). */
#include "mountio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "xalloc.h"

/* More suffixes than this means something is wrong, not busy. */
#define MAX_SUFFIX 10000

char *mountio_suffixed(const char *name, unsigned n)
{
	const char *dot = strrchr(name, '.');

	if (n == 0)
		return xstrdup(name);
	if (!dot || dot == name)
		return xasprintf("%s-%u", name, n);
	return xasprintf("%.*s-%u%s", (int)(dot - name), name, n, dot);
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Renames from to dir/name (suffixed when unique and taken). */
static int place(const char *from, const char *dir, const char *name, bool unique, char **ret_name)
{
	for (unsigned n = 0; n < MAX_SUFFIX; n++) {
		char *candidate = mountio_suffixed(name, n);
		char *to = xasprintf("%s/%s", dir, candidate);
		int r = renameat2(AT_FDCWD, from, AT_FDCWD, to, unique ? RENAME_NOREPLACE : 0);

		free(to);
		if (r == 0) {
			if (ret_name)
				*ret_name = candidate;
			else
				free(candidate);
			return 0;
		}
		free(candidate);
		if (errno != EEXIST || !unique)
			return -errno;
	}
	return -EEXIST;
}

int mountio_write(const char *dir, const char *name, const void *data, size_t len, bool unique,
		  char **ret_name)
{
	char *tmp = xasprintf("%s/.%s.%d.tmp", dir, name, (int)gettid());
	int fd, r;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = write_all(fd, data, len);
	if (close(fd) < 0 && r == 0)
		r = -errno; /* the mount fsyncs at close: its error lands here */
	if (r == 0)
		r = place(tmp, dir, name, unique, ret_name);
	if (r < 0)
		unlink(tmp);
out:
	if (r < 0)
		log_errno(r, "cannot write \"%s/%s\"", dir, name);
	free(tmp);
	return r;
}

int mountio_move(const char *path, const char *dir, const char *name, char **ret_name)
{
	int r = place(path, dir, name, true, ret_name);

	if (r < 0)
		log_errno(r, "cannot move \"%s\" to \"%s/%s\"", path, dir, name);
	return r;
}
