/* readahead.c - widens the kernel's read-ahead window on our own mount
 * (the bdi knob of the mount's device), found without touching the mount.
 * ops.c calls it at every open; only the first call does anything. */
#include "fs_i.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Undoes mountinfo's octal escapes (\040 for a space, \134 for a
 * backslash ...) in place. */
static void unescape_mountinfo(char *s)
{
	char *w = s;

	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

/* The device number of our own mount, from /proc/self/mountinfo. Not
 * from stat(mountpoint): a stat in flight holds the mount, and an
 * `fusermount3 -u` at that instant fails with EBUSY (seen once in 20
 * mount-then-unmount runs). The last matching FUSE line wins, as the
 * newest of stacked mounts is the one on top. */
static int own_device(const char *mountpoint, unsigned *maj, unsigned *min)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int found = -ENOENT;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		unsigned ma, mi;
		char mp[4096], *dash;

		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &ma, &mi, mp) != 3)
			continue;
		dash = strstr(line, " - ");
		if (!dash || strncmp(dash + 3, "fuse", 4) != 0)
			continue;
		unescape_mountinfo(mp);
		if (strcmp(mp, mountpoint) == 0) {
			*maj = ma;
			*min = mi;
			found = 0;
		}
	}
	free(line);
	fclose(f);
	return found;
}

/* The kernel reads ahead 128 KiB at a time on a FUSE mount; 1 MiB
 * windows let one sequential reader keep a read-ahead stream busy (cat
 * of a 256 MiB file: 0.20 s -> 0.165 s here; 4 MiB was slower again).
 * Best effort: only root may write the knob, and a failure costs only
 * speed. The kernel sets the window when it takes the answer to FUSE's
 * INIT, so this runs at the first open, which comes after that answer;
 * a write from the warm-up thread could come before it and be undone. */
void fs_tune_read_ahead_once(struct fs *fs)
{
	char path[96];
	unsigned maj, min;
	FILE *f;

	if (atomic_exchange(&fs->read_ahead_tuned, true))
		return;
	if (own_device(fs->mountpoint, &maj, &min) < 0) {
		log_debug("cannot find the mount \"%s\" in /proc/self/mountinfo", fs->mountpoint);
		return;
	}
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", maj, min);
	f = fopen(path, "w");
	if (!f) {
		log_debug("cannot tune read-ahead at \"%s\": %s", path, strerror(errno));
		return;
	}
	fputs("1024\n", f);
	if (fclose(f) != 0)
		log_debug("cannot tune read-ahead at \"%s\": %s", path, strerror(errno));
}
