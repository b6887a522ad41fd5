/* SPDX-License-Identifier: MIT */
/*
 * The one error convention of lbus, written down once:
 *  - internal functions return int: 0 (or a count) on success, -errno on
 *    failure (of the system, or of the connection); no magic -1/-2;
 *  - an expected refusal (a well-formed request that cannot be honoured: a
 *    name taken, an invalid topic) is a small positive per-module code,
 *    e.g. NAME_E_TAKEN; the broker maps its codes to the wire's ErrorCode
 *    in one place, broker/refusal.c;
 *  - the public API returns negative errno values, explained by
 *    lbus_strerror();
 *  - on the wire the broker sends an ErrorCode; the client translates it.
 *
 * ErrorCode      errno            lbus_strerror text
 * ERR_PROTOCOL   EPROTO           protocol error
 * ERR_VERSION    EPROTONOSUPPORT  unsupported protocol version
 * ERR_TOO_BIG    EMSGSIZE         message too large
 * ERR_INVALID    EINVAL           invalid argument
 * ERR_NO_SUCH_NAME ENXIO          no such name
 * ERR_NAME_TAKEN EADDRINUSE       name already taken
 * ERR_NOT_OWNER  EPERM            not the owner of that name
 * ERR_DENIED     EACCES           permission denied
 * ERR_NO_RESPONDERS ESRCH         no responders
 * ERR_RESPONDER_GONE ECONNABORTED responder disconnected
 * ERR_TIMEOUT    ETIMEDOUT        timed out
 * ERR_LIMIT      ENOSPC           broker limit reached
 * ERR_INTERNAL   EIO              broker internal error
 * ERR_RESPONDER_FAILED EREMOTEIO  the responder failed
 * (ETIMEDOUT also has the bus's own text: strerror()'s "Connection timed
 * out" would mislead when a call or a wait ran out of time.)
 */
#pragma once

#include <stdint.h>

/* Negative errno for a wire ErrorCode (ERR_NONE -> 0, unknown -> -EIO). */
int lbus_errcode_to_errno(uint32_t code);
/* Bus-specific text for a negative errno, or NULL to use strerror(). */
const char *lbus_errno_text(int err);
