/* SPDX-License-Identifier: MIT */
/*
 * Pool of reference-counted message buffers (see msgbuf.h). Each class keeps
 * at most ~2 MiB of free buffers, so a burst does not pin memory forever.
 */
#include <stdlib.h>

#include "fdset.h"
#include "msgbuf.h"

#define MSGPOOL_CACHE_BYTES (2u * 1024u * 1024u)

void msgpool_init(struct msgpool *p)
{
	for (unsigned i = 0; i < MSGPOOL_CLASSES; i++) {
		p->free[i] = NULL;
		p->nfree[i] = 0;
	}
	p->live = 0;
}

void msgpool_deinit(struct msgpool *p)
{
	for (unsigned i = 0; i < MSGPOOL_CLASSES; i++) {
		while (p->free[i]) {
			struct msgbuf *m = p->free[i];
			p->free[i] = m->next_free;
			free(m);
		}
		p->nfree[i] = 0;
	}
}

static unsigned size_class(size_t size)
{
	unsigned cls = 0;

	while (cls < MSGPOOL_CLASSES && ((size_t)1 << (MSGPOOL_MIN_SHIFT + cls)) < size)
		cls++;
	return cls;
}

/* A new buffer of cap bytes in class cls (MSGPOOL_CLASSES: none); NULL on
 * ENOMEM. */
static struct msgbuf *msgbuf_alloc(struct msgpool *p, size_t cap, unsigned cls)
{
	struct msgbuf *m = malloc(sizeof(*m) + cap);

	if (!m)
		return NULL;
	m->cap = (uint32_t)cap;
	m->cls = cls;
	m->pool = p;
	return m;
}

/* m, fresh or recycled, handed out: empty, one reference. */
static struct msgbuf *msgbuf_handed_out(struct msgpool *p, struct msgbuf *m)
{
	m->refs = 1;
	m->len = 0;
	m->next_free = NULL;
	m->fds = NULL;
	p->live++;
	return m;
}

struct msgbuf *msgbuf_new(struct msgpool *p, size_t size)
{
	unsigned cls = size_class(size);
	struct msgbuf *m;

	if (size > UINT32_MAX)
		return NULL;
	if (cls < MSGPOOL_CLASSES && p->free[cls]) {
		m = p->free[cls];
		p->free[cls] = m->next_free;
		p->nfree[cls]--;
	} else {
		m = msgbuf_alloc(p, cls < MSGPOOL_CLASSES ? (size_t)1 << (MSGPOOL_MIN_SHIFT + cls) : size,
				 cls);
		if (!m)
			return NULL;
	}
	return msgbuf_handed_out(p, m);
}

struct msgbuf *msgbuf_new_exact(struct msgpool *p, size_t size)
{
	struct msgbuf *m;

	if (size > UINT32_MAX)
		return NULL;
	m = msgbuf_alloc(p, size, MSGPOOL_CLASSES);
	return m ? msgbuf_handed_out(p, m) : NULL;
}

uint32_t msgbuf_nfds(const struct msgbuf *m)
{
	return m->fds ? m->fds->n : 0;
}

void msgbuf_unref(struct msgbuf *m)
{
	struct msgpool *p;

	if (!m || --m->refs > 0)
		return;
	fdset_unref(m->fds);
	m->fds = NULL;
	p = m->pool;
	p->live--;
	if (m->cls < MSGPOOL_CLASSES &&
	    p->nfree[m->cls] < (MSGPOOL_CACHE_BYTES >> (MSGPOOL_MIN_SHIFT + m->cls))) {
		m->next_free = p->free[m->cls];
		p->free[m->cls] = m;
		p->nfree[m->cls]++;
		return;
	}
	free(m);
}
