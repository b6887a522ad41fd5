/* SPDX-License-Identifier: MIT */
/*
 * Loading a descriptor set (pbschema.h).
 *
 * Two passes over the files of the set: the first names every message and
 * enum, nested ones included ("pkg.Outer.Inner"), into two arrays sorted by
 * name; the second builds each message's field table, resolving type names
 * by binary search. protoc writes fully qualified type names (".pkg.Type")
 * into descriptor sets, so no C++-style scope search is needed; a relative
 * name is reported as an error instead of guessed.
 *
 * The pool owns the unpacked FileDescriptorSet, and every string of the
 * tables points into it, except the full names (allocated here) and JSON
 * names computed for descriptors that lack one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pbschema.h"

/* The largest descriptor set accepted (Google's own sets are far smaller). */
#define PBS_MAX_SET_BYTES (64u << 20)

struct pbs_pool {
	Google__Protobuf__FileDescriptorSet *set;
	struct pbs_message *msgs;
	size_t n_msgs;
	struct pbs_enum *enums;
	size_t n_enums;
	char **strings; /* allocated names to free */
	size_t n_strings, cap_strings;
};

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return code;
}

/* Keep s (allocated) to free with the pool; returns s, NULL when out of memory. */
static char *pool_keep(struct pbs_pool *p, char *s)
{
	if (!s)
		return NULL;
	if (p->n_strings == p->cap_strings) {
		size_t cap = p->cap_strings ? 2 * p->cap_strings : 64;
		char **v = realloc(p->strings, cap * sizeof(*v));

		if (!v) {
			free(s);
			return NULL;
		}
		p->strings = v;
		p->cap_strings = cap;
	}
	p->strings[p->n_strings++] = s;
	return s;
}

static char *join_name(struct pbs_pool *p, const char *scope, const char *name)
{
	char *s;

	if (!*scope)
		return pool_keep(p, strdup(name ? name : ""));
	if (asprintf(&s, "%s.%s", scope, name ? name : "") < 0)
		return NULL;
	return pool_keep(p, s);
}

/* ---- pass 1: count, then name every message and enum ------------------- */

static void count_message(const Google__Protobuf__DescriptorProto *d, size_t *n_msgs, size_t *n_enums)
{
	(*n_msgs)++;
	*n_enums += d->n_enum_type;
	for (size_t i = 0; i < d->n_nested_type; i++)
		count_message(d->nested_type[i], n_msgs, n_enums);
}

static int name_message(struct pbs_pool *p, const char *scope, const Google__Protobuf__DescriptorProto *d,
			bool proto3)
{
	struct pbs_message *m = &p->msgs[p->n_msgs++];
	const char *full = join_name(p, scope, d->name);

	if (!full)
		return -ENOMEM;
	*m = (struct pbs_message){.full_name = full, .desc = d};
	m->map_entry = d->options && d->options->has_map_entry && d->options->map_entry;
	m->proto3 = proto3;
	for (size_t i = 0; i < d->n_enum_type; i++) {
		struct pbs_enum *e = &p->enums[p->n_enums++];

		e->desc = d->enum_type[i];
		if (!(e->full_name = join_name(p, full, e->desc->name)))
			return -ENOMEM;
	}
	for (size_t i = 0; i < d->n_nested_type; i++) {
		int r = name_message(p, full, d->nested_type[i], proto3);
		if (r < 0)
			return r;
	}
	return 0;
}

static int by_message_name(const void *a, const void *b)
{
	return strcmp(((const struct pbs_message *)a)->full_name, ((const struct pbs_message *)b)->full_name);
}

static int by_enum_name(const void *a, const void *b)
{
	return strcmp(((const struct pbs_enum *)a)->full_name, ((const struct pbs_enum *)b)->full_name);
}

static int name_all(struct pbs_pool *p)
{
	size_t n_msgs = 0, n_enums = 0;

	for (size_t f = 0; f < p->set->n_file; f++) {
		const Google__Protobuf__FileDescriptorProto *file = p->set->file[f];

		n_enums += file->n_enum_type;
		for (size_t i = 0; i < file->n_message_type; i++)
			count_message(file->message_type[i], &n_msgs, &n_enums);
	}
	p->msgs = calloc(n_msgs ? n_msgs : 1, sizeof(*p->msgs));
	p->enums = calloc(n_enums ? n_enums : 1, sizeof(*p->enums));
	if (!p->msgs || !p->enums)
		return -ENOMEM;
	for (size_t f = 0; f < p->set->n_file; f++) {
		const Google__Protobuf__FileDescriptorProto *file = p->set->file[f];
		const char *pkg = file->package ? file->package : "";
		bool proto3 = file->syntax && strcmp(file->syntax, "proto3") == 0;

		for (size_t i = 0; i < file->n_enum_type; i++) {
			struct pbs_enum *e = &p->enums[p->n_enums++];

			e->desc = file->enum_type[i];
			if (!(e->full_name = join_name(p, pkg, e->desc->name)))
				return -ENOMEM;
		}
		for (size_t i = 0; i < file->n_message_type; i++) {
			int r = name_message(p, pkg, file->message_type[i], proto3);
			if (r < 0)
				return r;
		}
	}
	qsort(p->msgs, p->n_msgs, sizeof(*p->msgs), by_message_name);
	qsort(p->enums, p->n_enums, sizeof(*p->enums), by_enum_name);
	return 0;
}

