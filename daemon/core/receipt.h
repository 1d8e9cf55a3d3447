/* receipt.h - the one writer of receipts and dead letters.
 *
 * How a family's durable item ends, for the user to see: a receipt (a
 * JSON document) in its sent/ area, or a dead letter in failed/: the
 * item's bytes under their name and, beside them, <name>.error.json
 * saying why. The outbox and instance writes end their items here.
 *
 * Every file is written through the mount (mountio.h), from a thread that
 * serves no FUSE request, so inotify watchers see it arrive whole: it is
 * written under a dot-name, synced when it is closed (the local area
 * fsyncs a file, and its folder, before close() returns), and renamed
 * into place (one IN_MOVED_TO). In a dead letter the bytes come first and
 * the letter last, so a watcher that sees the letter finds the bytes.
 * Functions return 0 or -errno, logged. */
#ifndef ALTINNFS_RECEIPT_H
#define ALTINNFS_RECEIPT_H

#include <stdbool.h>
#include <stddef.h>

/* dir/sub made where missing, each of sub's "/"-separated parts in turn
 * (a folder that exists is fine); *ret_dir gets dir/sub, also on failure
 * (the write that follows then names the error). */
int receipt_dir(const char *dir, const char *sub, char **ret_dir);

/* Writes doc as dir/name. unique: a taken name gets a numeric suffix
 * ("a.json" -> "a-1.json") and *ret_name (if not NULL) the name used;
 * otherwise an earlier copy of ours is replaced. */
int receipt_write(const char *dir, const char *name, const char *doc, bool unique,
		  char **ret_name);

/* The bytes of a dead letter: a file to move into failed/ (the outbox's
 * own file), or bytes to write (a copy of staged bytes), or neither (a
 * delete, or bytes too large to copy: the letter says where they are). */
struct receipt_bytes {
	const char *move_from; /* a path, or NULL */
	const void *data;      /* or len bytes, when not NULL */
	size_t len;
};

/* The dead letter of name in dir: the bytes (when there are any) as name,
 * suffixed when taken, then doc as <the bytes' name>.error.json, which
 * replaces an earlier copy of ours. Without bytes the letter is
 * <name>.error.json, suffixed when taken if unique. *ret_name (if not
 * NULL) gets the name the bytes got (NULL without bytes). */
int receipt_dead_letter(const char *dir, const char *name, const struct receipt_bytes *bytes,
			const char *doc, bool unique, char **ret_name);

#endif
