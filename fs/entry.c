/* entry.c - freeing folder entries and reading their keys (entry.h). */
#include "entry.h"

#include <stdlib.h>
#include <string.h>

void entry_clear(struct entry *e)
{
	free(e->name);
	free(e->org);
	free(e->party);
	free(e->guid);
	free(e->data_type);
	free(e->data_guid);
	memset(e, 0, sizeof(*e));
}

void entries_free(struct entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		entry_clear(&e[i]);
	free(e);
}

struct node_key entry_key(const struct entry *e)
{
	return (struct node_key){
		.org = e->org, .app = e->app, .party = e->party, .guid = e->guid,
		.data_type = e->data_type, .data_guid = e->data_guid, .area = e->area,
		.family = e->family, .scope = e->scope,
	};
}
