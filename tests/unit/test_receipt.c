/* test_receipt.c - core's one writer of receipts and dead letters: folders
 * are made part by part; a receipt replaces our own copy, or takes a
 * suffix when asked to keep what is there; a dead letter puts the bytes
 * first and the letter beside them, under the bytes' name when theirs was
 * taken; without bytes the letter alone keeps what is there. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "receipt.h"
#include "check.h"

static char *slurp(const char *dir, const char *name)
{
	char path[256], *buf = calloc(1, 4096);
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (!f) {
		free(buf);
		return NULL;
	}
	if (fread(buf, 1, 4095, f) == 0)
		buf[0] = '\0';
	fclose(f);
	return buf;
}

static bool has(const char *dir, const char *name, const char *want)
{
	char *got = slurp(dir, name);
	bool ok = got && strcmp(got, want) == 0;

	free(got);
	return ok;
}

int main(void)
{
	char base[] = "/tmp/altinnfs-test-receipt-XXXXXX", *dir = NULL, *used = NULL, cmd[96];
	struct receipt_bytes bytes = { NULL, "PDF", 3 };

	log_setup(LOG_LVL_ERROR, false);
	CHECK(mkdtemp(base) != NULL, "mkdtemp");
	CHECK(receipt_dir(base, "instance-1-g/vedlegg", &dir) == 0 && dir, "dir");
	CHECK(receipt_write(dir, "a.json", "{1}", false, NULL) == 0 && has(dir, "a.json", "{1}"),
	      "receipt");
	CHECK(receipt_write(dir, "a.json", "{2}", false, NULL) == 0 && has(dir, "a.json", "{2}"),
	      "our own copy replaced");
	CHECK(receipt_write(dir, "a.json", "{3}", true, &used) == 0 && used &&
	      strcmp(used, "a-1.json") == 0 && has(dir, "a.json", "{2}") &&
	      has(dir, "a-1.json", "{3}"), "unique: a suffix");
	free(used);
	used = NULL;

	CHECK(receipt_dead_letter(dir, "b.pdf", &bytes, "{why}", true, &used) == 0 && used &&
	      strcmp(used, "b.pdf") == 0 && has(dir, "b.pdf", "PDF") &&
	      has(dir, "b.pdf.error.json", "{why}"), "dead letter");
	free(used);
	used = NULL;
	CHECK(receipt_dead_letter(dir, "b.pdf", &bytes, "{again}", true, &used) == 0 && used &&
	      strcmp(used, "b-1.pdf") == 0 && has(dir, "b-1.pdf.error.json", "{again}") &&
	      has(dir, "b.pdf.error.json", "{why}"), "a taken name: the letter follows the bytes");
	free(used);
	used = (char *)"untouched";
	CHECK(receipt_dead_letter(dir, "c", NULL, "{c}", true, &used) == 0 && !used &&
	      has(dir, "c.error.json", "{c}"), "no bytes: the letter alone");
	CHECK(receipt_dead_letter(dir, "c", NULL, "{c2}", true, NULL) == 0 &&
	      has(dir, "c.error.json", "{c}") && has(dir, "c.error-1.json", "{c2}"),
	      "no bytes, unique: what is there is kept");
	{
		char from[256];
		struct receipt_bytes move = { from, NULL, 0 };
		FILE *f;

		snprintf(from, sizeof(from), "%s/dropped", base);
		f = fopen(from, "w");
		fputs("X", f);
		fclose(f);
		CHECK(receipt_dead_letter(dir, "d", &move, "{d}", false, NULL) == 0 &&
		      has(dir, "d", "X") && has(dir, "d.error.json", "{d}") && !slurp(base, "dropped"),
		      "bytes moved");
	}
	free(dir);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
	CHECK(system(cmd) == 0, "cleanup");
	if (failures)
		fprintf(stderr, "%d failures\n", failures);
	return failures != 0;
}
