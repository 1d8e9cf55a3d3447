/* api_brecv.h - the calls of Altinn Broker a recipient makes, v1.
 *
 * Receiving (../shared/altinn-broker-correspondence.md section 2): find
 * the transfers Published to us (a search, at most 100 ids, no cursor,
 * 10 calls a minute), read one's overview, download its bytes (which
 * marks us DownloadStarted: never for a listing), and confirm the
 * download (POST confirmdownload, which Broker refuses before a
 * download has started). Outcomes are sorted as api_app.h does; all
 * return 0 or a negative errno with the details in *ans. */
#ifndef ALTINNFS_API_BRECV_H
#define ALTINNFS_API_BRECV_H

#include <stdbool.h>
#include <stdint.h>

#include "api_app.h"
#include "json.h"

struct altinn;

/* GET /filetransfer?resourceId=&status=Published&recipientStatus=: the
 * ids (NULL-ended, malloc'd) of the resource's Published transfers in
 * which our organisation's status is recipient_status ("Initialized",
 * "DownloadStarted"). */
int brecv_search(struct altinn *a, const char *resource, const char *recipient_status,
		 char ***ret_ids, struct app_answer *ans);
void brecv_ids_free(char **ids);

/* What the inbox keeps of one overview. */
struct brecv_overview {
	char *doc;          /* transfer.json: the overview as Broker gave it, and localName */
	size_t doc_len;
	char *file_name;    /* as Broker gave it */
	char *status;       /* fileTransferStatus */
	char *my_status;    /* our organisation's recipient status, or NULL */
	char *sender;       /* "0192:<org>" as given */
	char *checksum;     /* may be NULL */
	uint64_t size;      /* fileTransferSize */
};
void brecv_overview_clear(struct brecv_overview *ov);

/* GET /filetransfer/{id}: me is our organisation number (9 digits),
 * local_name the name the file gets in the tree (for the document). */
int brecv_overview(struct altinn *a, const char *id, const char *me,
		   char *(*local_name)(void *ctx, const char *file_name), void *ctx,
		   struct brecv_overview *ret, struct app_answer *ans);

/* GET /filetransfer/{id}/download into fd from offset 0 (truncated
 * first; again when a retry starts over); *ret_md5 gets the bytes' MD5
 * (32 hex digits) and *ret_size their count. With probe, only the first
 * byte is asked for (Range: bytes=0-0), which is enough for Broker to
 * record DownloadStarted, and fd may be -1. */
int brecv_download(struct altinn *a, const char *id, int fd, bool probe, char ret_md5[33],
		   uint64_t *ret_size, struct app_answer *ans);

/* The transfer's bytes through the content cache (docs/cache.md), keyed
 * by its id: one GET .../download shared by every reader, started now,
 * with Range where Broker honours it to resume. Bytes are served as they
 * arrive, but the last one only after all of them matched md5 (Broker's
 * checksum; NULL: none); a mismatch fails that read with -EIO. Later
 * opens are served from the cache's copy. -ENOSPC when the cache is off
 * or cannot hold it: brecv_download instead. */
int brecv_reader_open(struct altinn *a, const char *id, uint64_t size, const char *md5,
		      struct alt_reader **ret);

/* The transfer's bytes leave the content cache (it was confirmed), unless
 * a reader holds them now. */
void brecv_forget_bytes(struct altinn *a, const char *id);

/* GET {platform}/events/api/v1/events?resource=urn:altinn:resource:<resource>
 * &subject=urn:altinn:organization:identifier-no:<me>&after=<after>&size=:
 * Broker's events about our organisation, in order (scope
 * altinn:events.subscribe); after "0" is from the first. Each event's
 * transfer is its resourceinstance: brecv_event_transfer(). */
int brecv_events(struct altinn *a, const char *resource, const char *me, const char *after,
		 unsigned size, struct json_event **ret, size_t *ret_n, struct app_answer *ans);
/* The fileTransferId an event is about (malloc'd), or NULL. */
char *brecv_event_transfer(const struct json_event *ev);
/* Is it about us as the transfer's sender (data.Role "Sender")? Such a
 * `published` event is of a transfer we sent, not one for the inbox. */
bool brecv_event_as_sender(const struct json_event *ev);

/* POST /filetransfer/{id}/confirmdownload */
int brecv_confirm(struct altinn *a, const char *id, struct app_answer *ans);

#endif
