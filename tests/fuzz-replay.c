/* SPDX-License-Identifier: MIT */
/*
 * The normal suite's half of a libFuzzer target: main() runs every file of
 * the directories (or files) given through LLVMFuzzerTestOneInput(), as
 * libFuzzer would replay them. Each target's seed corpus and every input that
 * once crashed it (tests/corpus/<target>/, crash-* files) so run in every
 * build, with or without clang; a failed check aborts, which fails the test.
 * Finding no input at all is a failure too, so a moved corpus cannot turn the
 * test into one that always passes.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Read the whole file; NULL (with a message) on failure. Caller frees. */
static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t cap = 0, n = 0;

	if (!f) {
		fprintf(stderr, "fuzz-replay: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		if (n == cap) {
			uint8_t *p = realloc(buf, cap ? cap * 2 : 4096);

			if (!p) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = p;
			cap = cap ? cap * 2 : 4096;
		}
		size_t got = fread(buf + n, 1, cap - n, f);

		n += got;
		if (got == 0)
			break;
	}
	fclose(f);
	*len = n;
	return buf;
}

/* Run one file; 1 when run, 0 when skipped, -1 on a read failure. */
static int replay_file(const char *path)
{
	size_t len = 0;
	uint8_t *data = read_file(path, &len);

	if (!data)
		return -1;
	LLVMFuzzerTestOneInput(data, len);
	free(data);
	return 1;
}

/* Run every regular file of dir, in name order (reproducible). */
static int replay_dir(const char *dir)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort);
	int run = 0;

	if (n < 0) {
		fprintf(stderr, "fuzz-replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		if (names[i]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			if (replay_file(path) < 0)
				run = -1;
			else if (run >= 0)
				run++;
		}
		free(names[i]);
	}
	free(names);
	return run;
}

int main(int argc, char **argv)
{
	int total = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;
		int run;

		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "fuzz-replay: %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		run = S_ISDIR(st.st_mode) ? replay_dir(argv[i]) : replay_file(argv[i]);
		if (run < 0)
			return 1;
		printf("%s: %d inputs\n", argv[i], run);
		total += run;
	}
	if (total == 0) {
		fprintf(stderr, "fuzz-replay: no input found\n");
		return 1;
	}
	return 0;
}
