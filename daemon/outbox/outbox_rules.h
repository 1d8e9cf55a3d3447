/* outbox_rules.h - what names in the outbox mean, and where a file goes.
 *
 * Pure rules, no I/O: owner folders, temporary names, the content type
 * of a file name, and the data type of the app that takes a file. The
 * platform applies the same rules on upload (altinn-api.md 3.2); the
 * daemon checks them first so that a file that can never be accepted is
 * refused before an instance is made for it. */
#ifndef ALTINNFS_OUTBOX_RULES_H
#define ALTINNFS_OUTBOX_RULES_H

#include <stdbool.h>
#include <stdint.h>

#include "altinn.h"

/* An owner folder: "org-<9 digits>", "person-<11 digits>" or
 * "party-<partyId>". Sets the instance template's instanceOwner key
 * (organisationNumber, personNumber, partyId) and points at the digits. */
bool outbox_owner_parse(const char *name, const char **ret_key, const char **ret_value);

/* The longest name an outbox item may have: its dead letter may be
 * <name>-<n>.error.json, and that must still fit in a directory entry
 * (255 bytes), with room for up to seven digits of n. */
#define OUTBOX_NAME_MAX (255 - (sizeof(".error.json") - 1) - (sizeof("-9999999") - 1))
bool outbox_name_fits(const char *name);

/* Dotfiles, Office's "~$" lock files and names ending in .tmp, .part,
 * .filepart, .crdownload, .swp or ~: files being written that must wait
 * for a rename. */
bool outbox_temp_name(const char *name);

/* The data type setting's choice for org/app ("org/app:type ..."), or
 * NULL; malloc'd. */
char *outbox_type_setting(const char *setting, const char *org, const char *app);

/* The data type of app that takes a file of this content type and size:
 * forced (the setting's choice, NULL for none) or the first attachment
 * type in the metadata that accepts it and that the org may write (see
 * app_contributor in api_app.h; no actionRequiredToWrite). -EINVAL (no type takes
 * it), -EACCES (the forced type is not the org's to write) or -EFBIG
 * (over maxSize or the 2000 MiB request limit) with *ret_reason, a
 * malloc'd sentence. */
int outbox_choose_type(const struct alt_app *meta, const char *forced, const char *content_type,
		       uint64_t size, const struct alt_data_type **ret, char **ret_reason);

#endif
