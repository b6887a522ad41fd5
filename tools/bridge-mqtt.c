/* SPDX-License-Identifier: MIT */
/*
 * lbus-bridge's MQTT side over libmosquitto (see bridge-mqtt.h). libmosquitto
 * runs its callbacks inside mosquitto_loop_read() and friends; the callbacks
 * only record what happened or pass a message on, and the news that the link
 * is up reaches the bridge after the loop call returns, once libmosquitto
 * has resent its in-flight messages, so what the bridge hands over next
 * comes after them.
 */
#include <errno.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bridge-log.h"
#include "bridge-mqtt.h"

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 30000
#define MISC_INTERVAL_MS 1000

static int jitter(struct bmqtt *m, int ms)
{
	return ms * 3 / 4 + (int)((unsigned)rand_r(&m->seed) % (unsigned)(ms / 2 + 1));
}

static void schedule_retry(struct bmqtt *m, int64_t now_ms)
{
	m->retry_at_ms = now_ms + jitter(m, m->backoff_ms);
	m->backoff_ms = m->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : m->backoff_ms * 2;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *mosq_why(int rc)
{
	return rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc);
}

static void subscribe_routes(struct bmqtt *m)
{
	int opts = m->cfg->mqtt_version == BRIDGE_MQTT_5
		       ? MQTT_SUB_OPT_NO_LOCAL | MQTT_SUB_OPT_RETAIN_AS_PUBLISHED
		       : 0;

	for (size_t i = 0; i < m->cfg->n_routes; i++) {
		const struct bridge_route *r = &m->cfg->routes[i];
		int rc;

		if (r->dir != BRIDGE_IN)
			continue;
		rc = mosquitto_subscribe_v5(m->mosq, NULL, r->remote_pattern, r->qos, opts, NULL);
		if (rc != MOSQ_ERR_SUCCESS)
			blog(LOG_ERR, "cannot subscribe '%s' on the MQTT broker: %s", r->remote_pattern,
			     mosq_why(rc));
	}
}

static void on_connect(struct mosquitto *mosq, void *ud, int rc, int flags, const mosquitto_property *props)
{
	struct bmqtt *m = ud;

	if (rc != 0) {
		if (!m->failing)
			blog(LOG_WARNING, "the MQTT broker %s:%d refused the connection: %s; retrying",
			     m->cfg->host, m->cfg->port,
			     m->cfg->mqtt_version == BRIDGE_MQTT_5 ? mosquitto_reason_string(rc)
								   : mosquitto_connack_string(rc));
		m->failing = true;
		return;
	}
	subscribe_routes(m);
	m->up = true;
	m->pending_up = true;
	m->session_present = flags & 1;
	m->failing = false;
	m->backoff_ms = BACKOFF_MIN_MS;
	blog(LOG_NOTICE, "connected to the MQTT broker %s:%d as '%s'%s", m->cfg->host, m->cfg->port,
	     m->cfg->client_id, m->session_present ? " (session resumed)" : "");
}

static void on_disconnect(struct mosquitto *mosq, void *ud, int rc, const mosquitto_property *props)
{
	struct bmqtt *m = ud;

	if (m->up && !m->stopping)
		blog(LOG_WARNING, "lost the MQTT broker %s:%d: %s; reconnecting", m->cfg->host, m->cfg->port,
		     mosq_why(rc));
	else if (!m->up && !m->failing && !m->stopping) /* e.g. the TLS handshake failed */
		blog(LOG_WARNING, "cannot connect to the MQTT broker %s:%d: %s; retrying", m->cfg->host,
		     m->cfg->port, mosq_why(rc));
	if (m->up && !m->pending_up)
		m->ops->on_down(m->ud);
	m->up = false;
	m->pending_up = false;
	m->failing = true;
	schedule_retry(m, mono_ms());
}

static void on_publish(struct mosquitto *mosq, void *ud, int mid, int reason, const mosquitto_property *props)
{
	struct bmqtt *m = ud;

	if (reason >= 0x80)
		blog(LOG_WARNING, "the MQTT broker refused message %d: %s", mid,
		     mosquitto_reason_string(reason));
	m->ops->on_acked(m->ud, mid, reason < 0x80);
}

static void on_message(struct mosquitto *mosq, void *ud, const struct mosquitto_message *msg,
		       const mosquitto_property *props)
{
	struct bmqtt *m = ud;

	m->ops->on_message(m->ud, msg->qos ? msg->mid : 0, msg->qos, msg->topic,
			   msg->payload ? msg->payload : "", (size_t)msg->payloadlen, msg->retain);
}

static int setup_tls(struct bmqtt *m, char *err, size_t errlen)
{
	const struct bridge_config *c = m->cfg;
	int rc;

	if (!c->tls_ca)
		return 0;
	rc = mosquitto_tls_set(m->mosq, c->tls_ca, NULL, c->tls_cert, c->tls_key, NULL);
	if (rc != MOSQ_ERR_SUCCESS) {
		snprintf(err, errlen, "TLS setup (tls_ca %s): %s", c->tls_ca, mosq_why(rc));
		return -EINVAL;
	}
	return 0;
}

