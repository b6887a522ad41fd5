/* SPDX-License-Identifier: MIT */
/*
 * File descriptors travelling with a message through the broker.
 *
 * A frame may carry up to LBUS_MAX_FDS_PER_FRAME descriptors (SCM_RIGHTS
 * with its first byte, PROTOCOL.md). The transport receives them into a
 * struct fdset; the bus attaches the set to the message body (msgbuf.fds),
 * so every recipient's queue entry, the retained store and a call's result
 * share the one set by reference. Each delivery hands its recipient a copy
 * of the descriptors: sendmsg(SCM_RIGHTS) duplicates them into the receiving
 * process, so the broker holds each descriptor once, however many receive it,
 * and closes it when the last reference goes.
 *
 * Accounting: a set is charged to the client that sent it (struct fdacct):
 * the descriptors and the bytes of the sealed memfds among them that it has
 * in the broker at once are bounded (per-client limits, config.h). The
 * account outlives its client while its sets are queued to others.
 *
 * Ownership: fdset_new() returns one reference; fdset_unref() of the last
 * one closes the descriptors and uncharges the account.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* What a client has in the broker: charged by its fdsets. */
struct fdacct {
	uint32_t refs;	      /* the client's own plus one per live fdset */
	uint32_t fds;	      /* descriptors held */
	uint64_t memfd_bytes; /* sizes of the sealed memfds among them */
	uint64_t *global_fds; /* the broker's total of descriptors held, or NULL */
};

struct fdset {
	uint32_t refs;
	uint32_t n;
	uint64_t memfd_bytes; /* total size of the sealed memfds in fds[] */
	struct fdacct *acct;  /* charged, one reference; may be NULL */
	int fds[];
};

/* A new account with the caller's reference; NULL on ENOMEM. */
struct fdacct *fdacct_new(uint64_t *global_fds);
void fdacct_unref(struct fdacct *a);

/*
 * A set taking over fds[0..n) (closed on failure too), one reference;
 * NULL on ENOMEM. memfd_bytes is filled in (fdset_size_memfds).
 */
struct fdset *fdset_new(const int *fds, uint32_t n);

static inline struct fdset *fdset_ref(struct fdset *s)
{
	s->refs++;
	return s;
}

/* Drop one reference; the last closes the descriptors. NULL is accepted. */
void fdset_unref(struct fdset *s);

/* Charge s to acct (once). */
void fdset_charge(struct fdset *s, struct fdacct *acct);

/* Is fd a memfd sealed against every change (write, grow, shrink, seal)?
 * Its size in *size then. */
int fd_sealed_memfd_size(int fd, uint64_t *size);
