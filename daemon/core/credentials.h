/* credentials.h - secret files handed over by systemd's LoadCredential=.
 *
 * A unit that says LoadCredential=token:/etc/altinnfs/token gets the file
 * as $CREDENTIALS_DIRECTORY/token, readable by the service alone. A
 * relative token_file, maskinporten_key_file or subscription_key_file is
 * looked for there when $CREDENTIALS_DIRECTORY is set, so a config can
 * say "token_file = token" and the unit decides where secrets live. */
#ifndef ALTINNFS_CREDENTIALS_H
#define ALTINNFS_CREDENTIALS_H

struct config;

/* Rewrites the relative secret file names of cfg to
 * $CREDENTIALS_DIRECTORY/<name>; absolute names, and every name when the
 * variable is unset or empty, stay as they are. */
void credentials_resolve(struct config *cfg);

#endif
