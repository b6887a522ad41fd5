/* SPDX-License-Identifier: MIT */
/*
 * Integration test harness, part 4: readiness probes through liblbus. A
 * child `lbus sub` or `lbus listen` prints nothing when it is ready, so the
 * harness proves it instead: it publishes (or sends) probe messages until one
 * comes out of the child, then a marker, and hands the test the output
 * offset after which only the test's own messages appear. The round trip
 * proves a broker still serves after whatever a test did to it.
 */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int lbt_connect(const struct lbt_broker *b, lbus **out)
{
	int r = lbus_connect(out, b->sock);
	if (r < 0) {
		fprintf(stderr, "harness: lbus_connect(%s): %s\n", b->sock, lbus_strerror(r));
		lbt_broker_alive(b);
	}
	return r;
}

/* Offset just after the newline that ends the line holding p->out[at]. */
static long end_of_line(struct lbt_proc *p, long at, int64_t deadline)
{
	int left = (int)(deadline - lbt_now_ms());
	long nl = lbt_proc_read_until(p, "\n", (size_t)at, left > 0 ? left : 0);
	return nl < 0 ? nl : nl + 1;
}

long lbt_sub_ready(const struct lbt_broker *b, struct lbt_proc *p, const char *topic, int timeout_ms)
{
	lbus *bus;
	int r = lbt_connect(b, &bus);
	if (r < 0)
		return r;
	int64_t deadline = lbt_now_ms() + timeout_ms;
	long at = -ETIMEDOUT;
	int wait = 10;
	while (at < 0 && lbt_now_ms() < deadline) {
		r = lbus_publish(bus, topic, "lbt-probe", 9, 0);
		if (r == 0)
			r = lbus_sync(bus, lbt_ms(5000));
		if (r < 0)
			break;
		at = lbt_proc_read_until(p, "lbt-probe", 0, wait);
		if (at == -EPIPE)
			break;
		if (wait < 200)
			wait *= 2;
	}
	if (at >= 0) {
		r = lbus_publish(bus, topic, "lbt-ready", 9, 0);
		if (r == 0)
			r = lbus_sync(bus, lbt_ms(5000));
		at = r < 0 ? r : lbt_proc_read_until(p, "lbt-ready", 0, (int)(deadline - lbt_now_ms()));
		if (at >= 0)
			at = end_of_line(p, at, deadline);
	} else if (r < 0) {
		at = r;
	}
	lbus_close(bus);
	if (at < 0) {
		fprintf(stderr, "harness: subscriber on %s not ready: %s\n", topic, strerror((int)-at));
		lbt_broker_alive(b);
	}
	return at;
}

long lbt_listen_ready(const struct lbt_broker *b, struct lbt_proc *p, const char *name, int timeout_ms)
{
	lbus *bus;
	int r = lbt_connect(b, &bus);
	if (r < 0)
		return r;
	int64_t deadline = lbt_now_ms() + timeout_ms;
	int wait = 5;
	while ((r = lbus_send(bus, name, "lbt-probe", 9, 0)) == -ENXIO && lbt_now_ms() < deadline) {
		if (lbt_proc_exited(p))
			break;
		lbt_sleep_ms(wait);
		if (wait < 100)
			wait *= 2;
	}
	lbus_close(bus);
	long at = r;
	if (r == 0) {
		at = lbt_proc_read_until(p, "lbt-probe", 0, (int)(deadline - lbt_now_ms()));
		if (at >= 0)
			at = end_of_line(p, at, deadline);
	}
	if (at < 0) {
		fprintf(stderr, "harness: listener on %s not ready: %s\n", name, lbus_strerror((int)at));
		lbt_broker_alive(b);
	}
	return at;
}

struct roundtrip {
	int got;
	bool intact;
};

static void on_roundtrip(lbus *bus, const struct lbus_msg *m, void *ud)
{
	struct roundtrip *rt = ud;
	rt->got++;
	rt->intact = m->len == 9 && !memcmp(m->data, "roundtrip", 9);
	lbus_break(bus);
}

int lbt_pubsub_roundtrip(const struct lbt_broker *b, const char *topic)
{
	lbus *sub = NULL, *pub = NULL;
	struct roundtrip rt = {0};
	int r = lbt_connect(b, &sub);
	if (r == 0)
		r = lbt_connect(b, &pub);
	if (r == 0) {
		r = lbus_subscribe(sub, topic, on_roundtrip, &rt, NULL, NULL);
	}
	if (r == 0)
		r = lbus_publish(pub, topic, "roundtrip", 9, 0);
	if (r == 0)
		r = lbus_flush(pub, lbt_ms(5000));
	int64_t deadline = lbt_now_ms() + lbt_ms(5000);
	while (r == 0 && !rt.got && lbt_now_ms() < deadline) {
		r = lbus_run(sub, (int)(deadline - lbt_now_ms()));
		if (r == 1 && rt.got) /* on_roundtrip's lbus_break() */
			r = 0;
	}
	if (r == 0 && !rt.got)
		r = -ETIMEDOUT;
	if (r == 0 && (rt.got != 1 || !rt.intact))
		r = -EBADMSG;
	if (r < 0) {
		fprintf(stderr, "harness: pub/sub round trip on %s failed: %s\n", topic, lbus_strerror(r));
		lbt_broker_alive(b);
	}
	lbus_close(pub);
	lbus_close(sub);
	return r;
}
