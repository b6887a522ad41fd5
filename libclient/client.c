/* SPDX-License-Identifier: MIT */
/*
 * The handle's life: connect (resolve the socket path, non-blocking
 * connect, Hello, wait for Welcome through the dispatch core, all within
 * the connection's timeout), close (write what the socket takes at once,
 * report what is lost, complete pending calls and requests, free
 * everything), plus the small accessors, handler setters, the option
 * structs' size check and lbus_strerror()/lbus_version().
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "client-internal.h"
#include "errcode.h"
#include "lbus-limits.h"
#include "sockpath.h"

/* Pause between connect attempts while the broker's backlog is full. */
#define CONNECT_RETRY_MS 10

/* Non-blocking connect to path; retries while the listen backlog is full
 * (EAGAIN) until deadline. Returns the fd or -errno. */
static int sock_connect(const char *path, int64_t deadline)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	if (len >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	memcpy(addr.sun_path, path, len + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	for (;;) {
		if (connect(fd, (const struct sockaddr *)&addr, sizeof(addr)) == 0)
			return fd;
		int err = errno;
		if (err == EINTR)
			continue;
		if (err == EAGAIN && (deadline < 0 || io_now_ms() < deadline)) {
			poll(NULL, 0, CONNECT_RETRY_MS);
			continue;
		}
		close(fd);
		return err == EAGAIN ? -ETIMEDOUT : -err;
	}
}

/* The socket's directory must not be a symbolic link: whoever owns the link
 * can re-point it (lbusd never listens in one). 0, -ELOOP, or -errno
 * (-ENOENT: no broker there). */
static int check_socket_dir(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)NULL)->sun_path)];
	const char *slash = strrchr(path, '/');
	struct stat st;

	if (!slash)
		return 0; /* the working directory */
	if (slash == path)
		return 0; /* "/" */
	if ((size_t)(slash - path) >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	if (lstat(dir, &st) < 0)
		return -errno;
	return S_ISLNK(st.st_mode) ? -ELOOP : 0;
}

/* Anybody may have created the socket first (at /tmp/lbus-$UID, or wherever
 * LBUS_SOCKET or -S sends us): trust a broker only if it runs as our
 * effective user or root (SO_PEERCRED), before sending it anything. lbusd
 * never serves a foreign uid, so this costs nothing. 0, -EPERM, or -errno. */
static int check_broker_uid(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	if (cred.uid != geteuid() && cred.uid != 0)
		return -EPERM;
	return 0;
}

int client_socket_open(const char *path, bool any_uid, int64_t deadline)
{
	int r = check_socket_dir(path);
	if (r < 0)
		return r;
	int fd = sock_connect(path, deadline);
	if (fd >= 0 && !any_uid) {
		r = check_broker_uid(fd);
		if (r < 0) {
			close(fd);
			fd = r;
		}
	}
	return fd;
}

int client_send_hello(struct lbus *bus)
{
	Lbus__Hello hello = LBUS__HELLO__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	hello.version = LBUS_PROTOCOL_VERSION;
	f.kind_case = LBUS__FRAME__KIND_HELLO;
	f.hello = &hello;
	return io_out_frame(bus, &f);
}

int client_on_welcome(struct lbus *bus, const struct lbus_wire_frame *f)
{
	if (bus->welcomed)
		return 0;
	Lbus__Welcome *w = lbus__welcome__unpack(NULL, f->body_len, f->body);
	if (!w)
		return -EPROTO;
	if (w->version != LBUS_PROTOCOL_VERSION) {
		io_fail(bus, -EPROTONOSUPPORT);
	} else {
		bus->client_id = w->client_id;
		if (w->max_frame)
			bus->max_frame = w->max_frame;
		bus->welcomed = true;
		rc_on_welcome(bus);
	}
	lbus__welcome__free_unpacked(w, NULL);
	return 0;
}

/* The caller's connect options, reading only what its size covers (a
 * program built against an older lbus.h passes a smaller struct). */
static int connect_opts_read(const struct lbus_connect_opts *in, struct lbus_connect_opts *out)
{
	struct lbus_connect_opts defaults = LBUS_CONNECT_OPTS_INIT;
	*out = defaults;
	if (!in)
		return 0;
	if (in->size < sizeof(in->size))
		return -EINVAL;
	memcpy(out, in, in->size < sizeof(*out) ? in->size : sizeof(*out));
	if (!out->publish_buffer)
		out->publish_buffer = LBUS_DEFAULT_PUBLISH_BUFFER;
	if (!out->input_buffer)
		out->input_buffer = LBUS_DEFAULT_INPUT_BUFFER;
	return 0;
}

/* A handle with its buffers empty and the options applied; NULL on -ENOMEM. */
static struct lbus *client_new(const struct lbus_connect_opts *opts)
{
	struct lbus *bus = calloc(1, sizeof(*bus));
	if (!bus)
		return NULL;
	bus->max_frame = LBUS_DEFAULT_MAX_FRAME;
	bus->timeout_ms = opts->timeout_ms;
	bus->out_batch = opts->publish_buffer;
	bus->in_bound = opts->input_buffer;
	bus->any_broker_uid = opts->any_broker_uid;
	bus->memfd_threshold = opts->memfd_threshold;
	bus->memfd_keep_fd = opts->memfd_keep_fd;
	bus->attach_tail = &bus->attach_head;
	bus->batch_tail = &bus->batch_head;
	lbus_rbuf_init(&bus->in);
	idmap_init(&bus->subs);
	idmap_init(&bus->calls);
	return bus;
}

