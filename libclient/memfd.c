/* SPDX-License-Identifier: MIT */
/*
 * Payloads offloaded to sealed memfds (PROTOCOL.md, "Memfd payloads").
 *
 * Sending: io_out_frame() passes every publish, send, call and reply
 * through memfd_offload_frame(): a payload of at least the connection's
 * memfd_threshold (lbus_connect_opts) is written into a new memfd, sealed
 * against every change (F_SEAL_WRITE|SHRINK|GROW|SEAL), and travels as the
 * frame's first descriptor with payload_memfd set and an empty payload;
 * the broker forwards the descriptor, never the bytes, so a payload is
 * bounded by memory, not by max_frame.
 *
 * Receiving: memfd_map() checks that the descriptor is such a sealed memfd
 * and maps it read-only; the message's data/len point into the mapping
 * during the callback. A memfd that is not sealed (its sender could still
 * change or shrink it under the mapping) is a bad message: not delivered,
 * reported as an asynchronous -EBADMSG.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client-internal.h"

#define MEMFD_SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

/* A sealed memfd holding data[0..len), or -errno. */
static int memfd_make(const void *data, size_t len)
{
	int fd = memfd_create("lbus-payload", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	const uint8_t *p = data;

	if (fd < 0)
		return -errno;
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int err = n < 0 ? -errno : -EIO;
			close(fd);
			return err;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fcntl(fd, F_ADD_SEALS, MEMFD_SEALS) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* The payload field of f's message, if it is one that may be offloaded. */
static ProtobufCBinaryData *frame_payload(Lbus__Frame *g, void *copy, protobuf_c_boolean **flag)
{
	switch (g->kind_case) {
	case LBUS__FRAME__KIND_PUBLISH:
		memcpy(copy, g->publish, sizeof(*g->publish));
		g->publish = copy;
		*flag = &g->publish->payload_memfd;
		return &g->publish->payload;
	case LBUS__FRAME__KIND_SEND:
		memcpy(copy, g->send, sizeof(*g->send));
		g->send = copy;
		*flag = &g->send->payload_memfd;
		return &g->send->payload;
	case LBUS__FRAME__KIND_CALL:
		memcpy(copy, g->call, sizeof(*g->call));
		g->call = copy;
		*flag = &g->call->payload_memfd;
		return &g->call->payload;
	case LBUS__FRAME__KIND_REPLY:
		if (g->reply->error)
			return NULL;
		memcpy(copy, g->reply, sizeof(*g->reply));
		g->reply = copy;
		*flag = &g->reply->payload_memfd;
		return &g->reply->payload;
	default:
		return NULL;
	}
}

bool memfd_wants(const struct lbus *bus, size_t len)
{
	return bus->memfd_threshold && len >= bus->memfd_threshold && !bus->rc.enabled &&
	       bus->attach_n < LBUS_MAX_FDS_PER_FRAME;
}

int memfd_offload_frame(struct lbus *bus, Lbus__Frame *g, union memfd_msg *copy)
{
	protobuf_c_boolean *flag;
	ProtobufCBinaryData *payload;
	int fd;

	switch (g->kind_case) {
	case LBUS__FRAME__KIND_PUBLISH:
	case LBUS__FRAME__KIND_SEND:
	case LBUS__FRAME__KIND_CALL:
	case LBUS__FRAME__KIND_REPLY:
		break;
	default:
		return 0;
	}
	payload = frame_payload(g, copy, &flag);
	if (!payload || !memfd_wants(bus, payload->len))
		return 0;
	fd = memfd_make(payload->data, payload->len);
	if (fd < 0)
		return fd;
	/* the payload's descriptor comes first */
	memmove(bus->attach_fds + 1, bus->attach_fds, bus->attach_n * sizeof(int));
	bus->attach_fds[0] = fd;
	bus->attach_n++;
	payload->data = NULL;
	payload->len = 0;
	*flag = true;
	return 0;
}

int memfd_map(int fd, const void **data, size_t *len)
{
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);
	void *p;

	if (seals < 0 || (seals & MEMFD_SEALS) != MEMFD_SEALS || fstat(fd, &st) < 0 || st.st_size < 0)
		return -EBADMSG;
	*len = (size_t)st.st_size;
	if (!*len) {
		*data = "";
		return 0;
	}
	p = mmap(NULL, *len, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	*data = p;
	return 0;
}

void memfd_unmap(const void *data, size_t len)
{
	if (len)
		munmap((void *)(uintptr_t)data, len);
}
