/* json_broker.h - Broker's JSON, for api_broker.c only (private to
 * platform/: jansson stays here). */
#ifndef ALTINNFS_JSON_BROKER_H
#define ALTINNFS_JSON_BROKER_H

#include <stddef.h>

#include "api_broker.h"

/* The initialize body (FileTransferInitalizeExt), malloc'd. */
char *jsn_broker_init_body(const struct broker_init *in);
/* {"fileTransferId": "..."}: 0 with *ret, or -EIO. */
int jsn_broker_id(const char *body, size_t len, char **ret);
/* An overview's fileTransferStatus, -Text, fileName and
 * sendersFileTransferReference (each NULL when absent); -EIO when it is
 * not an object. */
int jsn_broker_overview(const char *body, size_t len, char **ret_status, char **ret_text,
			char **ret_name, char **ret_reference);
/* Does the overview describe the transfer want looks for (api_broker.h)?
 * 1, 0, or -EIO when it is not an object. */
int jsn_broker_matches(const char *body, size_t len, const struct broker_match *want);
/* A JSON array of strings (the search's ids): NULL-ended, or -EIO. */
int jsn_broker_ids(const char *body, size_t len, char ***ret);
/* A token payload's organisation number (urn:altinn:orgNumber, else
 * consumer.ID), "0192:" removed: 0, or -EACCES. */
int jsn_broker_token_org(const char *payload, size_t len, char **ret);

#endif
