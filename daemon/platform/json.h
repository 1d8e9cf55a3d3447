/* json.h - platform JSON in, plain structs out; status.json out.
 *
 * jansson stays in json.c and json_msgs.c (docs/design.md). Parsers take the raw
 * response body and return the structs of altinn.h; anything the platform
 * sends that would confuse the tree (a malformed id, a duplicate data guid)
 * is skipped with a warning rather than passed on. All functions return 0 or
 * a negative errno (-EIO for a document we cannot use) and leave ret_*
 * untouched on failure. */
#ifndef ALTINNFS_JSON_H
#define ALTINNFS_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "altinn.h"

/* Once in main before any thread starts: seeds jansson's hash function
 * (jansson would seed itself on first use; doing it here keeps that out
 * of the FUSE threads' way). */
void json_global_init(void);

/* One instance document (Storage GET /instances/{party}/{guid}). The
 * returned instance holds one reference. */
int json_parse_instance(const char *text, size_t len, struct alt_instance **ret);

/* Application metadata (Storage GET /applications/{org}/{app}). */
int json_parse_app(const char *text, size_t len, struct alt_app **ret);

/* One page of an instance query (QueryResponse). Instances with a
 * malformed id are left out; `next` is NULL on the last page. */
struct json_page {
	struct alt_instance **instances; /* each holds one reference */
	size_t n_instances;
	char *next;    /* the `next` link verbatim, or NULL */
	int64_t count; /* the platform's `count`, -1 when absent */
};
int json_parse_page(const char *text, size_t len, struct json_page *ret);
/* drops the references and frees; a zeroed page is fine */
void json_page_clear(struct json_page *page);

/* One page of an instance query scanned without a parse (json_fast.c):
 * each instance object's text as sent, with the facts the index keys on.
 * -EAGAIN when the scanner does not follow the page (not valid JSON as
 * jansson takes it, or a top level it is not sure of): json_parse_page
 * decides then. An instance marked unsure is json_parse_instance's to
 * keep or skip; the others' doc parses with it into these facts. */
struct json_fast_inst {
	const char *doc; /* into the page's text, doc_len bytes */
	size_t doc_len;
	bool unsure;
	char party_id[20];
	char guid[37]; /* lowercase */
	struct timespec created, last_changed;
	bool is_complete, hard_deleted;
};
struct json_fast_page {
	struct json_fast_inst *inst;
	size_t n;
	char *next; /* NULL on the last page */
};
int json_fast_page(const char *text, size_t len, struct json_fast_page *ret);
void json_fast_page_clear(struct json_fast_page *page);

/* One member of a JSON object's top level, read without parsing the
 * object (json_scan.c): a string (*ret_str, the caller frees) or an
 * integer (*ret_num), whichever is asked for and is there. -ENOENT when
 * absent, of another kind, or not followed (the full parse decides). */
int json_scan_member(const char *text, size_t len, const char *key, char **ret_str,
		     long long *ret_num);

/* ISO-8601 as the platform writes it: "2020-11-18T15:56:41.5662973Z",
 * 0-9 fractional digits, "Z", "+hh:mm", "+hhmm" or no zone (UTC). */
int json_parse_time(const char *s, struct timespec *ret);
/* "2020-11-18T15:56:41Z" into buf (at least 21 bytes) */
void json_format_time(const struct timespec *ts, char *buf, size_t size);

/* "8a8a01ae-9533-4aa9-b914-8ab0fae6ea0d" in any case */
bool json_is_guid(const char *s);
/* 1-19 decimal digits: a party id */
bool json_is_party_id(const char *s);

/* What status.json shows about a token, from its JWT payload. The
 * signature is not checked: these facts are for display and for
 * refreshing early, never for trust. */
struct jwt_claims {
	char subject[128];  /* urn:altinn:org, else client_id, else sub; "" */
	struct timespec exp; /* zero when absent */
	char scope[512];     /* space-separated scopes; "" when absent */
};
int json_jwt_claims(const char *token, struct jwt_claims *ret);