/* ---- pass 2: the field tables ------------------------------------------- */

static struct pbs_message *find_message(const struct pbs_pool *p, const char *name)
{
	struct pbs_message key = {.full_name = name};

	return bsearch(&key, p->msgs, p->n_msgs, sizeof(key), by_message_name);
}

static struct pbs_enum *find_enum(const struct pbs_pool *p, const char *name)
{
	struct pbs_enum key = {.full_name = name};

	return bsearch(&key, p->enums, p->n_enums, sizeof(key), by_enum_name);
}

/* lowerCamelCase of a proto field name, as protoc computes json_name. */
static char *camel_case(const char *name)
{
	char *s = malloc(strlen(name) + 1), *o = s;
	bool upper = false;

	if (!s)
		return NULL;
	for (const char *c = name; *c; c++) {
		if (*c == '_') {
			upper = true;
			continue;
		}
		*o++ = upper && *c >= 'a' && *c <= 'z' ? (char)(*c - 'a' + 'A') : *c;
		upper = false;
	}
	*o = '\0';
	return s;
}

static bool is_packable(enum pbs_type t)
{
	return t != PBS_STRING && t != PBS_BYTES && t != PBS_MESSAGE && t != PBS_GROUP;
}

static int resolve_type(struct pbs_pool *p, const struct pbs_message *m, struct pbs_field *f,
			const Google__Protobuf__FieldDescriptorProto *fd, char *err, size_t errlen)
{
	const char *tn = fd->type_name;

	if (f->type != PBS_MESSAGE && f->type != PBS_GROUP && f->type != PBS_ENUM)
		return 0;
	if (!tn || tn[0] != '.')
		return fail(err, errlen, -EINVAL, "%s.%s: type name '%s' is not fully qualified",
			    m->full_name, f->name, tn ? tn : "");
	if (f->type == PBS_ENUM)
		f->enm = find_enum(p, tn + 1);
	else
		f->msg = find_message(p, tn + 1);
	if (!f->enm && !f->msg)
		return fail(err, errlen, -EINVAL,
			    "%s.%s: type %s is not in the descriptor set (made without --include_imports?)",
			    m->full_name, f->name, tn + 1);
	return 0;
}

static int build_field(struct pbs_pool *p, const struct pbs_message *m, bool proto3, struct pbs_field *f,
		       const Google__Protobuf__FieldDescriptorProto *fd, char *err, size_t errlen)
{
	const Google__Protobuf__FieldOptions *o = fd->options;

	if (!fd->name || !fd->has_number || !fd->has_type || (int)fd->type < PBS_DOUBLE ||
	    (int)fd->type > PBS_SINT64)
		return fail(err, errlen, -EINVAL, "%s: a field without a name, number or valid type",
			    m->full_name);
	*f = (struct pbs_field){.name = fd->name, .number = fd->number, .type = (enum pbs_type)fd->type};
	f->json_name = fd->json_name ? fd->json_name : pool_keep(p, camel_case(fd->name));
	if (!f->json_name)
		return -ENOMEM;
	f->repeated =
	    fd->has_label && fd->label == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED;
	f->packed = f->repeated && is_packable(f->type) && (o && o->has_packed ? o->packed : proto3);
	f->oneof =
	    fd->has_oneof_index && !(fd->has_proto3_optional && fd->proto3_optional) ? fd->oneof_index : -1;
	f->presence = !f->repeated &&
		      (!proto3 || fd->has_oneof_index || f->type == PBS_MESSAGE || f->type == PBS_GROUP);
	return resolve_type(p, m, f, fd, err, errlen);
}

static int by_number(const void *a, const void *b)
{
	int32_t x = ((const struct pbs_field *)a)->number, y = ((const struct pbs_field *)b)->number;

	return (x > y) - (x < y);
}

static int build_fields(struct pbs_pool *p, struct pbs_message *m, char *err, size_t errlen)
{
	const Google__Protobuf__DescriptorProto *d = m->desc;
	bool proto3 = m->proto3;

	m->fields = calloc(d->n_field ? d->n_field : 1, sizeof(*m->fields));
	if (!m->fields)
		return -ENOMEM;
	for (size_t i = 0; i < d->n_field; i++) {
		int r = build_field(p, m, proto3, &m->fields[i], d->field[i], err, errlen);
		if (r < 0)
			return r;
		m->n_fields++;
	}
	qsort(m->fields, m->n_fields, sizeof(*m->fields), by_number);
	return 0;
}

