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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

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

/* corrtext.c: what breaks the platform's text rules in s (n bytes): a
 * plain-text field (markdown false: title, summary, messageSender) with
 * Markdown or HTML, or a Markdown body (true) with HTML outside code; a
 * static description, or NULL when it is fine. */
const char *corr_text_fault(const char *s, size_t n, bool markdown);

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
 * publication (Initialized, ReadyForPublish, Reserved), and their ids;
 * NULL-ended malloc'd arrays (empty when none). */
void corr_result_unsettled(const char *results, char ***ret_recipients, char ***ret_ids);

/* ---- after publication (json_corrst.c) */

/* CorrespondenceStatusExt in its order (an overview's status is the
 * highest reached), then "Refused" (the platform refused that
 * recipient: no correspondence) and "other" (a name we do not know). */
#define CORR_N_STATUSES 16
extern const char *const corr_status_names[CORR_N_STATUSES];
int corr_status_index(const char *status); /* "other"'s for an unknown one */
/* results with the correspondence id's status set (and statusChanged,
 * when not NULL): malloc'd, or NULL when nothing changed (unknown id,
 * the same status, or upward_only and not above the one it has). */
char *corr_result_apply(const char *results, const char *id, const char *status,
			const char *changed, bool upward_only);
/* Like corr_result_unsettled; without unpublished_only, every one not
 * yet final (Failed, Confirmed, PurgedByRecipient, PurgedByAltinn). */
void corr_result_following(const char *results, bool unpublished_only, char ***ret_recipients,
			   char ***ret_ids);
/* Adds each recipient's status to counts, by corr_status_index. */
void corr_result_tally(const char *results, uint64_t counts[CORR_N_STATUSES]);
/* The status a Correspondence event's type tells (published, publish
 * failed, receiver read, receiver confirmed), or NULL. */
const char *corr_event_status(const char *type);

/* GET /correspondence/{id}/details (as the sender: no Fetched is
 * added): its status, Fetched when statusHistory has it over a plain
 * Published, and when it changed (may be NULL). */
int corr_details(struct altinn *a, const char *id, char **ret_status, char **ret_changed,
		 struct app_answer *ans);

/* One CloudEvent of the generic feed. */
struct corr_event {
	char *id, *type;
	char *instance; /* resourceinstance: the correspondence (or attachment) id, or NULL */
	struct timespec time;
	char *doc; /* the event, pretty-printed, + "\n" */
	size_t doc_len;
};
void corr_events_free(struct corr_event *evs, size_t n);
/* One pushed event (a webhook body) into *ret, freed with
 * corr_events_free(*ret, 1); -EIO when it is not an event. */
int corr_event_parse(const char *body, size_t len, struct corr_event **ret);
/* GET {platform}/events/api/v1/events?resource=urn:altinn:resource:<id>
 * &after=<after, "0" at first>&size=: one page, oldest first. */
int corr_events_poll(struct altinn *a, const char *resource, const char *after, unsigned size,
		     struct corr_event **ret, size_t *ret_n, struct app_answer *ans);

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
	/* after sending: the sent messages' recipients by status, how many
	 * messages are still followed, and the next reconciling read */
	uint64_t recipients[CORR_N_STATUSES];
	uint64_t following;
	int64_t next_reconcile_ms; /* 0: none */
	/* the events feed: followed at all, its cursor (the last event id
	 * taken, NULL before one), the last poll, its error, the next file's
	 * number */
	bool events;
	const char *cursor;
	int64_t polled_ms;
	const char *events_error;
	int reconcile_s;
	/* push: on, the resource's subscription (0 before one is known), and
	 * whether the platform validated it */
	bool push;
	int64_t push_subscription;
	bool push_validated;
};
char *corr_status_doc(const struct corr_status_facts *st, size_t *ret_len);

#endif
