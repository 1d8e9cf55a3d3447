/* credentials.c - relative secret file names in $CREDENTIALS_DIRECTORY.
 *
 * Done once, after the config file and -o options and before
 * config_check, so every later reader (the token provider, Maskinporten,
 * the subscription key, the doctor) sees the one resolved path and the
 * error messages name the file that was really looked for. */
#include "credentials.h"

#include <stdlib.h>

#include "config.h"
#include "xalloc.h"

static void resolve(const char *dir, char **path)
{
	char *full;

	if (!*path || !**path || **path == '/')
		return;
	full = xasprintf("%s/%s", dir, *path);
	free(*path);
	*path = full;
}

void credentials_resolve(struct config *cfg)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");

	if (!dir || !*dir)
		return;
	resolve(dir, &cfg->token_file);
	resolve(dir, &cfg->maskinporten_key_file);
	resolve(dir, &cfg->subscription_key_file);
}
