/* content.h - the generated files at the top of the mount: README.txt and
 * status.json. Each call renders the whole document from what the daemon
 * already knows (no request is made); the caller frees it. */
#ifndef ALTINNFS_CONTENT_H
#define ALTINNFS_CONTENT_H

#include <stddef.h>

struct fs;

char *content_readme(struct fs *fs, size_t *ret_len);
char *content_status(struct fs *fs, size_t *ret_len);
/* <root>/<scope>/status.json of scope (1 + an index in fs->scopes), from
 * its family; NULL when it has none. */
char *content_scope_status(struct fs *fs, int scope, size_t *ret_len);

#endif
