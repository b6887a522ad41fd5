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

struct broker;

/* Accept every pending connection on the listener (bounded per call). */
void accept_pending(struct broker *b);
