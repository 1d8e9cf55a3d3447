/* api_app.h - the calls the families make: App API writes, Storage looks.
 *
 * Each call makes one request (http.c never repeats a POST, nor a
 * request marked `once`) and says what its outcome means for a journal
 * that must never do a thing twice:
 *   APP_OK       it was done;
 *   APP_REFUSED  the platform said no for good (400, 403, 404, 409, 413 ...);
 *   APP_LATER    it was not done and may work later (429, 401, a failed look);
 *   APP_UNKNOWN  it may have been done (no answer, 5xx, an answer we could
 *                not read): ask the platform before trying again.
 * All return 0 (APP_OK) or a negative errno, with the details in *ans. */
#ifndef ALTINNFS_API_APP_H
#define ALTINNFS_API_APP_H

#include <stdbool.h>
#include <stdint.h>

#include "json.h"

struct altinn;

enum app_outcome { APP_OK, APP_REFUSED, APP_LATER, APP_UNKNOWN };

struct app_answer {
	enum app_outcome outcome;
	long status;         /* HTTP status; 0 when no answer came */
	char *title;         /* the platform's ProblemDetails title, or NULL */
	char *detail;        /* its detail, or a bare string answer, or NULL */
	long retry_after_ms; /* -1 when the answer gave none */
	char summary[320];   /* one line for logs and user.altinn.last_error */
};
void app_answer_clear(struct app_answer *ans);

/* POST {app}/instances with {"instanceOwner":{owner_key:owner_value}} */
int app_create_instance(struct altinn *a, const char *org, const char *app, const char *owner_key,
			const char *owner_value, struct json_outbox_instance *ret,
			struct app_answer *ans);

/* POST {app}/instances/{id}/data?dataType=, the body streamed from fd
 * (size bytes from offset 0) and shown to on_send (may be NULL) as it
 * goes; ret_id gets the new element's guid, *ret_stored (when not NULL)
 * the filename the platform stored when it is not filename, else NULL. */
int app_upload(struct altinn *a, const char *org, const char *app, const char *instance_id,
	       const char *data_type, const char *filename, const char *content_type, int fd,
	       uint64_t size, void (*on_send)(void *ctx, uint64_t off, const char *p, size_t n),
	       void *send_ctx, char **ret_id, char **ret_stored, struct app_answer *ans);

/* PUT {app}/instances/{id}/process/next: the task it moved to (NULL when
 * the process ended). */
int app_process_next(struct altinn *a, const char *org, const char *app, const char *instance_id,
		     char **ret_task, struct app_answer *ans);

/* Storage GET /instances/{id} */
int app_get_instance(struct altinn *a, const char *instance_id, struct json_outbox_instance *ret,
		     struct app_answer *ans);

/* Storage GET /instances?appId=&created=gte:since[&instanceOwner.partyId=],
 * every page; cb gets each instance (and clears it). A nonzero return
 * from cb stops the listing and is returned. */
int app_find_instances(struct altinn *a, const char *org, const char *app, const char *party_id,
		       int64_t since_ms, int (*cb)(void *ctx, struct json_outbox_instance *oi),
		       void *ctx, struct app_answer *ans);

/* POST {app}/instances/{id}/complete: the instance confirmed as received
 * (idempotent, so an answer that was lost is APP_LATER, not unknown). */
int app_complete_instance(struct altinn *a, const char *org, const char *app,
			  const char *instance_id, struct app_answer *ans);

/* Whether the service owner org may write data type t: true when t has
 * no allowedContributors, or lists "org:<org>" (app-lib's
 * AllowedContributorsHelper; "app:owned" admits nobody). */
bool app_contributor(const struct alt_data_type *t, const char *org);

/* The MIME type of a file name's extension, as the platform maps it
 * (app-lib's MimeTypeMap; application/octet-stream for one it does not
 * know); NULL when the name has no extension. */
const char *app_content_type(const char *filename);

/* The Content-Disposition value for a filename: an ASCII fallback in
 * filename="..." and the exact name in filename*=UTF-8''... */
char *app_content_disposition(const char *filename);

/* PUT {app}/instances/{id}/data/{dataId}: the element's bytes replaced
 * by size bytes of fd, its filename and content type as given. */
int app_replace_data(struct altinn *a, const char *org, const char *app, const char *instance_id,
		     const char *data_id, const char *filename, const char *content_type, int fd,
		     uint64_t size, char **ret_stored, struct app_answer *ans);
/* DELETE {app}/instances/{id}/data/{dataId} */
int app_delete_data(struct altinn *a, const char *org, const char *app, const char *instance_id,
		    const char *data_id, struct app_answer *ans);

#endif
