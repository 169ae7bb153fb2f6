/* replay: runs the fuzz target over files given on the command line, so the corpus is a regression test without libFuzzer. */
#include "autoconfig.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
	int count = 0;

	for (int i = 1; i < argc; i++) {
		FILE *stream = fopen(argv[i], "rb");
		if (!stream) {
			perror(argv[i]);
			return 1;
		}
		uint8_t *data = NULL;
		size_t size = 0, capacity = 0, got;
		do {
			if (size == capacity) {
				capacity = capacity ? capacity * 2 : 4096;
				data = realloc(data, capacity);
				if (!data)
					return 1;
			}
			got = fread(data + size, 1, capacity - size, stream);
			size += got;
		} while (got > 0);
		fclose(stream);
		LLVMFuzzerTestOneInput(data, size);
		free(data);
		count++;
	}
	printf("replayed %d input%s\n", count, count == 1 ? "" : "s");
	return 0;
}
