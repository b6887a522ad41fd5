/* SPDX-License-Identifier: MIT */
/*
 * CHECK(cond): a fuzz target's assertion. On failure it calls the target's
 * own check_failed() (defined in its .c: each prints its input its own way,
 * then aborts or counts the failure).
 */
#ifndef LBUS_FUZZ_CHECK_H
#define LBUS_FUZZ_CHECK_H

static void check_failed(int line, const char *what);

#define CHECK(cond)                                                                                          \
	do {                                                                                                 \
		if (!(cond))                                                                                 \
			check_failed(__LINE__, #cond);                                                       \
	} while (0)

#endif
