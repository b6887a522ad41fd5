/* SPDX-License-Identifier: MIT */
/*
 * The broker's clocks, a leaf module: every deadline, stall and timeout is
 * in monotonic milliseconds (clock_now_ms); only the connection time that
 * introspection reports is wall-clock time (clock_realtime_ms).
 */
#pragma once

#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds. */
int64_t clock_now_ms(void);
/* CLOCK_REALTIME in milliseconds since the epoch. */
uint64_t clock_realtime_ms(void);
