/* states.c - reading a table of state names (see states.h). */
#include "states.h"

#include <string.h>

const char *state_name(const char *const *names, int n, int st)
{
	return st >= 0 && st < n && names[st] ? names[st] : "unknown";
}

bool state_parse(const char *const *names, int n, const char *name, int *ret)
{
	for (int i = 0; name && i < n; i++)
		if (names[i] && strcmp(name, names[i]) == 0) {
			*ret = i;
			return true;
		}
	return false;
}