/* The broker's reason for refusing bus's hello into reason (size bytes,
 * NUL-terminated), "" when none came. */
static void copy_refusal(const struct lbus *bus, char *reason, size_t size)
{
	if (!reason || !size)
		return;
	reason[0] = '\0';
	if (bus->last_reason && bus->last_err == bus->dead)
		snprintf(reason, size, "%s", bus->last_reason);
}

/* lbus_connect() with options (NULL: the defaults) and the broker's reason
 * for a refusal copied into reason (NULL for none). */
static int client_connect(lbus **out, const char *path, const struct lbus_connect_opts *in_opts, char *reason,
			  size_t size)
{
	char sockpath[sizeof(((struct sockaddr_un *)NULL)->sun_path)];
	struct lbus_connect_opts opts;
	if (reason && size)
		reason[0] = '\0';
	if (!out)
		return -EINVAL;
	*out = NULL;
	int r = connect_opts_read(in_opts, &opts);
	if (r < 0)
		return r;
	r = lbus_socket_path_resolve(path, sockpath, sizeof(sockpath), NULL);
	if (r < 0)
		return r;
	struct lbus *bus = client_new(&opts);
	if (!bus)
		return -ENOMEM;
	int64_t deadline = io_deadline(opts.timeout_ms);
	bus->fd = client_socket_open(sockpath, bus->any_broker_uid, deadline);
	rc_init(bus, &opts, sockpath);
	if (bus->fd < 0) {
		r = bus->fd;
		free(bus);
		return r;
	}
	r = client_send_hello(bus);
	if (r == 0 || bus->dead) /* a refusal may be waiting to be read */
		r = io_wait(bus, &bus->welcomed, deadline);
	if (r == 0 && bus->dead)
		r = bus->dead;
	if (r < 0) {
		copy_refusal(bus, reason, size);
		lbus_close(bus);
		return r;
	}
	*out = bus;
	return 0;
}

int lbus_connect(lbus **out, const char *path)
{
	return client_connect(out, path, NULL, NULL, 0);
}

int lbus_connect_with(lbus **out, const char *path, const struct lbus_connect_opts *opts)
{
	return client_connect(out, path, opts, NULL, 0);
}

int lbus_connect_reason(lbus **out, const char *path, char *reason, size_t size)
{
	return client_connect(out, path, NULL, reason, size);
}

int lbus_close(lbus *bus)
{
	if (!bus)
		return 0;
	if (!bus->dead && bus->welcomed)
		io_out_drain(bus, 0, io_deadline(0));
	int r = 0;
	if (lbus_unsent(bus))
		r = bus->dead ? bus->dead : rc_down(bus) ? -ECONNRESET : -EAGAIN;
	io_fail(bus, -ECONNRESET);
	req_fail_all(bus, bus->dead);
	calls_fail_all(bus, -ECONNRESET);
	close(bus->fd);
	calls_deinit(bus);
	sub_deinit_all(bus);
	io_deinit(bus);
	rc_deinit(bus);
	free(bus->last_reason);
	free(bus->request_reason);
	free(bus);
	return r;
}

uint64_t lbus_client_id(const lbus *bus)
{
	return bus->client_id;
}

size_t lbus_max_frame(const lbus *bus)
{
	return bus->max_frame;
}

/* -EPERM has two meanings in lbus.h; its text covers both. */
#define CLIENT_ELOOP_TEXT                                                                                    \
	"the socket's directory is a symbolic link (refused: whoever owns the link can re-point it)"
#define CLIENT_EPERM_TEXT "not permitted (not the owner of that name, or the broker runs as another user)"

const char *lbus_strerror(int err)
{
	int e = err < 0 ? -err : err;
	if (e == EPERM)
		return CLIENT_EPERM_TEXT;
	if (e == ELOOP)
		return CLIENT_ELOOP_TEXT;
	const char *text = lbus_errno_text(-e);
	if (text)
		return text;
	text = strerrordesc_np(e);
	return text ? text : "unknown error";
}

const char *lbus_version(void)
{
	return LBUS_VERSION_STRING;
}

void lbus_on_message(lbus *bus, lbus_msg_fn fn, void *userdata)
{
	bus->msg_fn = fn;
	bus->msg_ud = userdata;
}

void lbus_on_call(lbus *bus, lbus_msg_fn fn, void *userdata)
{
	bus->call_fn = fn;
	bus->call_ud = userdata;
}

void lbus_on_dropped(lbus *bus, lbus_dropped_fn fn, void *userdata)
{
	bus->dropped_fn = fn;
	bus->dropped_ud = userdata;
}

void lbus_on_error(lbus *bus, lbus_error_fn fn, void *userdata)
{
	bus->err_fn = fn;
	bus->err_ud = userdata;
}

const char *lbus_request_reason(const lbus *bus)
{
	return bus->request_reason;
}

int lbus_last_error(const lbus *bus, const char **reason)
{
	if (reason)
		*reason = bus->last_reason;
	return bus->last_err;
}
