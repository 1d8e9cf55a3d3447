/* json_corr.h - the JSON of Correspondence's calls, for api_corr.c
 * (json_corr.c also carries api_corr.h's message check and results). */
#ifndef ALTINNFS_JSON_CORR_H
#define ALTINNFS_JSON_CORR_H

#include <stddef.h>

/* {"correspondence": prepared, "recipients": [urn], "idempotentKey": key} */
char *jsn_corr_init_body(const char *prepared, const char *recipient_urn, const char *key,
			 const char *const *attachments);
/* {resourceId, fileName, sendersReference, checksum} */
char *jsn_corr_attachment_body(const char *resource, const char *file_name,
			       const char *reference, const char *md5);
/* a JSON string answer ("<id>"), as POST /attachment gives */
int jsn_corr_string_id(const char *body, size_t len, char **ret_id);
/* an overview's status and statusText */
int jsn_corr_status_text(const char *body, size_t len, char **ret_status, char **ret_text);
/* the first of an initialize answer's correspondences: id and status */
int jsn_corr_initialized(const char *body, size_t len, char **ret_id, char **ret_status);
/* {"ids": [...]}: the first, -ENOENT for none */
int jsn_corr_first_id(const char *body, size_t len, char **ret_id);
/* an overview's status */
int jsn_corr_status(const char *body, size_t len, char **ret_status);

/* json_corrst.c: a /details answer's status (see corr_details) */
int jsn_corr_details(const char *body, size_t len, char **ret_status, char **ret_changed);
/* a page of the events feed: a JSON array (entries without an id skipped) */
struct corr_event;
int jsn_corr_events(const char *body, size_t len, struct corr_event **ret, size_t *ret_n);

#endif
