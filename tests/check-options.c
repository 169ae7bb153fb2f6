/* check-options: fails when an option of the table is missing from the sample configuration or from pgha.conf(5). */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "memory.h"

/* The whole man page, or NULL. */
static char *read_file(const char *path)
{
	FILE *stream = fopen(path, "r");
	char *text;
	long size;

	if (!stream)
		return NULL;
	fseek(stream, 0, SEEK_END);
	size = ftell(stream);
	rewind(stream);
	text = xmalloc((size_t)size + 1);
	text[fread(text, 1, (size_t)size, stream)] = '\0';
	fclose(stream);
	return text;
}

/* An option is documented in the man page when a line ".B path" (a tagged paragraph
 * heading) names it exactly. */
static bool man_page_documents(const char *page, const char *path)
{
	size_t length = strlen(path);

	for (const char *line = page; line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		if (strncmp(line, ".B ", 3) == 0 && strncmp(line + 3, path, length) == 0 &&
		    (line[3 + length] == '\n' || line[3 + length] == '\0' || line[3 + length] == ' '))
			return true;
	}
	return false;
}

int main(int argc, char **argv)
{
	static const char *const prefixes[] = {"", "clusters.", "clusters.members."};
	struct diag_list errors = {0};
	size_t count, missing = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: check-options SAMPLE_CONFIG MAN_PAGE\n");
		return 2;
	}
	struct pgha_config *sample = config_load_file(argv[1], &errors);
	char *page = read_file(argv[2]);
	if (!sample) {
		for (size_t i = 0; i < errors.count; i++)
			fprintf(stderr, "%s\n", errors.messages[i]);
		fprintf(stderr, "%s: the sample configuration is not valid\n", argv[1]);
		return 1;
	}
	if (!page) {
		fprintf(stderr, "%s: cannot read the man page\n", argv[2]);
		return 1;
	}
	const struct option_spec *options = config_options(&count);
	for (size_t i = 0; i < count; i++) {
		char path[256];
		snprintf(path, sizeof path, "%s%s", prefixes[options[i].scope], options[i].path);
		if (!sample->set_in_file[i]) {
			printf("%s: option %s is not shown (set) in the sample configuration\n", argv[1], path);
			missing++;
		}
		if (!man_page_documents(page, path)) {
			printf("%s: option %s has no \".B %s\" entry\n", argv[2], path, path);
			missing++;
		}
	}
	printf("%zu options checked, %zu omission%s\n", count, missing, missing == 1 ? "" : "s");
	config_free(sample);
	free(page);
	return missing ? 1 : 0;
}
