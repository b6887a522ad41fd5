/* SPDX-License-Identifier: MIT */
/*
 * A real mosquitto and real lbus-bridge processes for the bridge tests (see
 * harness-mqtt.h). Certificates are made with openssl, EC P-256 keys (fast).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness-mqtt.h"

static const char *env_or_empty(const char *name)
{
	const char *v = getenv(name);
	return v ? v : "";
}

/* A TCP port nobody listens on right now. */
static int free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static bool port_open(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;

	close(fd);
	return ok;
}

static int run_quiet(const char *const *argv)
{
	struct lbt_proc p = {0};
	int r = lbt_runv(argv, NULL, 0, lbt_ms(20000), &p);

	if (r == 0 && p.exit_code != 0) {
		fprintf(stderr, "%s failed (%d): %s\n", argv[0], p.exit_code, p.err);
		r = -ECHILD;
	}
	lbt_proc_free(&p);
	return r;
}

/* The test CA and a server certificate for 127.0.0.1 and localhost, and
 * another CA that signed nothing here. */
static int make_certs(const char *dir)
{
	const char *ssl = env_or_empty("OPENSSL");
	char ca_key[PATH_MAX], ca[PATH_MAX], key[PATH_MAX], csr[PATH_MAX], crt[PATH_MAX], ext[PATH_MAX];

	lbt_path(ca_key, dir, "ca.key");
	lbt_path(ca, dir, "ca.pem");
	lbt_path(key, dir, "server.key");
	lbt_path(csr, dir, "server.csr");
	lbt_path(crt, dir, "server.pem");
	if (lbt_write_file(dir, "ext.cnf", "subjectAltName=IP:127.0.0.1,DNS:localhost\n", 42, ext))
		return -EIO;
	const char *gen_ca[] = {ssl,
				"req",
				"-x509",
				"-newkey",
				"ec",
				"-pkeyopt",
				"ec_paramgen_curve:prime256v1",
				"-nodes",
				"-keyout",
				ca_key,
				"-out",
				ca,
				"-days",
				"2",
				"-subj",
				"/CN=lbus test CA",
				NULL};
	const char *gen_csr[] = {ssl,
				 "req",
				 "-newkey",
				 "ec",
				 "-pkeyopt",
				 "ec_paramgen_curve:prime256v1",
				 "-nodes",
				 "-keyout",
				 key,
				 "-out",
				 csr,
				 "-subj",
				 "/CN=localhost",
				 NULL};
	const char *sign[] = {
	    ssl,    "x509", "-req",  "-in", csr,	"-CA", ca,  "-CAkey", ca_key, "-CAcreateserial",
	    "-out", crt,    "-days", "2",   "-extfile", ext,   NULL};
	char other_key[PATH_MAX], other[PATH_MAX];
	lbt_path(other_key, dir, "other-ca.key");
	lbt_path(other, dir, "other-ca.pem");
	const char *gen_other[] = {ssl,
				   "req",
				   "-x509",
				   "-newkey",
				   "ec",
				   "-pkeyopt",
				   "ec_paramgen_curve:prime256v1",
				   "-nodes",
				   "-keyout",
				   other_key,
				   "-out",
				   other,
				   "-days",
				   "2",
				   "-subj",
				   "/CN=another CA",
				   NULL};
	if (run_quiet(gen_ca) || run_quiet(gen_csr) || run_quiet(sign) || run_quiet(gen_other))
		return -EIO;
	return 0;
}

int lbt_mosquitto_start(struct lbt_mosquitto *m)
{
	const char *argv[] = {env_or_empty("MOSQUITTO"), "-c", m->conf, NULL};
	int64_t deadline = lbt_now_ms() + lbt_ms(10000);

	memset(&m->proc, 0, sizeof(m->proc));
	if (lbt_proc_spawn(&m->proc, argv))
		return -EIO;
	while (!port_open(m->port) || !port_open(m->tls_port)) {
		if (lbt_now_ms() > deadline || lbt_proc_exited(&m->proc)) {
			fprintf(stderr, "mosquitto did not start: %s\n", m->proc.err);
			return -EIO;
		}
		lbt_sleep_ms(20);
	}
	return 0;
}

int lbt_mosquitto_stop(struct lbt_mosquitto *m)
{
	lbt_proc_signal(&m->proc, SIGTERM);
	int r = lbt_proc_wait(&m->proc, lbt_ms(10000));
	lbt_proc_free(&m->proc);
	return r;
}

