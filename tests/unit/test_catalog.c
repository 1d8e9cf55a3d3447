/* test_catalog.c - core's catalog read a page at a time: its groups in
 * listing order (shorter names first, then by bytes, so party numbers
 * come in numeric order), each once whether the next page is asked for
 * after the last name or by position, and a group added behind the
 * reader's place not listed twice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "check.h"

static char dir[] = "/tmp/altinnfs-test-catalog-XXXXXX";

static void put(struct catalog *c, const char *id, const char *grp)
{
	struct catalog_row row = { .id = (char *)id, .grp = (char *)grp, .changed = 1,
				   .created = 1, .doc = (char *)"{}", .doc_len = 2 };
	struct catalog_change ch = { .put = &row, .n_put = 1 };

	CHECK(catalog_apply(c, &ch) == 0, "put %s", id);
}

/* the names of a whole listing in pages of size (by name or by position) */
static char *list(struct catalog *c, size_t size, int by_position)
{
	static char out[1024];
	char last[64] = "";
	uint64_t pos = 0;

	out[0] = '\0';
	for (;;) {
		struct catalog_group *g = NULL;
		size_t n = 0;

		CHECK(catalog_groups_page(c, by_position || !*last ? NULL : last, pos, size, &g,
					  &n) == 0, "page at %s", last);
		for (size_t i = 0; i < n; i++) {
			strcat(out, g[i].grp);
			strcat(out, " ");
		}
		if (n)
			snprintf(last, sizeof(last), "%s", g[n - 1].grp);
		pos += n;
		catalog_groups_free(g, n);
		if (n < size)
			return out;
	}
}

int main(void)
{
	const char *grps[] = { "700001", "99", "1000000", "9", "10", "700000", "50006789" };
	struct catalog *c = NULL;
	char path[128];

	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(path, sizeof(path), "%s/c.db", dir);
	CHECK(catalog_open("test", path, &c) == 0 && c, "open");
	for (size_t i = 0; i < sizeof(grps) / sizeof(grps[0]); i++) {
		char id[32];

		snprintf(id, sizeof(id), "row-%zu", i);
		put(c, id, grps[i]);
		snprintf(id, sizeof(id), "row-%zu-b", i); /* two rows, one group */
		put(c, id, grps[i]);
	}
	const char *want = "9 10 99 700000 700001 1000000 50006789 ";
	for (size_t size = 1; size <= 8; size++) {
		CHECK(strcmp(list(c, size, 0), want) == 0, "by name, pages of %zu: %s", size,
		      list(c, size, 0));
		CHECK(strcmp(list(c, size, 1), want) == 0, "by position, pages of %zu: %s", size,
		      list(c, size, 1));
	}
	{
		struct catalog_group *g = NULL;
		size_t n = 0;

		/* after a name that is no group (it left), the next is still right */
		CHECK(catalog_groups_page(c, "700", 0, 2, &g, &n) == 0 && n == 2 &&
		      strcmp(g[0].grp, "700000") == 0 && strcmp(g[1].grp, "700001") == 0 &&
		      g[0].n == 2, "after a gone name");
		catalog_groups_free(g, n);
		CHECK(catalog_groups_page(c, "50006789", 0, 4, &g, &n) == 0 && n == 0,
		      "after the last");
		catalog_groups_free(g, n);
		CHECK(catalog_groups_page(c, NULL, 7, 4, &g, &n) == 0 && n == 0, "past the end");
		catalog_groups_free(g, n);
	}
	catalog_close(c);
	catalog_remove(path);
	rmdir(dir);
	if (failures)
		fprintf(stderr, "test_catalog: %d failure(s)\n", failures);
	return failures ? 1 : 0;
}
