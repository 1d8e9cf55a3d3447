/* api_corr.h - the calls of Altinn Correspondence (melding), v1, and the
 * JSON they speak (../shared/altinn-broker-correspondence.md section 3).
 *
 * A correspondence is one message to one recipient. Initialize takes an
 * idempotentKey (a GUID, one recipient per key): a repeat of a key the
 * platform has seen is refused 409 (CORR-01034) without the id, and the
 * correspondence is then found by listing with ?idempotentKey=. So a
 * lost answer is resolved by asking again with the same key, never by
 * making a second one. The base URL is {platform}/correspondence/api/v1.
 * All return 0 or a negative errno, with the details in *ans. */
#ifndef ALTINNFS_API_CORR_H
#define ALTINNFS_API_CORR_H

#include <stddef.h>
#include <stdint.h>

#include "api_app.h"

struct altinn;

/* A message folder's texts, as read from it. */
struct corr_message {
	const char *resource;
	const char *name;     /* the folder's name: the default sendersReference */
	const char *markdown; /* message.md */
	size_t markdown_len;
	const char *meta;     /* meta.json, or NULL */
	size_t meta_len;
};

/* Checks the message as the platform would (title, body, meta.json's
 * names, types and lengths, language) and builds the initialize body
 * shared by every recipient: *ret_body (malloc'd JSON) without
 * recipients and key. -EINVAL with err naming the field. */
int corr_prepare(const struct corr_message *m, char **ret_body, char *err, size_t errlen);

/* POST /correspondence: the prepared body for one recipient (its URN)
 * under key, with the published attachments (ids, NULL-ended; may be
 * NULL); the new correspondence's id and status. */
int corr_initialize(struct altinn *a, const char *prepared, const char *recipient_urn,
		    const char *key, const char *const *attachments, char **ret_id,
		    char **ret_status, struct app_answer *ans);

/* Whether an attachment's file name is one the platform takes (its
 * ValidateAttachmentName: 1..255 characters, an allowed type, none of
 * <>:"/\|?* or control characters, no Windows device name). */
int corr_attachment_name_ok(const char *name, char *err, size_t errlen);

/* POST /attachment {resourceId, fileName, sendersReference, checksum}:
 * the new attachment's id. */
int corr_attachment_create(struct altinn *a, const char *resource, const char *file_name,
			   const char *reference, const char *md5, char **ret_id,
			   struct app_answer *ans);

/* POST /attachment/{id}/upload, size bytes streamed from fd. */
int corr_attachment_upload(struct altinn *a, const char *id, int fd, uint64_t size,
			   struct app_answer *ans);

/* GET /attachment/{id}: its status (UploadProcessing, Published, Failed
 * ...) and statusText. */
int corr_attachment_status(struct altinn *a, const char *id, char **ret_status, char **ret_text,
			   struct app_answer *ans);

/* GET /correspondence?resourceId=&role=Sender&idempotentKey=: the id made
 * under key; -ENOENT when there is none. */
int corr_find_by_key(struct altinn *a, const char *resource, const char *key, char **ret_id,
		     struct app_answer *ans);

/* GET /correspondence/{id}: its status. */
int corr_status(struct altinn *a, const char *id, char **ret_status, struct app_answer *ans);

/* The per-recipient results (a JSON object kept in the journal; NULL for
 * none yet) with recipient's result added: its id and status, or the
 * error and HTTP status that refused it. malloc'd. */
char *corr_result_add(const char *results, const char *recipient, const char *id,
		      const char *status, const char *error, long http_status);
/* How many recipients in results have an id (*ret_ok) and an error. */
void corr_result_count(const char *results, size_t *ret_ok, size_t *ret_failed);
/* The recipients in results whose correspondence is not yet past
 * publication (Initialized, ReadyForPublish), and their ids; NULL-ended
 * malloc'd arrays (empty when none). */
void corr_result_unsettled(const char *results, char ***ret_recipients, char ***ret_ids);
/* Whether recipient has a result already. */
int corr_result_has(const char *results, const char *recipient);

/* sent/<name>.json or failed/<name>.error.json: malloc'd JSON. */
char *corr_receipt_doc(const char *resource, const char *name, const char *results,
		       const char *error, long long journaled_ms);

/* correspondence/<resourceId>/status.json: one resource's sending. */
struct corr_status_facts {
	const char *resource;
	uint64_t pending;          /* messages in outbox/ not yet sent or failed */
	int64_t oldest_pending_ms; /* when the oldest of them was renamed in; 0: none */
	uint64_t retrying;         /* of them, failed at least once and waiting */
	uint64_t sent, failed;     /* ended, as the journal remembers them */
	const char *last_error;    /* the newest retrying item's, or NULL */
	int give_up_s;
};
char *corr_status_doc(const struct corr_status_facts *st, size_t *ret_len);

#endif
