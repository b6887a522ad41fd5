/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the broker's name registry: take, take again, conflicts,
 * release by the wrong owner, lookup, taking order (the first name is the
 * sender's name), release of everything on disconnect, and growth.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "names.h"

#define S(x) x, strlen(x)

static void test_take_release(void **state)
{
	struct names n;
	struct name_owner a, b;

	(void)state;
	names_init(&n);
	name_owner_init(&a);
	name_owner_init(&b);
	assert_int_equal(names_take(&n, &a, S("player")), 0);
	assert_int_equal(names_take(&n, &a, S("player")), NAMES_ALREADY_OURS);
	assert_int_equal(names_take(&n, &b, S("player")), NAME_E_TAKEN);
	assert_ptr_equal(names_lookup(&n, S("player")), &a);
	assert_null(names_lookup(&n, S("play")));
	assert_int_equal(names_release(&n, &b, S("player")), NAME_E_NOT_OWNER);
	assert_int_equal(names_release(&n, &b, S("nobody")), NAME_E_NOT_OWNER);
	assert_int_equal(names_release(&n, &a, S("player")), 0);
	assert_null(names_lookup(&n, S("player")));
	assert_int_equal(names_take(&n, &b, S("player")), 0);
	assert_ptr_equal(names_lookup(&n, S("player")), &b);
	assert_int_equal(names_count(&n), 1);
	names_release_all(&n, &b, NULL, NULL);
	assert_int_equal(names_count(&n), 0);
	names_deinit(&n);
}

static void test_order_and_first(void **state)
{
	struct names n;
	struct name_owner a;

	(void)state;
	names_init(&n);
	name_owner_init(&a);
	assert_int_equal(names_take(&n, &a, S("one")), 0);
	assert_int_equal(names_take(&n, &a, S("two")), 0);
	assert_int_equal(names_take(&n, &a, S("three")), 0);
	assert_string_equal(name_owner_first(&a)->name, "one");
	assert_int_equal(a.count, 3);
	assert_int_equal(names_release(&n, &a, S("one")), 0);
	assert_string_equal(name_owner_first(&a)->name, "two");
	assert_string_equal(name_owner_next(&a, name_owner_first(&a))->name, "three");
	names_release_all(&n, &a, NULL, NULL);
	assert_null(name_owner_first(&a));
	assert_int_equal(a.count, 0);
	names_deinit(&n);
}

static void count_released(const char *name, size_t len, void *ctx)
{
	(void)name;
	(void)len;
	(*(int *)ctx)++;
}

static void test_many_and_release_all(void **state)
{
	struct names n;
	struct name_owner a, b;
	char name[32];
	int released = 0;

	(void)state;
	names_init(&n);
	name_owner_init(&a);
	name_owner_init(&b);
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "org.example.n%d", i);
		assert_int_equal(names_take(&n, i % 2 ? &a : &b, S(name)), 0);
	}
	assert_int_equal(names_count(&n), 5000);
	assert_true(n.table.mask + 1 >= 5000);
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "org.example.n%d", i);
		assert_ptr_equal(names_lookup(&n, S(name)), i % 2 ? &a : &b);
	}
	names_release_all(&n, &a, count_released, &released);
	assert_int_equal(released, 2500);
	assert_int_equal(names_count(&n), 2500);
	assert_null(names_lookup(&n, S("org.example.n1")));
	assert_ptr_equal(names_lookup(&n, S("org.example.n2")), &b);
	names_release_all(&n, &b, NULL, NULL);
	names_deinit(&n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_take_release),
	    cmocka_unit_test(test_order_and_first),
	    cmocka_unit_test(test_many_and_release_all),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