/* status.json (see DESIGN.md): always a complete JSON object + "\n". */
char *json_status_render(const struct alt_health *h, const char *platform_url,
			 const char *mountpoint, const struct alt_status_app *apps,
			 size_t n_apps, const struct alt_status_outbox *outbox);

/* ---- owner actions (ctl) and the platform's error messages */
/* The message in an error answer: a ProblemDetails "title: detail", a JSON
 * string, or the first line of plain text, as one printable line. */
void json_problem_text(const char *body, size_t len, char *out, size_t size);
/* {"label":..., "description":...} for PUT .../substatus; NULL if not UTF-8 */
char *json_substatus_body(const char *label, const char *description);
/* {"action":...} for PUT .../process/next; NULL if not UTF-8 */
char *json_action_body(const char *action);
/* "process at Task_2" or "process ended" from an AppProcessState */
void json_process_summary(const char *body, size_t len, char *out, size_t size);

/* ---- auth: the Maskinporten grant and the token endpoints' answers */
/* {"alg":"RS256","kid":...}, compact */
char *json_grant_header(const char *kid);
/* {"aud","iss","scope","iat","exp","jti"}, compact, in that order */
char *json_grant_claims(const char *aud, const char *iss, const char *scope, int64_t iat,
			int64_t exp, const char *jti);
/* A token endpoint's answer: access_token (a malloc'd copy the caller
 * wipes) and expires_in (0 when absent); -EIO when it has no bearer token. */
int json_parse_mp_token(const char *text, size_t len, char **ret_token, int64_t *ret_expires_in);
/* The exchange endpoint's answer: a JSON string decoded, or the raw text
 * when it is not quoted; -EIO for a quoted answer that does not parse. */
int json_parse_string_answer(const char *text, size_t len, char **ret);
/* "invalid_grant: description" from an OAuth error, or "title: detail"
 * from ProblemDetails, printable ASCII; "" when neither. */
void json_oauth_error(const char *text, size_t len, char *buf, size_t size);

/* ---- events: CloudEvents from polling and the webhook; subscriptions */
/* One CloudEvent. doc is the event as received, re-serialized with
 * two-space indentation in the order received, + "\n": polling and the
 * webhook give the same file for the same event. */
struct json_event {
	char *id;       /* never empty */
	char *type;     /* "" when absent; likewise source and resource */
	char *source;
	char *resource;
	char *party;    /* the instance it is about (resourceinstance, or a */
	char *guid;     /* source ending in /instances/{party}/{guid}); else NULL */
	struct timespec time; /* zero when absent or unparsable */
	char *doc;
	size_t doc_len;
};
/* A webhook body: one event (-EIO when it is not an object with an id). */
int json_parse_event(const char *text, size_t len, struct json_event *ret);
/* A polling page: a JSON array; entries without an id are skipped. */
int json_parse_events(const char *text, size_t len, struct json_event **ret, size_t *ret_n);
void json_event_clear(struct json_event *ev); /* NULL is fine */
void json_events_free(struct json_event *evs, size_t n);
/* The id of the subscription in a GET /subscriptions answer that pushes
 * every event of source to endpoint (no type or subject filter), and
 * whether the platform validated it; -ENOENT when there is none.
 * Endpoints are compared as the platform stores them (Uri.AbsoluteUri:
 * scheme and host in lower case, no default port). */
int json_find_subscription(const char *text, size_t len, const char *endpoint,
			   const char *source, int64_t *ret_id, bool *ret_validated);
/* The id of a POST /subscriptions answer, and its `validated`. */
int json_subscription_id(const char *text, size_t len, int64_t *ret_id, bool *ret_validated);
/* The subscription id a validation event is about: the number its
 * source ends in (".../subscriptions/{id}"); -1 when none. */
int64_t json_validation_subscription(const char *source);
/* The POST /subscriptions body, compact. */
char *json_subscription_request(const char *endpoint, const char *source);
/* What a subscription filters on: an app's URL (sourceFilter), or a
 * resource URN (resourceFilter) and, when not NULL, a subject
 * (subjectFilter): Broker's and Correspondence's events, which have no
 * source to filter on. No type filter either way. */