/* ---- the pool ------------------------------------------------------------ */

int pbs_pool_parse(const void *data, size_t len, struct pbs_pool **out, char *err, size_t errlen)
{
	struct pbs_pool *p = calloc(1, sizeof(*p));
	int r;

	*out = NULL;
	if (!p)
		return -ENOMEM;
	p->set = google__protobuf__file_descriptor_set__unpack(NULL, len, data);
	if (!p->set) {
		free(p);
		return fail(err, errlen, -EINVAL, "not a protobuf descriptor set (FileDescriptorSet)");
	}
	r = name_all(p);
	for (size_t i = 0; r == 0 && i < p->n_msgs; i++)
		r = build_fields(p, &p->msgs[i], err, errlen);
	if (r < 0) {
		if (r == -ENOMEM)
			fail(err, errlen, r, "out of memory");
		pbs_pool_free(p);
		return r;
	}
	*out = p;
	return 0;
}

static int read_file(const char *path, void **data, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;
	struct stat st;
	char *buf = NULL;
	size_t got = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (!S_ISREG(st.st_mode) || (size_t)st.st_size > PBS_MAX_SET_BYTES)
		r = -EFBIG;
	else if (!(buf = malloc((size_t)st.st_size + 1)))
		r = -ENOMEM;
	while (r == 0 && got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			r = n < 0 ? -errno : -EIO;
		else
			got += (size_t)n;
	}
	close(fd);
	if (r < 0) {
		free(buf);
		return r;
	}
	*data = buf;
	*len = got;
	return 0;
}

int pbs_pool_load(const char *path, struct pbs_pool **out, char *err, size_t errlen)
{
	void *data = NULL;
	size_t len = 0;
	int r = read_file(path, &data, &len);

	*out = NULL;
	if (r < 0)
		return fail(err, errlen, r, "%s: %s", path,
			    r == -EFBIG ? "not a regular file of at most 64 MiB" : strerror(-r));
	char why[256] = "";

	r = pbs_pool_parse(data, len, out, why, sizeof(why));
	free(data);
	if (r < 0)
		fail(err, errlen, r, "%s: %s", path, why);
	return r;
}

void pbs_pool_free(struct pbs_pool *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_msgs; i++)
		free(p->msgs[i].fields);
	for (size_t i = 0; i < p->n_strings; i++)
		free(p->strings[i]);
	free(p->strings);
	free(p->msgs);
	free(p->enums);
	google__protobuf__file_descriptor_set__free_unpacked(p->set, NULL);
	free(p);
}

const struct pbs_message *pbs_pool_message(const struct pbs_pool *p, const char *name)
{
	if (name[0] == '.')
		name++;
	return find_message(p, name);
}

const struct pbs_field *pbs_message_field(const struct pbs_message *m, int32_t number)
{
	struct pbs_field key = {.number = number};

	return bsearch(&key, m->fields, m->n_fields, sizeof(key), by_number);
}

static bool name_is(const char *s, const char *name, size_t len)
{
	return strncmp(s, name, len) == 0 && s[len] == '\0';
}

const struct pbs_field *pbs_message_field_named(const struct pbs_message *m, const char *name, size_t len)
{
	for (size_t i = 0; i < m->n_fields; i++)
		if (name_is(m->fields[i].json_name, name, len))
			return &m->fields[i];
	for (size_t i = 0; i < m->n_fields; i++)
		if (name_is(m->fields[i].name, name, len))
			return &m->fields[i];
	return NULL;
}

const char *pbs_enum_name(const struct pbs_enum *e, int32_t number)
{
	for (size_t i = 0; i < e->desc->n_value; i++)
		if (e->desc->value[i]->number == number)
			return e->desc->value[i]->name;
	return NULL;
}

int pbs_enum_number(const struct pbs_enum *e, const char *name, int32_t *number)
{
	for (size_t i = 0; i < e->desc->n_value; i++)
		if (e->desc->value[i]->name && strcmp(e->desc->value[i]->name, name) == 0) {
			*number = e->desc->value[i]->number;
			return 0;
		}
	return -ENOENT;
}

enum pbs_wire pbs_type_wire(enum pbs_type t)
{
	switch (t) {
	case PBS_DOUBLE:
	case PBS_FIXED64:
	case PBS_SFIXED64:
		return PBS_WIRE_I64;
	case PBS_FLOAT:
	case PBS_FIXED32:
	case PBS_SFIXED32:
		return PBS_WIRE_I32;
	case PBS_STRING:
	case PBS_BYTES:
	case PBS_MESSAGE:
		return PBS_WIRE_LEN;
	case PBS_GROUP:
		return PBS_WIRE_SGROUP;
	default:
		return PBS_WIRE_VARINT;
	}
}
