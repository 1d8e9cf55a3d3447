/* receipt.c - receipts and dead letters, written whole through the mount
 * (see receipt.h). One writer for every family, so they agree on the
 * order (bytes, then letter), the names (suffixes, never an overwrite of
 * someone else's file) and what a failure returns. */
#include "receipt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "mountio.h"
#include "xalloc.h"

int receipt_dir(const char *dir, const char *sub, char **ret_dir)
{
	char *path = xasprintf("%s/%s", dir, sub);
	size_t base = strlen(dir) + 1;
	int r = 0;

	/* each part in turn: dir/a, dir/a/b, ... */
	for (char *p = path + base;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST && r == 0)
			r = log_errno(-errno, "cannot create \"%s\"", path);
		*p = c;
		if (!c)
			break;
	}
	*ret_dir = path;
	return r;
}

int receipt_write(const char *dir, const char *name, const char *doc, bool unique,
		  char **ret_name)
{
	return mountio_write(dir, name, doc, strlen(doc), unique, unique ? ret_name : NULL);
}

int receipt_dead_letter(const char *dir, const char *name, const struct receipt_bytes *bytes,
			const char *doc, bool unique, char **ret_name)
{
	char *used = NULL, *letter;
	bool placed = false;
	int r = 0;

	if (bytes && bytes->move_from) {
		r = mountio_move(bytes->move_from, dir, name, &used);
		placed = r == 0;
	} else if (bytes && bytes->data) {
		r = mountio_write(dir, name, bytes->data, bytes->len, true, &used);
		placed = r == 0;
	}
	if (r < 0)
		return r;
	if (placed && strcmp(used, name) != 0)
		log_warn("\"%s/%s\" was taken: the dead letter's bytes are \"%s\"", dir, name, used);
	letter = xasprintf("%s.error.json", placed ? used : name);
	/* beside its bytes it is ours to replace; alone it is never anyone else's */
	r = mountio_write(dir, letter, doc, strlen(doc), !placed && unique, NULL);
	free(letter);
	if (ret_name)
		*ret_name = used;
	else
		free(used);
	return r;
}
