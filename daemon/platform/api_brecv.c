/* api_brecv.c - the calls of Altinn Broker a recipient makes (see
 * api_brecv.h).
 *
 * A download is the one call here that changes something on the
 * platform while looking like a read: Broker records DownloadStarted for
 * us at every GET .../download (a ranged one at most once per five
 * minutes). So nothing here downloads unless asked to, and the probe (one
 * byte) exists for the confirmation of a file never read, which Broker
 * refuses until a download has started. The bytes go straight to a file
 * descriptor as they come: memory stays bounded whatever the size. */
#include "api_brecv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "altinn_i.h"
#include "cache.h"
#include "config.h"
#include "http.h"
#include "json_brecv.h"
#include "json_broker.h"
#include "sha256.h"
#include "xalloc.h"

/* {broker_url or platform/broker/api/v1}/filetransfer{tail} */
static char *url_of(struct altinn *a, const char *tail)
{
	if (a->cfg->broker_url)
		return xasprintf("%s/filetransfer%s", a->cfg->broker_url, tail);
	return xasprintf("%s/broker/api/v1/filetransfer%s", a->cfg->platform, tail);
}

void brecv_ids_free(char **ids)
{
	for (size_t i = 0; ids && ids[i]; i++)
		free(ids[i]);
	free(ids);
}

int brecv_search(struct altinn *a, const char *resource, const char *recipient_status,
		 char ***ret_ids, struct app_answer *ans)
{
	char *res_e = http_escape(resource), *st_e = http_escape(recipient_status), *tail;
	struct http_result res = { .retry_after_ms = -1 };
	struct http_request req = { .result = &res };
	int r;

	tail = xasprintf("?resourceId=%s&status=Published&recipientStatus=%s", res_e, st_e);
	req.url = url_of(a, tail);
	r = http_request(a->http, &req);
	r = app_conclude(r, &res, false, "search", ans);
	if (r == 0 && (!res.body || jsn_broker_ids(res.body, res.body_len, ret_ids) < 0)) {
		ans->outcome = APP_LATER;
		snprintf(ans->summary, sizeof(ans->summary), "search: not a list of ids");
		r = -EIO;
	}
	http_result_clear(&res);
	free((char *)req.url);
	free(tail);
	free(st_e);
	free(res_e);
	return r;
}

void brecv_overview_clear(struct brecv_overview *ov)
{
	free(ov->doc);
	free(ov->file_name);
	free(ov->status);
	free(ov->my_status);
	free(ov->sender);
	free(ov->checksum);
	memset(ov, 0, sizeof(*ov));
}

int brecv_overview(struct altinn *a, const char *id, const char *me,
		   char *(*local_name)(void *ctx, const char *file_name), void *ctx,
		   struct brecv_overview *ret, struct app_answer *ans)
{
	char *tail = xasprintf("/%s", id);
	struct http_result res = { .retry_after_ms = -1 };
	struct http_request req = { .url = url_of(a, tail), .result = &res };
	int r = http_request(a->http, &req);

	memset(ret, 0, sizeof(*ret));
	r = app_conclude(r, &res, false, "overview", ans);
	if (r == 0 && (!res.body || jsn_brecv_overview(res.body, res.body_len, me, local_name,
							ctx, ret) < 0)) {
		brecv_overview_clear(ret);
		ans->outcome = APP_LATER;
		snprintf(ans->summary, sizeof(ans->summary), "overview: not an overview");
		r = -EIO;
	}
	http_result_clear(&res);
	free((char *)req.url);
	free(tail);
	return r;
}

struct sink {
	int fd;
	uint64_t n;
	struct md5 *md5; /* of what was written, or NULL */
};

/* A retry starts the body over: so does the file, and its MD5. */
static int sink_head(void *ctx, const struct http_head *head)
{
	struct sink *s = ctx;
	char ignored[33];

	(void)head;
	s->n = 0;
	if (s->md5) {
		md5_finish(s->md5, ignored);
		s->md5 = md5_new();
	}
	if (s->fd >= 0 && (ftruncate(s->fd, 0) < 0 || lseek(s->fd, 0, SEEK_SET) < 0))
		return -errno;
	return 0;
}

