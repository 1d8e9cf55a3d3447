/* bmeta.c - what a dropped file's sidecar adds to its transfer.
 *
 * outbox/<recipient>/<name>.meta.json, written before <name>, may name
 * more recipients, a propertyList and the sender's own
 * sendersFileTransferReference (docs/broker.md, "More recipients,
 * properties, a reference"). It is read once, when the file is taken for
 * sending, and checked whole before anything is asked of the platform
 * (the rules are platform/json_bmeta.c's, the mod-11 digit of every
 * organisation number is checked here), so a bad sidecar ends in
 * failed/ naming the field and nothing is made on the platform. From
 * then on the journal holds what it said: a sidecar changed afterwards
 * changes nothing, and it is EBUSY while its file is being sent. When
 * the item ends the sidecar goes too: removed beside a receipt, moved
 * beside a dead letter so that both can be dropped again. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_broker.h"
#include "broker_i.h"
#include "caps.h"
#include "config.h"
#include "log.h"
#include "xalloc.h"

#define META_SUFFIX ".meta.json"

bool br_org_number_ok(const char *s)
{
	static const int w[8] = { 3, 2, 7, 6, 5, 4, 3, 2 };
	int sum = 0, check;

	if (strlen(s) != 9 || strspn(s, "0123456789") != 9)
		return false;
	for (int i = 0; i < 8; i++)
		sum += (s[i] - '0') * w[i];
	check = 11 - sum % 11;
	if (check == 11)
		check = 0;
	return check != 10 && check == s[8] - '0';
}

char *br_outbox_path(struct broker *b, const struct queue_item *it, const char *suffix)
{
	return xasprintf("%s/broker/%s/outbox/%s/%s%s", b->mountpoint, it->f[BF_RESOURCE],
			 it->f[BF_RECIPIENT], it->f[BF_NAME], suffix);
}

char *br_meta_base(const char *name)
{
	size_t n = strlen(name), k = strlen(META_SUFFIX);

	if (n <= k || strcmp(name + n - k, META_SUFFIX) != 0)
		return NULL;
	return xasprintf("%.*s", (int)(n - k), name);
}

/* The sidecar's bytes from state_dir: 0 with *ret (NUL-ended), -ENOENT
 * when there is none, -EFBIG past ALT_BROKER_META_MAX. */
static int read_sidecar(struct broker *b, const struct queue_item *it, char **ret,
			size_t *ret_len)
{
	char *path = xasprintf("%s/broker/%s/outbox/%s/%s" META_SUFFIX, b->cfg->state_dir,
			       it->f[BF_RESOURCE], it->f[BF_RECIPIENT], it->f[BF_NAME]);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	char *buf;
	size_t n = 0;
	ssize_t k;

	free(path);
	if (fd < 0)
		return -errno;
	buf = xmalloc(ALT_BROKER_META_MAX + 2);
	while ((k = read(fd, buf + n, ALT_BROKER_META_MAX + 1 - n)) > 0 &&
	       n + (size_t)k <= ALT_BROKER_META_MAX)
		n += (size_t)k;
	close(fd);
	if (k != 0) {
		free(buf);
		return k < 0 ? -EIO : -EFBIG;
	}
	buf[n] = '\0';
	*ret = buf;
	*ret_len = n;
	return 0;
}

/* The recipients besides the folder's, checked, each once. */
static int take_recipients(const struct queue_item *it, char **list, char **ret, char *err,
			   size_t errlen)
{
	size_t cap = 1, n = 0;
	char *out;

	for (size_t i = 0; list[i]; i++)
		cap += strlen(list[i]) + 1;
	out = xcalloc(1, cap);
	for (size_t i = 0; list[i]; i++) {
		if (!br_org_number_ok(list[i])) {
			snprintf(err, errlen, "recipients[%zu]: %s is not an organisation number "
				 "(its check digit is wrong)", i, list[i]);
			free(out);
			return -EINVAL;
		}
		if (strcmp(list[i], it->f[BF_RECIPIENT]) == 0 || strstr(out, list[i]))
			continue; /* Broker keeps each once too */
		n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? " " : "", list[i]);
	}
	*ret = out;
	return 0;
}

int br_meta_load(struct broker *b, struct queue_item *it, char *err, size_t errlen)
{
	struct broker_meta m;
	char *text = NULL, *extra = NULL;
	size_t len = 0;
	int r = read_sidecar(b, it, &text, &len);

	if (r == -ENOENT)
		return 0;
	if (r == -EFBIG) {
		snprintf(err, errlen, "larger than %u bytes", ALT_BROKER_META_MAX);
		return -EINVAL;
	}
	if (r < 0)
		return r;
	r = broker_meta_parse(text, len, &m, err, errlen);
	free(text);
	if (r < 0)
		return r;
	r = take_recipients(it, m.recipients, &extra, err, errlen);
	if (r == 0) {
		queue_set(&it->f[BF_RECIPIENTS], *extra ? extra : NULL);
		queue_set(&it->f[BF_PROPS], m.property_list);
		if (m.reference)
			queue_set(&it->f[BF_REFERENCE], m.reference);
	}
	free(extra);
	broker_meta_clear(&m);
	return r;
}

void br_meta_end(struct broker *b, const struct queue_item *it, const char *failed_dir)
{
	char *from = br_outbox_path(b, it, META_SUFFIX), *to;

	if (failed_dir) {
		to = xasprintf("%s/%s" META_SUFFIX, failed_dir, it->f[BF_NAME]);
		if (rename(from, to) == 0 || errno == ENOENT) {
			free(to);
			free(from);
			return;
		}
		log_warn("broker: cannot move \"%s\" to failed/: %s", from, strerror(errno));
		free(to);
	}
	if (unlink(from) < 0 && errno != ENOENT)
		log_warn("broker: cannot remove \"%s\": %s", from, strerror(errno));
	free(from);
}
