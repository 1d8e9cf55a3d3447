/* secretfile.h - small files that hold a secret: a token, a key.
 *
 * A secret file must be for its owner's eyes only: one that group or
 * others may read or write (any of mode 077) is refused with a message
 * that says how to fix it, at start (config_check) and every time it is
 * read again, as ssh does with private keys. What is read is capped (a
 * secret is small) and wiped when freed. Nothing here logs. */
#ifndef ALTINNFS_SECRETFILE_H
#define ALTINNFS_SECRETFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

/* Reads at most cap bytes into a NUL-terminated malloc'd buffer (free it
 * with secretfile_wipe(buf, len + 1)). -EPERM when the mode lets group or
 * others in, -EFBIG past cap, or the -errno of open/read. */
int secretfile_read(const char *path, size_t cap, char **ret, size_t *ret_len,
		    struct stat *ret_st);

/* One line for an error of secretfile_read or secretfile_check, naming the
 * file as `what` ("token file"): "token file "/x" is readable by group or
 * others (mode 0644): chmod 600 it". */
void secretfile_describe(const char *what, const char *path, int r, char *buf, size_t size);

/* For start-up: the file exists, can be read and has a safe mode. 0, or
 * -errno with a malloc'd message in *ret_err. */
int secretfile_check(const char *what, const char *path, char **ret_err);

/* Strips surrounding whitespace, then one pair of quotes, in place. False
 * when what is left is empty or not header-safe (visible ASCII only), so
 * a stray newline can never become an injected header. */
bool secretfile_clean(char *s);

/* The same file with the same content and mode, as far as stat can tell. */
bool secretfile_same(const struct stat *a, const struct stat *b);

/* Overwrites n bytes of buf, then frees it; NULL is fine. */
void secretfile_wipe(char *buf, size_t n);
/* The same for a NUL-terminated secret (a token, an assertion, a header
 * holding a key): the one way every file frees one. */
void secretfile_free(char *s);

#endif