struct json_sub_filter {
	const char *source;
	const char *resource;
	const char *subject;
};
/* json_find_subscription and json_subscription_request for any filter:
 * a subscription matches only with exactly these filters. */
int json_find_subscription_for(const char *text, size_t len, const char *endpoint,
			       const struct json_sub_filter *f, int64_t *ret_id,
			       bool *ret_validated);
char *json_subscription_request_for(const char *endpoint, const struct json_sub_filter *f);

/* ---- outbox: the App API's answers and the receipts and dead letters */
/* An instance as the outbox needs it (App API InstanceResponse or
 * Storage): the parsed instance plus the process and the owner. */
struct json_outbox_instance {
	struct alt_instance *inst; /* one reference: id, party, created, data */
	char *task;                /* process.currentTask.elementId, or NULL */
	bool ended;                /* process.ended present */
	char *org_number;          /* instanceOwner.organisationNumber, or NULL */
	char *person_number;       /* instanceOwner.personNumber, or NULL */
	char *created_by;          /* createdBy, or NULL */
};
void json_outbox_instance_clear(struct json_outbox_instance *oi);
/* -EIO when it is not an instance with a well-formed id */
int json_outbox_parse_instance(const char *text, size_t len, struct json_outbox_instance *ret);
/* A query page: its instances (malformed ones skipped) and `next` (NULL
 * on the last page). Free with json_outbox_instance_clear each, then free. */
int json_outbox_parse_page(const char *text, size_t len, struct json_outbox_instance **ret,
			   size_t *ret_n, char **ret_next);
/* A DataElement's id, lowercase; -EIO when absent or not a guid */
int json_outbox_parse_element_id(const char *text, size_t len, char **ret_id,
				 char **ret_filename);
/* An AppProcessState: its current task (NULL when none) and whether ended */
int json_outbox_parse_process(const char *text, size_t len, char **ret_task, bool *ret_ended);
/* {"instanceOwner":{key:value}}, key organisationNumber, personNumber or partyId */
char *json_outbox_template(const char *key, const char *value);
/* An error answer: ProblemDetails title and detail, or a JSON string or
 * plain text as the detail (first 1000 bytes, printable); NULL when absent. */
void json_outbox_problem(const char *body, size_t len, char **ret_title, char **ret_detail);

/* What sent/<owner>/<name>.json and failed/<owner>/<name>.error.json say. */
struct json_outbox_file {
	const char *file; /* below the item; "" for a file item */
	const char *filename, *content_type, *data_type, *data_id, *sha256;
	uint64_t size;
	const char *stored_name; /* the platform's filename when not filename, or NULL */
};
struct json_outbox_report {
	const char *app_id, *owner, *name;
	const char *instance_id; /* NULL when none was made */
	bool process_next;       /* receipt: process/next was called */
	const char *task;        /* receipt: the task after it, NULL when ended */
	const struct json_outbox_file *files;
	size_t n_files;
	unsigned attempts;
	struct timespec received_at, first_attempt_at, finished_at;
	/* dead letters only */
	const char *stored_as; /* the bytes' name in failed/<owner>/ */
	const char *step;      /* check, create_instance, upload, process_next */
	long status;           /* HTTP status; 0 for a local refusal */
	const char *title, *detail, *reason;
};
/* Both return a malloc'd pretty-printed document ending in "\n". */
char *json_outbox_receipt(const struct json_outbox_report *r);
char *json_outbox_dead_letter(const struct json_outbox_report *r);

/* What sent/instance-<party>-<guid>/<type>/<name>.json and the
 * .error.json beside a refused write say (docs/instance-writes.md). */
struct json_write_report {
	const char *app_id, *instance_id, *data_type, *name, *op, *data_id;
	const char *stored_name; /* the platform's name for it, when not name */
	uint64_t size;
	unsigned attempts;
	struct timespec at;  /* sent_at, or failed_at when error is set */
	const char *error;   /* NULL for a receipt */
};
/* A malloc'd pretty-printed document ending in "\n"; never truncated. */
char *json_write_report(const struct json_write_report *r);

#endif
