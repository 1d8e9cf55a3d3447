/* json_i.h - what json.c shares with json_msgs.c (private to those two:
 * together they are the one module that includes jansson). */
#ifndef ALTINNFS_JSON_I_H
#define ALTINNFS_JSON_I_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "altinn.h"

#define DUMP_FLAGS (JSON_INDENT(2) | JSON_REAL_PRECISION(15))

/* Field access where absent, null and wrong-typed all read as "none";
 * documents pretty-printed; text parsed (NULL and a warning when it is
 * not an object); status.json values. */
const char *jsn_get_str(json_t *obj, const char *key);
char *jsn_dup_str(json_t *obj, const char *key);
int64_t jsn_get_int(json_t *obj, const char *key, int64_t dflt);
void jsn_get_time(json_t *obj, const char *key, struct timespec *ret);
char *jsn_dump_doc(json_t *obj, size_t *ret_len);
json_t *jsn_load(const char *text, size_t len, const char *what);
/* text with its bad tokens mended (json_repair.c): a new buffer of
 * *ret_len bytes; *ret_fixes says how many were mended */
char *jsn_repair(const char *text, size_t len, size_t *ret_len, unsigned *ret_fixes);
char *jsn_lower_dup(const char *s);
json_t *jsn_time_or_null(const struct timespec *ts);
char *jsn_utf8_safe(const char *s);
json_t *jsn_str_or_null(const char *s);
int jsn_instance_from_json(json_t *obj, struct alt_instance **ret);
bool jsn_get_bool(json_t *obj, const char *key);

#endif
