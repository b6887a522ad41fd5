/* SPDX-License-Identifier: MIT */
/*
 * Unit test of the broker's one map from refusal codes to the wire
 * (broker/refusal.c): every code has an ErrorCode and a reason, codes stay
 * apart from PEER_BLOCKED, and a failure (-errno) maps to ERR_INTERNAL.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lbus.pb-c.h"
#include "peer.h"
#include "refusal.h"

static void test_every_code_mapped(void **state)
{
	(void)state;
	assert_true(REFUSAL_FIRST > PEER_BLOCKED);
	for (int code = REFUSAL_FIRST; code < REFUSAL_END; code++) {
		const struct refusal *r = refusal_get(code);

		assert_non_null(r->reason);
		assert_string_not_equal(r->reason, "internal error");
		assert_int_not_equal(r->errcode, LBUS__ERROR_CODE__ERR_NONE);
		assert_int_not_equal(r->errcode, LBUS__ERROR_CODE__ERR_INTERNAL);
	}
	assert_int_equal(refusal_get(NAME_E_TAKEN)->errcode, LBUS__ERROR_CODE__ERR_NAME_TAKEN);
	assert_int_equal(refusal_get(TOPIC_E_RESERVED)->errcode, LBUS__ERROR_CODE__ERR_DENIED);
}

static void test_failure(void **state)
{
	struct refusal r = refusal_of_failure(-ENOMEM);

	(void)state;
	assert_int_equal(r.errcode, LBUS__ERROR_CODE__ERR_INTERNAL);
	assert_string_equal(r.reason, "out of memory");
	assert_int_equal(refusal_of_failure(-EIO).errcode, LBUS__ERROR_CODE__ERR_INTERNAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_code_mapped),
	    cmocka_unit_test(test_failure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