static int write_conf(struct lbt_mosquitto *m, const char *dir)
{
	char text[4096];
	int n = snprintf(
	    text, sizeof(text),
	    "per_listener_settings false\nallow_anonymous true\nset_tcp_nodelay true\n"
	    "persistence true\npersistence_location %s/\nautosave_interval 0\n"
	    "max_queued_messages 100000\nmax_inflight_messages 100\n%s"
	    "listener %d 127.0.0.1\n"
	    "listener %d 127.0.0.1\ncafile %s/ca.pem\ncertfile %s/server.pem\nkeyfile %s/server.key\n",
	    dir, geteuid() == 0 ? "user root\n" : "", m->port, m->tls_port, dir, dir, dir);
	return lbt_write_file(dir, "mosquitto.conf", text, (size_t)n, m->conf);
}

int lbt_bridge_start(struct lbt_proc *p, const struct lbt_mosquitto *m, const struct lbt_broker *bus,
		     const char *name, const char *routes, const char *tls_ca)
{
	char text[4096], path[PATH_MAX];
	int n =
	    snprintf(text, sizeof(text), "host = 127.0.0.1\nport = %d\nclient_id = %s\nsocket = %s\n%s%s%s%s",
		     tls_ca ? m->tls_port : m->port, name, bus->sock, tls_ca ? "tls_ca = " : "",
		     tls_ca ? tls_ca : "", tls_ca ? "\n" : "", routes);
	char file[64];
	snprintf(file, sizeof(file), "%s.conf", name);
	if (lbt_write_file(m->files.dir, file, text, (size_t)n, path))
		return -EIO;
	const char *argv[] = {env_or_empty("LBUS_BRIDGE"), "-c", path, NULL};
	memset(p, 0, sizeof(*p));
	return lbt_proc_spawn(p, argv);
}

char *lbt_bridge_status(const struct lbt_broker *bus, const char *name)
{
	lbus *c;
	struct lbus_reply *r = NULL;
	char *s = NULL;

	if (lbt_connect(bus, &c))
		return NULL;
	if (lbus_call(c, name, "status", 6, lbt_ms(3000), &r) == 0)
		s = strndup(r->data, r->len);
	lbus_reply_free(r);
	lbus_close(c);
	return s;
}

long long lbt_bridge_status_num(const struct lbt_broker *bus, const char *name, const char *key)
{
	char *s = lbt_bridge_status(bus, name), pat[64];
	long long v = -1;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	char *p = s ? strstr(s, pat) : NULL;
	if (p)
		v = strtoll(p + strlen(pat), NULL, 10);
	free(s);
	return v;
}

bool lbt_bridge_wait_connected(const struct lbt_broker *bus, const char *name, bool want)
{
	int64_t deadline = lbt_now_ms() + lbt_ms(15000);
	const char *needle = want ? "\"connected\":true" : "\"connected\":false";

	while (lbt_now_ms() < deadline) {
		char *s = lbt_bridge_status(bus, name);
		bool ok = s && strstr(s, needle);
		free(s);
		if (ok)
			return true;
		lbt_sleep_ms(50);
	}
	return false;
}

bool lbt_mosquitto_available(void)
{
	if (*env_or_empty("MOSQUITTO") && *env_or_empty("OPENSSL") && *env_or_empty("LBUS_BRIDGE"))
		return true;
	fprintf(stderr, "mosquitto or openssl is not installed (tools/deps.sh installs them): skipping\n");
	return false;
}

int lbt_mosquitto_setup(struct lbt_mosquitto *m)
{
	memset(m, 0, sizeof(*m));
	m->port = free_port();
	m->tls_port = free_port();
	while (m->tls_port == m->port)
		m->tls_port = free_port();
	if (lbt_broker_make_dir(&m->files) || make_certs(m->files.dir) || write_conf(m, m->files.dir))
		return -EIO;
	return lbt_mosquitto_start(m);
}

void lbt_mosquitto_cleanup(struct lbt_mosquitto *m)
{
	if (m->proc.pid)
		lbt_mosquitto_stop(m);
	lbt_broker_kill(&m->files);
}

const char *lbt_bridge_path(void)
{
	return env_or_empty("LBUS_BRIDGE");
}

int lbt_bridge_stop(struct lbt_proc *p)
{
	lbt_proc_signal(p, SIGTERM);
	int r = lbt_proc_wait(p, lbt_ms(10000));
	if (r == 0 && p->exit_code == 0)
		return 0;
	fprintf(stderr, "lbus-bridge exited with %d after SIGTERM:\n%s\n", p->exit_code,
		p->err ? p->err : "");
	return -ECHILD;
}
