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

#include <stdbool.h>
#include <stddef.h>
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
	const char *property_list; /* a JSON object of strings (broker_meta_parse), or NULL */
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

/* What a transfer initialized by us must carry to be the one looked for. */
struct broker_match {
	const char *file_name, *reference;
	const char *checksum;  /* or NULL: any */
	const char *recipient; /* 9 digits it must be sent to, or NULL: any */
	/* ids another journal item already holds (skipped), or NULL */
	bool (*taken)(void *ctx, const char *id);
	void *ctx;
};

/* The transfer of resource this token's organisation initialized as
 * want says, created between from_ms and to_ms (Unix ms):
 * GET /filetransfer?resourceId=&role=Sender&from=&to= (at most 100 ids,
 * newest first), then each one's overview. When several match (a
 * reference the user gave twice, the same bytes, none taken), the
 * oldest is the one: items are initialized in the order they were
 * asked. 0 with *ret_id, -ENOENT when there is none, another -errno
 * when the platform could not be asked. */
int broker_find(struct altinn *a, const char *resource, int64_t from_ms, int64_t to_ms,
		const struct broker_match *want, char **ret_id, struct app_answer *ans);

/* A sidecar <name>.meta.json, parsed and checked against Broker's rules
 * (FileTransferInitializeExt): "recipients" (an array of 9-digit
 * strings, each checked by the caller for its mod-11 digit), "propertyList"
 * (at most 10 string values, keys 1..50 and values at most 3000 UTF-16
 * units, as .NET counts), "sendersFileTransferReference" (1..4096 units);
 * any other member is refused (a typo must not pass unseen). 0, or
 * -EINVAL with err naming the field. */
struct broker_meta {
	char **recipients;   /* NULL-ended, possibly empty */
	char *property_list; /* compact JSON object, or NULL */
	char *reference;     /* or NULL */
};
int broker_meta_parse(const char *text, size_t len, struct broker_meta *ret, char *err,
		      size_t errlen);
void broker_meta_clear(struct broker_meta *m);

/* The statuses of an overview in one line, to tell a change and a final
 * state: "<fileTransferStatus> <recipient>=<status> ..." (recipients as
 * Broker wrote them, in its order); NULL when it is not an overview. */
char *broker_overview_signature(const char *overview);

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
