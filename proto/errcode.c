/* SPDX-License-Identifier: MIT */
/*
 * Translation from the wire's ErrorCode to negative errno values, and the
 * bus-specific texts of lbus_strerror(). The table in errcode.h is the
 * reference; this file is its one implementation.
 */
#include <errno.h>
#include <stddef.h>

#include "lbus.pb-c.h"
#include "errcode.h"

struct errcode_map {
	uint32_t code;
	int err; /* positive errno */
	const char *text;
};

static const struct errcode_map errcode_table[] = {
    {LBUS__ERROR_CODE__ERR_PROTOCOL, EPROTO, "protocol error"},
    {LBUS__ERROR_CODE__ERR_VERSION, EPROTONOSUPPORT, "unsupported protocol version"},
    {LBUS__ERROR_CODE__ERR_TOO_BIG, EMSGSIZE, "message too large"},
    {LBUS__ERROR_CODE__ERR_INVALID, EINVAL, "invalid argument"},
    {LBUS__ERROR_CODE__ERR_NO_SUCH_NAME, ENXIO, "no such name"},
    {LBUS__ERROR_CODE__ERR_NAME_TAKEN, EADDRINUSE, "name already taken"},
    {LBUS__ERROR_CODE__ERR_NOT_OWNER, EPERM, "not the owner of that name"},
    {LBUS__ERROR_CODE__ERR_DENIED, EACCES, "permission denied"},
    {LBUS__ERROR_CODE__ERR_NO_RESPONDERS, ESRCH, "no responders"},
    {LBUS__ERROR_CODE__ERR_RESPONDER_GONE, ECONNABORTED, "responder disconnected"},
    {LBUS__ERROR_CODE__ERR_TIMEOUT, ETIMEDOUT, "timed out"},
    {LBUS__ERROR_CODE__ERR_LIMIT, ENOSPC, "broker limit reached"},
    {LBUS__ERROR_CODE__ERR_INTERNAL, EIO, "broker internal error"},
    {LBUS__ERROR_CODE__ERR_RESPONDER_FAILED, EREMOTEIO, "the responder failed"},
};

#define ERRCODE_COUNT (sizeof(errcode_table) / sizeof(errcode_table[0]))

int lbus_errcode_to_errno(uint32_t code)
{
	if (code == LBUS__ERROR_CODE__ERR_NONE)
		return 0;
	for (size_t i = 0; i < ERRCODE_COUNT; i++)
		if (errcode_table[i].code == code)
			return -errcode_table[i].err;
	return -EIO;
}

const char *lbus_errno_text(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case ENXIO:
	case EADDRINUSE:
	case EPERM:
	case ESRCH:
	case ECONNABORTED:
	case ENOSPC:
	case EPROTO:
	case EPROTONOSUPPORT:
	case EMSGSIZE:
	case ETIMEDOUT:
	case EREMOTEIO:
		break;
	default:
		return NULL;
	}
	for (size_t i = 0; i < ERRCODE_COUNT; i++)
		if (errcode_table[i].err == err)
			return errcode_table[i].text;
	return NULL;
}
