/* SPDX-License-Identifier: MIT */
/*
 * Intrusive doubly linked lists, as in the Linux kernel: a `struct list` is
 * embedded in the object, a `struct list` head lives in its container, and
 * container_of() gets back from the link to the object. An unlinked node
 * points to itself, so list_linked() tells whether it is on a list and
 * list_del() is safe to call twice.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct list {
	struct list *next, *prev;
};

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static inline void list_init(struct list *l)
{
	l->next = l->prev = l;
}

static inline bool list_empty(const struct list *head)
{
	return head->next == head;
}

/* Is this node (not head) on some list? */
static inline bool list_linked(const struct list *n)
{
	return n->next != n;
}

static inline void list_add_tail(struct list *head, struct list *n)
{
	n->prev = head->prev;
	n->next = head;
	head->prev->next = n;
	head->prev = n;
}

static inline void list_del(struct list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	list_init(n);
}

/* Move every node of src to the tail of head; src is left empty. */
static inline void list_splice_tail(struct list *head, struct list *src)
{
	if (list_empty(src))
		return;
	src->next->prev = head->prev;
	src->prev->next = head;
	head->prev->next = src->next;
	head->prev = src->prev;
	list_init(src);
}

/* Iterate allowing the current node to be removed. */
#define list_for_each_safe(pos, tmp, head)                                                                   \
	for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); (pos) = (tmp), (tmp) = (pos)->next)