static int sink_data(void *ctx, const char *p, size_t n)
{
	struct sink *s = ctx;

	if (s->md5)
		md5_update(s->md5, p, n);
	while (s->fd >= 0 && n > 0) {
		ssize_t w = write(s->fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
		s->n += (uint64_t)w;
	}
	return 0;
}

int brecv_download(struct altinn *a, const char *id, int fd, bool probe, char ret_md5[33],
		   uint64_t *ret_size, struct app_answer *ans)
{
	char *tail = xasprintf("/%s/download", id);
	struct sink s = { .fd = fd, .md5 = probe ? NULL : md5_new() };
	char digest[33] = "";
	struct http_result res = { .retry_after_ms = -1 };
	struct http_request req = {
		.url = url_of(a, tail),
		.accept = "application/octet-stream",
		.has_range = probe,
		.range_first = 0,
		.range_last = 0,
		.bulk = !probe,
		.on_head = sink_head,
		.on_data = sink_data,
		.ctx = &s,
		.restartable = true,
		.result = &res,
	};
	int r = http_request(a->http, &req);

	if (probe && res.status == 416) {
		/* an empty file has no first byte: ask for all of it (nothing) */
		http_result_clear(&res);
		res = (struct http_result){ .retry_after_ms = -1 };
		req.has_range = false;
		r = http_request(a->http, &req);
	}
	r = app_conclude(r, &res, false, "download", ans);
	if (s.md5)
		md5_finish(s.md5, digest);
	if (r == 0 && !probe) {
		r = fsync(fd) < 0 ? -errno : 0;
		memcpy(ret_md5, digest, 33);
		if (ret_size)
			*ret_size = s.n;
	}
	http_result_clear(&res);
	free((char *)req.url);
	free(tail);
	return r;
}

int brecv_reader_open(struct altinn *a, const char *id, uint64_t size, const char *md5,
		      struct alt_reader **ret)
{
	char *tail = xasprintf("/%s/download", id), *url = url_of(a, tail);
	int r = reader_open_checked(a, url, id, size, md5, ret);

	free(url);
	free(tail);
	return r;
}

void brecv_forget_bytes(struct altinn *a, const char *id)
{
	cache_forget_checked(a->cache, id);
}

int brecv_events(struct altinn *a, const char *resource, const char *me, const char *after,
		 unsigned size, struct json_event **ret, size_t *ret_n, struct app_answer *ans)
{
	char *res = xasprintf("urn:altinn:resource:%s", resource);
	char *sub = xasprintf("urn:altinn:organization:identifier-no:%s", me);
	char *res_e = http_escape(res), *sub_e = http_escape(sub), *after_e = http_escape(after);
	struct http_result res_ = { .retry_after_ms = -1 };
	struct http_request req = { .result = &res_ };
	int r;

	req.url = xasprintf("%s/events/api/v1/events?resource=%s&subject=%s&after=%s&size=%u",
			    a->cfg->platform, res_e, sub_e, after_e, size);
	r = http_request(a->http, &req);
	r = app_conclude(r, &res_, false, "events", ans);
	if (r == 0 && (!res_.body || json_parse_events(res_.body, res_.body_len, ret, ret_n) < 0)) {
		ans->outcome = APP_LATER;
		snprintf(ans->summary, sizeof(ans->summary), "events: not a list of events");
		r = -EIO;
	}
	http_result_clear(&res_);
	free((char *)req.url);
	free(after_e);
	free(sub_e);
	free(res_e);
	free(sub);
	free(res);
	return r;
}

char *brecv_event_transfer(const struct json_event *ev)
{
	return ev->doc ? jsn_brecv_event_transfer(ev->doc, ev->doc_len) : NULL;
}

bool brecv_event_as_sender(const struct json_event *ev)
{
	return ev->doc && jsn_brecv_event_as_sender(ev->doc, ev->doc_len);
}

int brecv_confirm(struct altinn *a, const char *id, struct app_answer *ans)
{
	char *tail = xasprintf("/%s/confirmdownload", id);
	struct http_result res = { .retry_after_ms = -1 };
	struct http_request req = {
		.url = url_of(a, tail),
		.method = "POST",
		.result = &res,
	};
	int r = http_request(a->http, &req);

	/* confirming twice is harmless (Broker answers 204 again): a lost
	 * answer is only "later" */
	r = app_conclude(r, &res, false, "confirm", ans);
	http_result_clear(&res);
	free((char *)req.url);
	free(tail);
	return r;
}
