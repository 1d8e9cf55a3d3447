/* json_brecv.h - Broker's JSON a recipient reads, for api_brecv.c only
 * (private to platform/: jansson stays here). */
#ifndef ALTINNFS_JSON_BRECV_H
#define ALTINNFS_JSON_BRECV_H

#include <stddef.h>

#include "api_brecv.h"

/* An overview (FileTransferOverviewExt): its facts into *ret, and
 * ret->doc, the overview with "localName" (local_name's answer for its
 * fileName) added. -EIO when it is not an overview with a fileName. */
int jsn_brecv_overview(const char *body, size_t len, const char *me,
		       char *(*local_name)(void *ctx, const char *file_name), void *ctx,
		       struct brecv_overview *ret);

/* An event's resourceinstance when it is a plain id (no '/'), malloc'd;
 * else NULL. */
char *jsn_brecv_event_transfer(const char *doc, size_t len);
/* Its data.Role is "Sender" (or data.role). */
bool jsn_brecv_event_as_sender(const char *doc, size_t len);

#endif
