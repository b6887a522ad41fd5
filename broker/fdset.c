/* SPDX-License-Identifier: MIT */
/*
 * Shared descriptor sets and their accounts (see fdset.h).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdset.h"

#define FDSET_SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

struct fdacct *fdacct_new(uint64_t *global_fds)
{
	struct fdacct *a = calloc(1, sizeof(*a));

	if (a) {
		a->refs = 1;
		a->global_fds = global_fds;
	}
	return a;
}

void fdacct_unref(struct fdacct *a)
{
	if (a && --a->refs == 0)
		free(a);
}

int fd_sealed_memfd_size(int fd, uint64_t *size)
{
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);

	if (seals < 0 || (seals & FDSET_SEALS) != FDSET_SEALS || fstat(fd, &st) < 0)
		return 0;
	*size = (uint64_t)st.st_size;
	return 1;
}

struct fdset *fdset_new(const int *fds, uint32_t n)
{
	struct fdset *s = malloc(sizeof(*s) + n * sizeof(int));

	if (!s) {
		for (uint32_t i = 0; i < n; i++)
			close(fds[i]);
		return NULL;
	}
	s->refs = 1;
	s->n = n;
	s->memfd_bytes = 0;
	s->acct = NULL;
	memcpy(s->fds, fds, n * sizeof(int));
	for (uint32_t i = 0; i < n; i++) {
		uint64_t size;

		if (fd_sealed_memfd_size(fds[i], &size))
			s->memfd_bytes += size;
	}
	return s;
}

void fdset_charge(struct fdset *s, struct fdacct *acct)
{
	if (s->acct || !acct)
		return;
	s->acct = acct;
	acct->refs++;
	acct->fds += s->n;
	acct->memfd_bytes += s->memfd_bytes;
	if (acct->global_fds)
		*acct->global_fds += s->n;
}

void fdset_unref(struct fdset *s)
{
	if (!s || --s->refs > 0)
		return;
	for (uint32_t i = 0; i < s->n; i++)
		close(s->fds[i]);
	if (s->acct) {
		s->acct->fds -= s->n;
		s->acct->memfd_bytes -= s->memfd_bytes;
		if (s->acct->global_fds)
			*s->acct->global_fds -= s->n;
		fdacct_unref(s->acct);
	}
	free(s);
}
