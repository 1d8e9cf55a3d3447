/* objects.c - the platform's objects of altinn.h: references and freeing.
 *
 * json.c builds instances and apps, api.c and the caches hand them on;
 * both free them here, so neither depends on the other for it. An
 * instance is shared by reference (the listing cache and open files may
 * hold one each) and immutable once built, so only its count changes. */
#include "altinn.h"

#include <stdlib.h>

struct alt_instance *alt_instance_ref(struct alt_instance *inst)
{
	__atomic_add_fetch(&inst->refcount, 1, __ATOMIC_RELAXED);
	return inst;
}

void alt_instance_unref(struct alt_instance *inst)
{
	if (!inst || __atomic_sub_fetch(&inst->refcount, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	for (size_t i = 0; i < inst->n_data; i++) {
		free(inst->data[i].id);
		free(inst->data[i].data_type);
		free(inst->data[i].filename);
		free(inst->data[i].content_type);
		free(inst->data[i].content_hash);
	}
	free(inst->data);
	free(inst->id);
	free(inst->party_id);
	free(inst->guid);
	free(inst->doc);
	free(inst);
}

void alt_app_free(struct alt_app *app)
{
	if (!app)
		return;
	for (size_t i = 0; i < app->n_types; i++) {
		struct alt_data_type *t = &app->types[i];
		for (char **c = t->allowed_content_types; c && *c; c++)
			free(*c);
		free(t->allowed_content_types);
		for (char **c = t->allowed_contributors; c && *c; c++)
			free(*c);
		free(t->allowed_contributors);
		free(t->action_required_to_write);
		free(t->id);
		free(t->task_id);
	}
	free(app->types);
	free(app->id);
	free(app->org);
	free(app->app);
	free(app->doc);
	free(app);
}
