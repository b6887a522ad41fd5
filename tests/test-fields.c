/* SPDX-License-Identifier: MIT */
/*
 * Unit tests tying every number proto/ writes by hand to lbus.proto, as
 * protoc-c compiled it (the descriptors in lbus.pb-c.c):
 *  - each line of LBUS_WIRE_FIELDS (fields.h): the field of that name in
 *    that message has that number;
 *  - enum lbus_kind: the members of Frame's oneof are exactly 1..LBUS_K_MAX,
 *    and lbus_kind_name() says their names;
 *  - each decoding table of wire.c: every entry is a field of its message
 *    with a matching type, and every field of the message has an entry.
 * Renumbering or retyping a field in lbus.proto fails here, not on the wire.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fields.h"
#include "lbus.pb-c.h"
#include "pbwire.h"
#include "wire.h"

struct field_row {
	const char *constant;
	unsigned value;
	const ProtobufCMessageDescriptor *message;
	const char *field;
};

#define FIELD_ROW(M, m, F, f, num) {"LBUS_F_" #M "_" #F, LBUS_F_##M##_##F, &lbus__##m##__descriptor, #f},
static const struct field_row field_rows[] = {LBUS_WIRE_FIELDS(FIELD_ROW)};
#undef FIELD_ROW

static void test_field_numbers_match_the_descriptors(void **state)
{
	for (size_t i = 0; i < sizeof(field_rows) / sizeof(field_rows[0]); i++) {
		const struct field_row *r = &field_rows[i];
		const ProtobufCFieldDescriptor *fd =
		    protobuf_c_message_descriptor_get_field_by_name(r->message, r->field);

		if (!fd)
			fail_msg("%s: %s has no field %s", r->constant, r->message->name, r->field);
		if (fd->id != r->value)
			fail_msg("%s is %u, lbus.proto says %s.%s = %u", r->constant, r->value,
				 r->message->name, r->field, fd->id);
	}
}

static bool is_kind(const ProtobufCFieldDescriptor *fd)
{
	return fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF;
}

static void test_kinds_are_the_frame_oneof(void **state)
{
	const ProtobufCMessageDescriptor *frame = &lbus__frame__descriptor;
	unsigned kinds = 0;

	for (unsigned i = 0; i < frame->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &frame->fields[i];

		if (!is_kind(fd)) {
			assert_true(fd->id == LBUS_F_FRAME_REQ_ID || fd->id == LBUS_F_FRAME_FDS);
			continue;
		}
		kinds++;
		assert_in_range(fd->id, 1, LBUS_K_MAX);
		assert_string_equal(lbus_kind_name(fd->id), fd->name);
	}
	assert_int_equal(kinds, LBUS_K_MAX);
	assert_string_equal(lbus_kind_name(LBUS_K_NONE), "unknown");
	assert_string_equal(lbus_kind_name(LBUS_K_MAX + 1), "unknown");
	assert_string_equal(lbus_kind_name(LBUS_F_FRAME_REQ_ID), "unknown");
}

/* The protobuf-c types a store of pbwire.h may decode. */
static bool store_fits(const struct lbus_pb_field_desc *d, const ProtobufCFieldDescriptor *fd)
{
	if (fd->label == PROTOBUF_C_LABEL_REPEATED)
		return false;
	switch (d->store) {
	case LBUS_PB_S_BYTES:
		return fd->type == PROTOBUF_C_TYPE_STRING || fd->type == PROTOBUF_C_TYPE_BYTES;
	case LBUS_PB_S_U64:
		return fd->type == PROTOBUF_C_TYPE_UINT64;
	case LBUS_PB_S_U32:
		return fd->type == PROTOBUF_C_TYPE_UINT32 || fd->type == PROTOBUF_C_TYPE_ENUM;
	case LBUS_PB_S_BOOL:
		return fd->type == PROTOBUF_C_TYPE_BOOL;
	case LBUS_PB_S_MSG:
		return fd->type == PROTOBUF_C_TYPE_MESSAGE && fd->descriptor == d->sub->proto;
	case LBUS_PB_S_ONEOF:
		return fd->type == PROTOBUF_C_TYPE_MESSAGE;
	default:
		return false;
	}
}

static const struct lbus_pb_field_desc *entry_for(const struct lbus_pb_msg_desc *m, unsigned num)
{
	for (size_t i = 0; i < m->n; i++)
		if (num >= m->fields[i].num && num <= m->fields[i].last)
			return &m->fields[i];
	return NULL;
}

static void check_table(const struct lbus_pb_msg_desc *m)
{
	const ProtobufCMessageDescriptor *pd = m->proto;

	for (size_t i = 0; i < m->n; i++) {
		const struct lbus_pb_field_desc *d = &m->fields[i];

		assert_true(d->last >= d->num);
		assert_true(d->store == LBUS_PB_S_ONEOF || d->last == d->num);
		for (unsigned num = d->num; num <= d->last; num++) {
			const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field(pd, num);
			if (!fd)
				fail_msg("%s: table entry %u is not a field", pd->name, num);
			if (!store_fits(d, fd))
				fail_msg("%s.%s (%u): the table stores it as %u", pd->name, fd->name, num,
					 d->store);
		}
		assert_true(d->off < m->size && d->len_off < m->size && d->case_off < m->size);
	}
	for (unsigned i = 0; i < pd->n_fields; i++)
		if (!entry_for(m, pd->fields[i].id))
			fail_msg("%s.%s (%u) has no entry in its table", pd->name, pd->fields[i].name,
				 pd->fields[i].id);
}

static void test_tables_match_the_descriptors(void **state)
{
	size_t n = 0;

	for (const struct lbus_pb_msg_desc *const *m = lbus_wire_descs; *m; m++, n++)
		check_table(*m);
	assert_int_equal(n, 11);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_field_numbers_match_the_descriptors),
	    cmocka_unit_test(test_kinds_are_the_frame_oneof),
	    cmocka_unit_test(test_tables_match_the_descriptors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
