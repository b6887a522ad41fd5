/* SPDX-License-Identifier: MIT */
/*
 * systemd readiness notification without libsystemd: one datagram with a
 * state string ("READY=1", "STOPPING=1", "RELOADING=1") to $NOTIFY_SOCKET.
 */
#pragma once

/* Send state to $NOTIFY_SOCKET. 0 when sent or when the variable is unset,
 * -errno on failure. */
int notify_send(const char *state);
