/* api_broker.h - the calls of Altinn Broker (formidling), v1.
 *
 * Broker moves a file from one organisation to others under a resource
 * (../shared/altinn-broker-correspondence.md section 2): initialize a
 * file transfer with the file's MD5, upload its bytes, follow its status
 * until Published or Failed. Each call makes one request and sorts its
 * outcome as api_app.h does (done, refused for good, not done, unknown):
 * Broker has no idempotency key, so an initialize whose answer was lost
 * is APP_UNKNOWN and must be looked up (broker_find) before it is made
 * again. The base URL is broker_url, else {platform}/broker/api/v1.
 * All return 0 or a negative errno, with the details in *ans. */
#ifndef ALTINNFS_API_BROKER_H
#define ALTINNFS_API_BROKER_H

#include <stdint.h>

#include "api_app.h"

struct altinn;

/* The organisation number (9 digits) of the token in hand: its
 * urn:altinn:orgNumber claim, else its Maskinporten consumer's ID, any
 * "0192:" removed. -EACCES when the token names none. */
int broker_sender(struct altinn *a, char **ret);

struct broker_init {
	const char *resource;  /* resource id */
	const char *file_name;
	const char *reference; /* sendersFileTransferReference */
	const char *sender;    /* 9 digits */
	const char *const *recipients; /* 9 digits each, NULL-ended */
	const char *checksum;  /* 32 lower-case hex digits */
};

/* POST /filetransfer: the new transfer's id in *ret_id. */
int broker_initialize(struct altinn *a, const struct broker_init *in, char **ret_id,
		      struct app_answer *ans);

/* POST /filetransfer/{id}/upload, the body streamed from fd (size bytes
 * from offset 0) as application/octet-stream. */
int broker_upload(struct altinn *a, const char *id, int fd, uint64_t size,
		  struct app_answer *ans);

/* GET /filetransfer/{id}: the overview as received (*ret_doc, a JSON
 * object) and its fileTransferStatus and fileTransferStatusText. */
int broker_overview(struct altinn *a, const char *id, char **ret_doc, char **ret_status,
		    char **ret_text, struct app_answer *ans);

/* The transfer of resource this token's organisation initialized with
 * file_name and reference, created between from_ms and to_ms (Unix ms):
 * GET /filetransfer?resourceId=&role=Sender&from=&to= (at most 100 ids,
 * newest first), then each one's overview. 0 with *ret_id, -ENOENT when
 * there is none, another -errno when the platform could not be asked. */
int broker_find(struct altinn *a, const char *resource, int64_t from_ms, int64_t to_ms,
		const char *file_name, const char *reference, char **ret_id,
		struct app_answer *ans);

/* What sent/<recipient>/<name>.json says: the item's own facts and the
 * overview's (overview may be NULL: the facts alone). malloc'd JSON. */
struct broker_facts {
	const char *resource, *recipient, *name, *reference, *transfer_id, *checksum;
	uint64_t size;
	int64_t dropped_ms; /* journaled */
	const char *error;  /* failed/: why; NULL in a receipt */
	long http_status;   /* failed/: the refusing answer's status, 0 for none */
};
char *broker_receipt_doc(const struct broker_facts *f, const char *overview);

/* broker/<resourceId>/status.json: one resource's sending, malloc'd JSON. */
struct broker_status {
	const char *resource;
	uint64_t pending;          /* in outbox/, not yet published or failed */
	int64_t oldest_pending_ms; /* when the oldest of them was dropped; 0: none */
	uint64_t retrying;         /* of them, failed at least once and waiting */
	uint64_t sent, failed;     /* ended, as the journal remembers them */
	const char *last_error;    /* the newest retrying item's, or NULL */
	int give_up_s;
	/* receiving */
	uint64_t inbox;            /* entries in inbox/ */
	uint64_t confirming;       /* removed, confirmation not yet taken by Broker */
	uint64_t confirmed;        /* taken, as the journal remembers them */
	int64_t searched_ms;       /* the last complete search round (wall ms); 0: none */
	char *inbox_error;         /* why the last round failed, or NULL */
	char *events_cursor;       /* the last Broker event id read, or NULL */
	char *events_off;          /* why events are not read, or NULL */
	int poll_s;
	bool push;                 /* push is on: the resource's subscription ... */
	int64_t push_subscription; /* ... its id, 0 before one is known */
	bool push_validated;       /* ... and whether the platform pushes to it */
};
char *broker_status_doc(const struct broker_status *st, size_t *ret_len);

#endif
