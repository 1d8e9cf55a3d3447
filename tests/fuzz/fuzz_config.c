/* fuzz_config.c - a config file, as `--config FILE` reads it (inih), and
 * each of its lines as `-o key=value` would set it. */
#include <stdio.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

static void set_options(const char *text)
{
	struct config cfg;
	char *copy = strdup(text), *save = NULL;

	if (!copy)
		abort();
	config_init(&cfg);
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '='), *err = NULL;

		if (!eq)
			continue;
		*eq = '\0';
		config_set(&cfg, line, eq + 1, &err);
		free(err);
	}
	free(copy);
	config_free(&cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[] = "/tmp/fuzz-config-XXXXXX";
	char *text = fuzz_cstr(data, size), *err = NULL;
	struct config cfg;
	int fd = mkstemp(path);

	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	config_init(&cfg);
	if (config_load_file(&cfg, path, &err) == 0)
		config_check(&cfg, &err);
	free(err);
	config_free(&cfg);
	unlink(path);
	set_options(text);
	free(text);
	return 0;
}
