/* index_read.c - what the tree reads from the index (no request is made).
 *
 * Parties and their facts come from the catalog's groups; instances from
 * its rows, parsed once and kept in the LRU until a refresh or an event
 * changes them. A row whose document does not parse is not served: the
 * file is taken as damaged and made anew. */
#include "index_i.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xalloc.h"

/* Party ids are digit strings: shorter is smaller, then by bytes. */
static int cmp_party(const void *x, const void *y)
{
	const struct index_party *a = x, *b = y;
	size_t la = strlen(a->party_id), lb = strlen(b->party_id);

	if (la != lb)
		return la < lb ? -1 : 1;
	return strcmp(a->party_id, b->party_id);
}

static void from_group(struct index_party *p, struct catalog_group *g)
{
	p->party_id = g->grp;
	g->grp = NULL;
	p->n = g->n;
	p->mtime = idx_ts(g->max_changed);
	p->ctime = idx_ts(g->min_created);
}

/* The parties of a read of the catalog's groups (r its result; g freed),
 * sorted when sort is set. */
static int parties_of(struct index *idx, int r, struct catalog_group *g, size_t n, bool sort,
		      struct index_party **ret, size_t *ret_n)
{
	struct index_party *out;

	if (r < 0)
		return idx_catalog_failed(idx, r);
	out = xcalloc(n ? n : 1, sizeof(*out));
	for (size_t i = 0; i < n; i++)
		from_group(&out[i], &g[i]);
	catalog_groups_free(g, n);
	if (sort && n > 1)
		qsort(out, n, sizeof(*out), cmp_party);
	*ret = out;
	*ret_n = n;
	return 0;
}

int index_parties(struct index *idx, struct index_party **ret, size_t *ret_n)
{
	struct catalog_group *g = NULL;
	size_t n = 0;
	int r;

	pthread_rwlock_rdlock(&idx->cat_lock);
	r = idx->cat ? catalog_groups(idx->cat, &g, &n) : -EIO;
	pthread_rwlock_unlock(&idx->cat_lock);
	return parties_of(idx, r, g, n, true, ret, ret_n);
}

int index_parties_page(struct index *idx, const char *after, uint64_t skip, size_t max,
		       struct index_party **ret, size_t *ret_n)
{
	struct catalog_group *g = NULL;
	size_t n = 0;
	int r;

	pthread_rwlock_rdlock(&idx->cat_lock);
	r = idx->cat ? catalog_groups_page(idx->cat, after, skip, max, &g, &n) : -EIO;
	pthread_rwlock_unlock(&idx->cat_lock);
	return parties_of(idx, r, g, n, false, ret, ret_n);
}

int index_party(struct index *idx, const char *party, struct index_party *ret)
{
	struct catalog_group g;
	int r;

	pthread_rwlock_rdlock(&idx->cat_lock);
	r = idx->cat ? catalog_group(idx->cat, party, &g) : -EIO;
	pthread_rwlock_unlock(&idx->cat_lock);
	if (r < 0)
		return idx_catalog_failed(idx, r);
	from_group(ret, &g);
	return 0;
}

void index_parties_free(struct index_party *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(p[i].party_id);
	free(p);
}

/* The parsed document of a row, from the LRU or parsed now. */
static int parsed(struct index *idx, struct catalog_row *row, struct alt_instance **ret)
{
	struct alt_instance *inst = idx_lru_get(idx->lru, row->id);
	int r;

	if (inst) {
		*ret = inst;
		return 0;
	}
	r = altinn_parse_instance(row->doc, row->doc_len, &inst);
	if (r < 0) {
		log_warn("index of \"%s/%s\": the row of %s does not parse", idx->org, idx->app,
			 row->id);
		return idx_catalog_failed(idx, -EBADMSG);
	}
	idx_lru_put(idx->lru, row->id, inst);
	*ret = inst;
	return 0;
}

static int cmp_guid(const void *x, const void *y)
{
	const struct alt_instance *a = *(struct alt_instance *const *)x;
	const struct alt_instance *b = *(struct alt_instance *const *)y;

	return strcmp(a->guid, b->guid);
}

int index_party_instances(struct index *idx, const char *party, size_t max,
			  struct alt_instance ***ret, size_t *ret_n)
{
	struct catalog_row *rows = NULL;
	struct alt_instance **out;
	size_t n = 0, got = 0;
	int r;

	pthread_rwlock_rdlock(&idx->cat_lock);
	r = idx->cat ? catalog_group_rows(idx->cat, party, max, &rows, &n) : -EIO;
	pthread_rwlock_unlock(&idx->cat_lock);
	if (r < 0)
		return idx_catalog_failed(idx, r);
	out = xcalloc(n ? n : 1, sizeof(*out));
	for (size_t i = 0; i < n && r == 0; i++)
		if ((r = parsed(idx, &rows[i], &out[got])) == 0)
			got++;
	catalog_rows_free(rows, n);
	if (r < 0) {
		for (size_t i = 0; i < got; i++)
			alt_instance_unref(out[i]);
		free(out);
		return r;
	}
	if (got > 1)
		qsort(out, got, sizeof(*out), cmp_guid);
	*ret = out;
	*ret_n = got;
	return 0;
}

int index_instance(struct index *idx, const char *party, const char *guid,
		   struct alt_instance **ret)
{
	char *id = xasprintf("%s/%s", party, guid);
	struct alt_instance *inst = idx_lru_get(idx->lru, id);
	struct catalog_row row = { 0 };
	int r = 0;

	if (!inst) {
		pthread_rwlock_rdlock(&idx->cat_lock);
		r = idx->cat ? catalog_get(idx->cat, id, &row) : -EIO;
		pthread_rwlock_unlock(&idx->cat_lock);
		if (r == 0)
			r = parsed(idx, &row, &inst);
		else if (r != -ENOENT)
			r = idx_catalog_failed(idx, r);
		catalog_row_clear(&row);
	}
	free(id);
	if (r < 0)
		return r;
	*ret = inst;
	return 0;
}
