/* secretfile.c - reading token and key files with care (see secretfile.h).
 *
 * The mode is checked on the open descriptor (fstat), so the file judged
 * is the file read even when a rotating tool swaps a symlink between the
 * two steps. Buffers are wiped before they are freed, so a freed secret
 * does not linger in the heap for a core dump to show. */
#include "secretfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xalloc.h"

/* Any access for group or others. */
#define SECRET_OPEN_BITS 077

void secretfile_wipe(char *buf, size_t n)
{
	if (!buf)
		return;
	explicit_bzero(buf, n);
	free(buf);
}

void secretfile_free(char *s)
{
	if (s)
		secretfile_wipe(s, strlen(s));
}

static int read_all(int fd, size_t cap, char **ret, size_t *ret_len)
{
	char *buf = xmalloc(cap + 1);
	size_t len = 0;

	for (;;) {
		ssize_t n = read(fd, buf + len, cap + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (size_t)n + len > cap) {
			int r = n < 0 ? -errno : -EFBIG;

			secretfile_wipe(buf, cap + 1);
			return r;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	return 0;
}

int secretfile_read(const char *path, size_t cap, char **ret, size_t *ret_len,
		    struct stat *ret_st)
{
	struct stat st;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out_close;
	}
	if (st.st_mode & SECRET_OPEN_BITS) {
		r = -EPERM;
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		goto out_close;
	}
	r = read_all(fd, cap, ret, ret_len);
	if (r == 0 && ret_st)
		*ret_st = st;
out_close:
	close(fd);
	return r;
}

void secretfile_describe(const char *what, const char *path, int r, char *buf, size_t size)
{
	struct stat st;

	switch (r) {
	case -EPERM:
		if (stat(path, &st) < 0)
			st.st_mode = 0;
		snprintf(buf, size, "%s \"%s\" is %s by group or others (mode %04o): chmod 600 it",
			 what, path, st.st_mode & 044 ? "readable" : st.st_mode & 022 ? "writable"
										: "usable",
			 (unsigned)(st.st_mode & 07777));
		break;
	case -EFBIG:
		snprintf(buf, size, "%s \"%s\" is larger than a secret can be", what, path);
		break;
	case -EINVAL:
		snprintf(buf, size, "%s \"%s\" is not a regular file", what, path);
		break;
	default:
		snprintf(buf, size, "cannot read %s \"%s\": %s", what, path, strerror(-r));
		break;
	}
}

int secretfile_check(const char *what, const char *path, char **ret_err)
{
	char msg[512];
	struct stat st;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		r = -errno;
	else if (fstat(fd, &st) < 0)
		r = -errno;
	else if (st.st_mode & SECRET_OPEN_BITS)
		r = -EPERM;
	else if (!S_ISREG(st.st_mode))
		r = -EINVAL;
	if (fd >= 0)
		close(fd);
	if (r < 0) {
		secretfile_describe(what, path, r, msg, sizeof(msg));
		*ret_err = xstrdup(msg);
	}
	return r;
}

bool secretfile_clean(char *s)
{
	size_t start = strspn(s, " \t\r\n"), len = strlen(s + start);

	while (len && strchr(" \t\r\n", s[start + len - 1]))
		len--;
	if (len >= 2 && s[start] == '"' && s[start + len - 1] == '"') {
		start++;
		len -= 2;
	}
	memmove(s, s + start, len);
	s[len] = '\0';
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return len > 0;
}

bool secretfile_same(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mode == b->st_mode && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}
