/* fuzz-config: a libFuzzer target over the configuration parser and validator: any input must parse or be rejected, never crash. */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "memory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct diag_list errors = {0};
	char *text = xmalloc(size + 1);

	memcpy(text, data, size);
	text[size] = '\0';
	struct pgha_config *config = config_load_string(text, "fuzz.conf", &errors);
	if (config) {
		/* a valid configuration must also survive the reload check against itself */
		if (!config_check_reload(config, config, &errors))
			abort();
		config_free(config);
	} else if (errors.count == 0) {
		abort(); /* rejected without a reason */
	}
	diag_free(&errors);
	free(text);
	return 0;
}
