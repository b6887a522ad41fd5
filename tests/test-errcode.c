/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of proto/errcode.c, the one table that translates the wire's
 * ErrorCode to the negative errno values of the public API, and
 * gives the bus-specific meanings their words for lbus_strerror(). A client
 * that receives ERR_NO_SUCH_NAME must see -ENXIO, "no such name".
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lbus.pb-c.h"
#include "errcode.h"

static const struct {
	uint32_t code;
	int err;
} errmap[] = {
    {LBUS__ERROR_CODE__ERR_PROTOCOL, -EPROTO},	   {LBUS__ERROR_CODE__ERR_VERSION, -EPROTONOSUPPORT},
    {LBUS__ERROR_CODE__ERR_TOO_BIG, -EMSGSIZE},	   {LBUS__ERROR_CODE__ERR_INVALID, -EINVAL},
    {LBUS__ERROR_CODE__ERR_NO_SUCH_NAME, -ENXIO},  {LBUS__ERROR_CODE__ERR_NAME_TAKEN, -EADDRINUSE},
    {LBUS__ERROR_CODE__ERR_NOT_OWNER, -EPERM},	   {LBUS__ERROR_CODE__ERR_DENIED, -EACCES},
    {LBUS__ERROR_CODE__ERR_NO_RESPONDERS, -ESRCH}, {LBUS__ERROR_CODE__ERR_RESPONDER_GONE, -ECONNABORTED},
    {LBUS__ERROR_CODE__ERR_TIMEOUT, -ETIMEDOUT},   {LBUS__ERROR_CODE__ERR_LIMIT, -ENOSPC},
    {LBUS__ERROR_CODE__ERR_INTERNAL, -EIO},	   {LBUS__ERROR_CODE__ERR_RESPONDER_FAILED, -EREMOTEIO},
};

static void test_errcode_to_errno(void **state)
{
	for (size_t i = 0; i < sizeof(errmap) / sizeof(errmap[0]); i++) {
		assert_int_equal(lbus_errcode_to_errno(errmap[i].code), errmap[i].err);
	}
	assert_int_equal(lbus_errcode_to_errno(LBUS__ERROR_CODE__ERR_NONE), 0);
	assert_int_equal(lbus_errcode_to_errno(9999), -EIO); /* from a newer broker */
}

static void test_errno_texts(void **state)
{
	/* Bus-specific meanings get their own words... */
	assert_string_equal(lbus_errno_text(-ENXIO), "no such name");
	assert_string_equal(lbus_errno_text(-EADDRINUSE), "name already taken");
	assert_string_equal(lbus_errno_text(-ESRCH), "no responders");
	assert_string_equal(lbus_errno_text(-EPERM), "not the owner of that name");
	assert_non_null(lbus_errno_text(-ECONNABORTED));
	assert_non_null(lbus_errno_text(-EMSGSIZE));
	assert_string_equal(lbus_errno_text(-ETIMEDOUT), "timed out");
	assert_string_equal(lbus_errno_text(-EREMOTEIO), "the responder failed");
	/* ...the ordinary ones use strerror(). */
	assert_null(lbus_errno_text(-EINVAL));
	assert_null(lbus_errno_text(-ENOMEM));
	assert_null(lbus_errno_text(0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_errcode_to_errno),
	    cmocka_unit_test(test_errno_texts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