int bmqtt_init(struct bmqtt *m, const struct bridge_config *cfg, const struct bmqtt_ops *ops, void *ud,
	       char *err, size_t errlen)
{
	memset(m, 0, sizeof(*m));
	m->cfg = cfg;
	m->ops = ops;
	m->ud = ud;
	m->backoff_ms = BACKOFF_MIN_MS;
	m->seed = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL);
	mosquitto_lib_init();
	m->mosq = mosquitto_new(cfg->client_id, cfg->clean_session, m);
	if (!m->mosq) {
		snprintf(err, errlen, "cannot create the MQTT client: %s", strerror(errno));
		return -errno;
	}
	mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION,
			     cfg->mqtt_version == BRIDGE_MQTT_5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
	mosquitto_int_option(m->mosq, MOSQ_OPT_SEND_MAXIMUM, BMQTT_MAX_INFLIGHT);
	mosquitto_int_option(m->mosq, MOSQ_OPT_RECEIVE_MAXIMUM, BMQTT_MAX_INFLIGHT);
	mosquitto_int_option(m->mosq, MOSQ_OPT_TCP_NODELAY, 1);
	mosquitto_connect_v5_callback_set(m->mosq, on_connect);
	mosquitto_disconnect_v5_callback_set(m->mosq, on_disconnect);
	mosquitto_publish_v5_callback_set(m->mosq, on_publish);
	mosquitto_message_v5_callback_set(m->mosq, on_message);
	if (cfg->username &&
	    mosquitto_username_pw_set(m->mosq, cfg->username, cfg->password) != MOSQ_ERR_SUCCESS) {
		snprintf(err, errlen, "cannot set the MQTT username");
		return -EINVAL;
	}
	return setup_tls(m, err, errlen);
}

void bmqtt_free(struct bmqtt *m)
{
	if (m->mosq)
		mosquitto_destroy(m->mosq);
	mosquitto_lib_cleanup();
	memset(m, 0, sizeof(*m));
}

/* One attempt: MQTT 5 with its CONNECT properties (blocking), 3.1.1
 * asynchronously. Failures are logged once per outage. */
static void try_connect(struct bmqtt *m, int64_t now_ms)
{
	const struct bridge_config *c = m->cfg;
	mosquitto_property *props = NULL;
	int rc;

	if (c->mqtt_version == BRIDGE_MQTT_5) {
		if (!c->clean_session)
			mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, UINT32_MAX);
		rc = mosquitto_connect_bind_v5(m->mosq, c->host, c->port, c->keepalive, NULL, props);
		mosquitto_property_free_all(&props);
	} else {
		rc = mosquitto_connect_bind_async(m->mosq, c->host, c->port, c->keepalive, NULL);
	}
	if (rc == MOSQ_ERR_SUCCESS)
		return;
	if (!m->failing)
		blog(LOG_WARNING, "cannot connect to the MQTT broker %s:%d: %s; retrying", c->host, c->port,
		     mosq_why(rc));
	m->failing = true;
	schedule_retry(m, now_ms);
}

static bool sock_open(const struct bmqtt *m)
{
	return mosquitto_socket(m->mosq) >= 0;
}

int bmqtt_fd(const struct bmqtt *m)
{
	return mosquitto_socket(m->mosq);
}

short bmqtt_events(const struct bmqtt *m)
{
	if (!sock_open(m))
		return 0;
	return (short)(POLLIN | (mosquitto_want_write(m->mosq) ? POLLOUT : 0));
}

int bmqtt_timeout(const struct bmqtt *m, int64_t now_ms)
{
	if (m->pending_up)
		return 0;
	if (!sock_open(m) && !m->stopping)
		return m->retry_at_ms > now_ms ? (int)(m->retry_at_ms - now_ms) : 0;
	return MISC_INTERVAL_MS;
}

void bmqtt_handle(struct bmqtt *m, short revents, int64_t now_ms)
{
	int rc = MOSQ_ERR_SUCCESS;

	if (!sock_open(m)) {
		if (!m->stopping && now_ms >= m->retry_at_ms)
			try_connect(m, now_ms);
		return;
	}
	if (revents & (POLLIN | POLLERR | POLLHUP))
		rc = mosquitto_loop_read(m->mosq, 1);
	if (rc == MOSQ_ERR_SUCCESS && sock_open(m) && mosquitto_want_write(m->mosq))
		rc = mosquitto_loop_write(m->mosq, 1);
	if (rc == MOSQ_ERR_SUCCESS && sock_open(m))
		mosquitto_loop_misc(m->mosq);
	if (!sock_open(m) && (m->up || m->pending_up || m->retry_at_ms <= now_ms))
		on_disconnect(m->mosq, m, rc ? rc : MOSQ_ERR_CONN_LOST, NULL);
	if (m->pending_up && m->up) {
		m->pending_up = false;
		m->ops->on_up(m->ud, m->session_present);
	}
}

int bmqtt_publish(struct bmqtt *m, const char *topic, const void *data, size_t len, int qos, bool retain,
		  int *mid)
{
	int rc;

	if (!m->up)
		return -ENOTCONN;
	if (len > 268435455)
		return -EMSGSIZE;
	rc = mosquitto_publish_v5(m->mosq, mid, topic, (int)len, data, qos, retain, NULL);
	switch (rc) {
	case MOSQ_ERR_SUCCESS:
		return 0;
	case MOSQ_ERR_NO_CONN:
	case MOSQ_ERR_CONN_LOST:
		return -ENOTCONN;
	case MOSQ_ERR_NOMEM:
		return -ENOMEM;
	case MOSQ_ERR_PAYLOAD_SIZE:
	case MOSQ_ERR_OVERSIZE_PACKET:
		return -EMSGSIZE;
	default:
		return -EINVAL;
	}
}

void bmqtt_stop(struct bmqtt *m)
{
	m->stopping = true;
	if (sock_open(m)) {
		mosquitto_disconnect(m->mosq);
		mosquitto_loop_write(m->mosq, 1);
	}
}
