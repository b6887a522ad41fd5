/* SPDX-License-Identifier: MIT */
/*
 * Message types read from a protobuf descriptor set (the file that
 * `protoc --include_imports --descriptor_set_out=FILE` writes), indexed for
 * the JSON mapping of pbjson.h.
 *
 * The set itself is parsed by the protobuf-c code generated at build time
 * from Google's descriptor.proto; this module adds what a walker needs and
 * the descriptor does not give directly: every message and enum by its full
 * name (without the leading dot), each message's fields sorted by number
 * with their type resolved, and the proto2/proto3 rules decided once per
 * field (packed, explicit presence, real oneof).
 *
 * Errors: 0 or a negative errno; a human-readable reason goes to err.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "descriptor.pb-c.h"

struct pbs_message;
struct pbs_enum;

/* Field types, as in descriptor.proto (TYPE_DOUBLE = 1 ... TYPE_SINT64 = 18). */
enum pbs_type {
	PBS_DOUBLE = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_DOUBLE,
	PBS_FLOAT = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FLOAT,
	PBS_INT64 = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT64,
	PBS_UINT64 = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_UINT64,
	PBS_INT32 = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT32,
	PBS_FIXED64 = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FIXED64,
	PBS_FIXED32 = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FIXED32,
	PBS_BOOL = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BOOL,
	PBS_STRING = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_STRING,
	PBS_GROUP = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_GROUP,
	PBS_MESSAGE = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE,
	PBS_BYTES = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BYTES,
	PBS_UINT32 = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_UINT32,
	PBS_ENUM = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_ENUM,
	PBS_SFIXED32 = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED32,
	PBS_SFIXED64 = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED64,
	PBS_SINT32 = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SINT32,
	PBS_SINT64 = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SINT64,
};

/* Wire types of the encoding. */
enum pbs_wire {
	PBS_WIRE_VARINT = 0,
	PBS_WIRE_I64 = 1,
	PBS_WIRE_LEN = 2,
	PBS_WIRE_SGROUP = 3,
	PBS_WIRE_EGROUP = 4,
	PBS_WIRE_I32 = 5,
};

struct pbs_field {
	const char *name;      /* as in the .proto file */
	const char *json_name; /* lowerCamelCase, or the json_name option */
	int32_t number;
	enum pbs_type type;
	bool repeated;
	bool packed;		       /* repeated scalar numeric written packed */
	bool presence;		       /* explicit presence: printed even when zero */
	int oneof;		       /* index of its real oneof, or -1 */
	const struct pbs_message *msg; /* PBS_MESSAGE / PBS_GROUP */
	const struct pbs_enum *enm;    /* PBS_ENUM */
};

struct pbs_message {
	const char *full_name; /* "pkg.Outer.Inner" */
	bool map_entry;	       /* a map's entry: field 1 the key, 2 the value */
	bool proto3;	       /* declared in a proto3 file */
	size_t n_fields;
	struct pbs_field *fields; /* sorted by number */
	const Google__Protobuf__DescriptorProto *desc;
};

struct pbs_enum {
	const char *full_name;
	const Google__Protobuf__EnumDescriptorProto *desc;
};

struct pbs_pool;

/* Read the descriptor set in file path. On success *out owns it (free with
 * pbs_pool_free); on failure returns a negative errno and writes why to err. */
int pbs_pool_load(const char *path, struct pbs_pool **out, char *err, size_t errlen);

/* Same, from the bytes of a descriptor set. */
int pbs_pool_parse(const void *data, size_t len, struct pbs_pool **out, char *err, size_t errlen);

void pbs_pool_free(struct pbs_pool *pool);

/* The message type called name ("pkg.Type", a leading '.' is allowed), or NULL. */
const struct pbs_message *pbs_pool_message(const struct pbs_pool *pool, const char *name);

/* The field of m with this number, or NULL. */
const struct pbs_field *pbs_message_field(const struct pbs_message *m, int32_t number);

/* The field of m whose JSON name or proto name is name, or NULL. */
const struct pbs_field *pbs_message_field_named(const struct pbs_message *m, const char *name, size_t len);

/* The name of value number in e, or NULL when e has none. */
const char *pbs_enum_name(const struct pbs_enum *e, int32_t number);

/* The number of the value called name in e: 0, or -ENOENT. */
int pbs_enum_number(const struct pbs_enum *e, const char *name, int32_t *number);

/* The wire type a single value of type t is written with. */
enum pbs_wire pbs_type_wire(enum pbs_type t);
