/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the broker's configuration parser (broker/config.c and
 * the access rules it hands to broker/policy.c), with the file's bytes as the
 * input. The parser reads a path, so the input goes into a memfd read through
 * /proc/self/fd.
 *
 * Checks: config_load() returns 0 or -EINVAL; a failure names "file:line"
 * and leaves the configuration exactly as it was; a success prints (as
 * --check-config does) a file that loads again, from the defaults, to a
 * configuration that prints the same text: what the parser accepts, the
 * broker can write back without loss.
 *
 * Built with -Dfuzzing=true it is a libFuzzer target (fuzz-config-libfuzzer);
 * fuzz-replay.c runs its corpus, tests/corpus/fuzz-config/, in the normal
 * suite. A failed check prints the input and aborts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "fuzz-check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *cur_data;
static size_t cur_size;

static void check_failed(int line, const char *what)
{
	fprintf(stderr, "fuzz-config.c:%d: check failed: %s\ninput (%zu bytes):\n%.*s\n", line, what,
		cur_size, (int)(cur_size > 4096 ? 4096 : cur_size), (const char *)cur_data);
	abort();
}

/* A memfd holding len bytes of p, and its /proc path in path. */
static int memfd_with(const void *p, size_t len, char *path, size_t pathlen)
{
	int fd = memfd_create("fuzz-config", MFD_CLOEXEC);

	if (fd < 0)
		abort();
	if (len && write(fd, p, len) != (ssize_t)len)
		abort();
	snprintf(path, pathlen, "/proc/self/fd/%d", fd);
	return fd;
}

/* cfg as config_print() writes it; the caller frees. */
static char *print_config(const struct config *cfg, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);

	if (!f)
		abort();
	config_print(cfg, f);
	fclose(f);
	return text;
}

/* Loaded cfg: print, load the text again from the defaults, print again. */
static void check_round_trip(const struct config *cfg)
{
	struct config again;
	char path[64], err[512];
	size_t len1, len2;
	char *text1 = print_config(cfg, &len1), *text2;
	int fd = memfd_with(text1, len1, path, sizeof(path));

	config_defaults(&again);
	if (config_load(&again, path, err, sizeof(err)) != 0) {
		fprintf(stderr, "printed configuration does not load: %s\n%s\n", err, text1);
		CHECK(!"round trip loads");
	}
	text2 = print_config(&again, &len2);
	CHECK(len1 == len2 && memcmp(text1, text2, len1) == 0);
	close(fd);
	free(text1);
	free(text2);
	config_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg;
	char path[64], err[512] = "";
	size_t len_before, len_after;
	char *before, *after;
	int fd, ret;

	cur_data = data;
	cur_size = size;
	config_defaults(&cfg);
	before = print_config(&cfg, &len_before);
	fd = memfd_with(data, size, path, sizeof(path));
	ret = config_load(&cfg, path, err, sizeof(err));
	close(fd);
	CHECK(ret == 0 || ret == -EINVAL);
	if (ret < 0) {
		CHECK(strncmp(err, path, strlen(path)) == 0 && err[strlen(path)] == ':');
		after = print_config(&cfg, &len_after);
		CHECK(len_after == len_before && memcmp(after, before, len_before) == 0);
		free(after);
	} else {
		check_round_trip(&cfg);
	}
	free(before);
	config_free(&cfg);
	return 0;
}
