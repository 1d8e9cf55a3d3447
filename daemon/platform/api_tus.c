/* api_tus.c - Broker's TUS upload calls (see api_tus.h).
 *
 * Three requests, each made once (http.c repeats none of them: a PATCH
 * sent again after its answer was lost would meet a moved offset, and
 * the caller asks HEAD instead). A PATCH streams its bytes from the
 * spooled file through curl's buffer, so memory does not grow with the
 * chunk. tusdotnet answers its own refusals as text/plain, which
 * app_conclude keeps as the answer's detail. */
#include "api_tus.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "altinn_i.h"
#include "config.h"
#include "http.h"
#include "xalloc.h"

#define TUS_RESUMABLE "Tus-Resumable: 1.0.0"

static char *tus_url(struct altinn *a, const char *id)
{
	if (a->cfg->broker_url)
		return xasprintf("%s/filetransfer/upload/tus/%s", a->cfg->broker_url, id);
	return xasprintf("%s/broker/api/v1/filetransfer/upload/tus/%s", a->cfg->platform, id);
}

/* An Upload-Offset value: 0 with *ret, or -EIO. */
static int parse_offset(const char *v, uint64_t *ret)
{
	char *end;
	unsigned long long n;

	if (!v || *v < '0' || *v > '9')
		return -EIO;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || *end)
		return -EIO;
	*ret = n;
	return 0;
}

int broker_tus_create(struct altinn *a, const char *id, uint64_t length, struct app_answer *ans)
{
	char len_hdr[64];
	const char *headers[] = { TUS_RESUMABLE, len_hdr, NULL };
	struct http_result res = { .retry_after_ms = -1 };
	struct http_request req = {
		.url = tus_url(a, id),
		.method = "POST",
		.headers = headers,
		.once = true,
		.result = &res,
	};
	int r;

	snprintf(len_hdr, sizeof(len_hdr), "Upload-Length: %" PRIu64, length);
	r = http_request(a->http, &req);
	r = app_conclude(r, &res, true, "TUS create", ans);
	http_result_clear(&res);
	free((char *)req.url);
	return r;
}

int broker_tus_offset(struct altinn *a, const char *id, uint64_t *ret_offset,
		      struct app_answer *ans)
{
	const char *headers[] = { TUS_RESUMABLE, NULL };
	struct http_result res = { .retry_after_ms = -1 };
	struct http_request req = {
		.url = tus_url(a, id),
		.method = "HEAD",
		.headers = headers,
		.capture = "Upload-Offset",
		.result = &res,
	};
	int r = http_request(a->http, &req);

	r = app_conclude(r, &res, false, "TUS HEAD", ans);
	if (r < 0 && (res.status == 404 || res.status == 410))
		r = -ENOENT;
	if (r == 0 && parse_offset(res.captured, ret_offset) < 0) {
		ans->outcome = APP_LATER;
		snprintf(ans->summary, sizeof(ans->summary), "TUS HEAD: HTTP %ld without an "
			 "Upload-Offset", res.status);
		r = -EIO;
	}
	http_result_clear(&res);
	free((char *)req.url);
	return r;
}

int broker_tus_patch(struct altinn *a, const char *id, int fd, uint64_t offset, uint64_t n,
		     uint64_t *ret_offset, struct app_answer *ans)
{
	char off_hdr[64];
	const char *headers[] = { TUS_RESUMABLE, off_hdr, NULL };
	struct http_result res = { .retry_after_ms = -1 };
	struct http_request req = {
		.url = tus_url(a, id),
		.method = "PATCH",
		.content_type = "application/offset+octet-stream",
		.headers = headers,
		.has_body_fd = true,
		.body_fd = fd,
		.body_offset = offset,
		.body_len = (size_t)n,
		.stall_timeout = a->cfg->write_timeout,
		.bulk = true,
		.once = true,
		.capture = "Upload-Offset",
		.result = &res,
	};
	int r;

	snprintf(off_hdr, sizeof(off_hdr), "Upload-Offset: %" PRIu64, offset);
	r = http_request(a->http, &req);
	r = app_conclude(r, &res, true, "TUS PATCH", ans);
	if (r == 0 && parse_offset(res.captured, ret_offset) < 0) {
		/* taken, but how far: the same as no answer */
		ans->outcome = APP_UNKNOWN;
		snprintf(ans->summary, sizeof(ans->summary), "TUS PATCH: HTTP %ld without an "
			 "Upload-Offset", res.status);
		r = -EIO;
	}
	http_result_clear(&res);
	free((char *)req.url);
	return r;
}
