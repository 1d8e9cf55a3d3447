/* test_names.c - the naming rules of docs/tree.md, byte for byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"

static int failures;

#define CHECK_STR(got, want) check_str((got), (want), __LINE__)

static void check_str(const char *got, const char *want, int line)
{
	if (!got || strcmp(got, want) != 0) {
		fprintf(stderr, "%s:%d: got \"%s\", want \"%s\"\n", __FILE__, line,
			got ? got : "(null)", want);
		failures++;
	}
}

static void check_sanitize(const char *in, const char *want)
{
	char *got = names_sanitize(in, 255);

	CHECK_STR(got, want);
	free(got);
}

static void test_sanitize(void)
{
	check_sanitize("Søknad om støtte – æøå.pdf", "Søknad om støtte – æøå.pdf");
	check_sanitize("../../etc/passwd", ".._.._etc_passwd");
	check_sanitize("rapport/2026/mars.txt", "rapport_2026_mars.txt");
	check_sanitize("linje\nskift\t.txt", "linje_skift_.txt");
	check_sanitize(".", "_");
	check_sanitize("..", "__");
	check_sanitize("...", "...");
	check_sanitize("", "");
	check_sanitize(NULL, "");
	check_sanitize("del\x7f.txt", "del_.txt");
	/* invalid UTF-8: a lone continuation byte, a truncated sequence, an
	 * overlong '/', and a surrogate each become '_' per byte */
	check_sanitize("a\x80" "b", "a_b");
	check_sanitize("a\xc3", "a_");
	check_sanitize("\xc0\xaf" "x", "__x");
	check_sanitize("\xed\xa0\x80", "___");
}

static void test_long_names(void)
{
	char in[400], want[300];
	char *got;
	size_t o = 0;

	/* "Langt navn " + 150 x "ø" + ".txt" = 315 bytes */
	o = (size_t)sprintf(in, "Langt navn ");
	for (int i = 0; i < 150; i++)
		o += (size_t)sprintf(in + o, "ø");
	sprintf(in + o, ".txt");
	o = (size_t)sprintf(want, "Langt navn ");
	for (int i = 0; i < 120; i++)
		o += (size_t)sprintf(want + o, "ø");
	sprintf(want + o, ".txt");
	got = names_sanitize(in, 255);
	CHECK_STR(got, want);
	if (strlen(got) != 255) {
		fprintf(stderr, "long name is %zu bytes, want 255\n", strlen(got));
		failures++;
	}
	free(got);

	/* an odd cut must not split a two-byte character: 11 + 2k bytes of
	 * stem cannot make 250, so the cut lands at 249 and the name is 254 */
	got = names_sanitize(in, 254);
	if (strlen(got) != 253) {
		fprintf(stderr, "odd cut gave %zu bytes, want 253\n", strlen(got));
		failures++;
	}
	free(got);

	/* suffix on a name already at the limit still fits */
	got = names_with_suffix(want, "d0000003", 255);
	if (strlen(got) > 255 || strstr(got, "-d0000003.txt") == NULL) {
		fprintf(stderr, "suffix on long name: \"%s\" (%zu bytes)\n", got, strlen(got));
		failures++;
	}
	free(got);
}

static void test_ext(void)
{
	CHECK_STR(names_ext_for_type("application/pdf"), "pdf");
	CHECK_STR(names_ext_for_type("application/xml"), "xml");
	CHECK_STR(names_ext_for_type("text/plain; charset=utf-8"), "txt");
	CHECK_STR(names_ext_for_type("IMAGE/PNG"), "png");
	CHECK_STR(names_ext_for_type("image/jpeg"), "jpg");
	CHECK_STR(names_ext_for_type("application/x-unknown"), "bin");
	CHECK_STR(names_ext_for_type(NULL), "bin");
}

static void test_suffix(void)
{
	char *got = names_with_suffix("kvittering.pdf", "d0000003", 255);

	CHECK_STR(got, "kvittering-d0000003.pdf");
	free(got);
	got = names_with_suffix("README", "1a2b3c4d", 255);
	CHECK_STR(got, "README-1a2b3c4d");
	free(got);
	got = names_with_suffix(".profile", "1a2b3c4d", 255);
	CHECK_STR(got, ".profile-1a2b3c4d");
	free(got);
	got = names_with_suffix("arkiv.tar.gz", "1a2b3c4d", 255);
	CHECK_STR(got, "arkiv.tar-1a2b3c4d.gz");
	free(got);
}

