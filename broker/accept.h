/* SPDX-License-Identifier: MIT */
/*
 * Admission: accepting connections on the listener, checking who is
 * connecting (SO_PEERCRED: only the broker's own uid is admitted, within the
 * connection limits of connlimits.h; others get one fatal Error frame and
 * are closed, logged at most once a second) and turning the rest into peers.
 * Under EMFILE/ENFILE a spare fd lets the broker accept and close at once,
 * so the pending connection does not keep the listener readable.
 */
#pragma once

#include <stdint.h>

struct broker;

/* Accept every pending connection on the listener (bounded per call). */
void accept_pending(struct broker *b);
/* Take over fd (connected, non-blocking) as if accepted, through the same
 * admission: the new peer's id, or -ECONNREFUSED (refused or failed,
 * logged; fd closed). For broker_adopt_fd(). */
int64_t accept_adopt(struct broker *b, int fd);
