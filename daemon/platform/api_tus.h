/* api_tus.h - Broker's TUS 1.0.0 resumable upload, for large files.
 *
 * The upload of a transfer lives at {broker}/filetransfer/upload/tus/{id}
 * (altinn-broker TusEndpointExtensions.cs; the upload's id is the file
 * transfer's, so its URL is known without the create's Location). A
 * POST with Upload-Length creates it (a second one starts it again at
 * offset 0), HEAD tells how many bytes the platform holds, PATCH appends
 * bytes at that offset. No Upload-Checksum is ever sent: Broker's store
 * advertises md5 but fails every per-chunk check; the file's MD5 given
 * at initialize is checked once the last byte is in. Each call makes
 * one request and sorts its outcome as api_app.h does. */
#ifndef ALTINNFS_API_TUS_H
#define ALTINNFS_API_TUS_H

#include <stdint.h>

#include "api_app.h"

struct altinn;

/* POST .../upload/tus/{id} with Upload-Length: length (201). */
int broker_tus_create(struct altinn *a, const char *id, uint64_t length, struct app_answer *ans);

/* HEAD .../upload/tus/{id}: the platform's Upload-Offset in *ret_offset.
 * -ENOENT when it has no such upload (404, 410: never made, or expired). */
int broker_tus_offset(struct altinn *a, const char *id, uint64_t *ret_offset,
		      struct app_answer *ans);

/* PATCH .../upload/tus/{id}: n bytes of fd from offset, streamed, sent
 * at Upload-Offset: offset; the platform's new offset in *ret_offset. */
int broker_tus_patch(struct altinn *a, const char *id, int fd, uint64_t offset, uint64_t n,
		     uint64_t *ret_offset, struct app_answer *ans);

#endif