static void test_assign(void)
{
	struct names_entry e[] = {
		{ "d0000003-0000-4000-8000-000000000003", "kvittering.pdf", "application/pdf", NULL },
		{ "d0000010-0000-4000-8000-000000000010", NULL, "image/png", NULL },
		{ "d0000004-0000-4000-8000-000000000004", "kvittering.pdf", "application/pdf", NULL },
		{ "d0000005-0000-4000-8000-000000000005", "../../etc/passwd", "text/plain", NULL },
		{ "d0000009-0000-4000-8000-000000000009", "..", "text/plain", NULL },
		{ "d0000011-0000-4000-8000-000000000011", "", "text/plain", NULL },
	};
	size_t n = sizeof(e) / sizeof(e[0]);

	names_assign(e, n);
	CHECK_STR(e[0].name, "kvittering-d0000003.pdf");
	CHECK_STR(e[1].name, "d0000010-0000-4000-8000-000000000010.png");
	CHECK_STR(e[2].name, "kvittering-d0000004.pdf");
	CHECK_STR(e[3].name, ".._.._etc_passwd");
	CHECK_STR(e[4].name, "__");
	CHECK_STR(e[5].name, "d0000011-0000-4000-8000-000000000011.txt");
	for (size_t i = 0; i < n; i++)
		free(e[i].name);
}

static void test_assign_same_prefix(void)
{
	/* guids sharing their first 8 digits fall back to the whole guid */
	struct names_entry e[] = {
		{ "da7a0000-0000-4000-8000-000000000003", "k.pdf", "application/pdf", NULL },
		{ "da7a0000-0000-4000-8000-000000000004", "k.pdf", "application/pdf", NULL },
		{ "ffff0000-0000-4000-8000-000000000001", "a/b", NULL, NULL },
		{ "eeee0000-0000-4000-8000-000000000001", "a_b", NULL, NULL },
	};

	names_assign(e, 4);
	CHECK_STR(e[0].name, "k-da7a0000-0000-4000-8000-000000000003.pdf");
	CHECK_STR(e[1].name, "k-da7a0000-0000-4000-8000-000000000004.pdf");
	CHECK_STR(e[2].name, "a_b-ffff0000-0000-4000-8000-000000000001");
	CHECK_STR(e[3].name, "a_b-eeee0000-0000-4000-8000-000000000001");
	for (size_t i = 0; i < 4; i++)
		free(e[i].name);
}

static void test_assign_crafted_name(void)
{
	/* a filename made to equal another element's suffixed name (found by
	 * fuzzing): every name of the folder then ends in its own guid */
	struct names_entry e[] = {
		{ "da7a0000-0000-4000-8000-000000000003", "k.pdf", "application/pdf", NULL },
		{ "da7a0000-0000-4000-8000-000000000004", "k.pdf", "application/pdf", NULL },
		{ "da7a0000-0000-4000-8000-000000000005",
		  "k-da7a0000-0000-4000-8000-000000000004.pdf", "application/pdf", NULL },
	};

	names_assign(e, 3);
	CHECK_STR(e[0].name, "k-da7a0000-0000-4000-8000-000000000003.pdf");
	CHECK_STR(e[1].name, "k-da7a0000-0000-4000-8000-000000000004.pdf");
	CHECK_STR(e[2].name, "k-da7a0000-0000-4000-8000-000000000004-"
			     "da7a0000-0000-4000-8000-000000000005.pdf");
	for (size_t i = 0; i < 3; i++)
		free(e[i].name);
}

int main(void)
{
	test_sanitize();
	test_long_names();
	test_ext();
	test_suffix();
	test_assign();
	test_assign_same_prefix();
	test_assign_crafted_name();
	if (failures) {
		fprintf(stderr, "%d failure(s)\n", failures);
		return 1;
	}
	printf("names: all tests passed\n");
	return 0;
}
