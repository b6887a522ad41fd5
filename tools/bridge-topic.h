/* SPDX-License-Identifier: MIT */
/*
 * MQTT's topic rules for lbus-bridge, apart from any I/O: what MQTT accepts
 * as a topic name to publish and as a subscription filter, filter matching,
 * and the prefix mapping of a route (bridge-config.h).
 *
 * MQTT topic names are 1..65535 bytes of UTF-8 without NUL, '+' or '#'; the
 * bridge also refuses to publish names starting with '$' (the brokers'
 * own, like lbus's $lbus/...). Filters add '+' as a whole level and '#' as
 * the whole last level; a filter whose first level is a wildcard does not
 * match a '$' topic. lbus's own rules are nearly the same (proto/topic.h);
 * the bus checks those itself when the bridge publishes or subscribes.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define BRIDGE_MQTT_MAX_TOPIC 65535u

/* 0 when topic[0..len) may be published to MQTT, else -EINVAL with *why set
 * to a short reason ("contains '+'", "starts with '$'", ...). */
int btopic_name_check(const char *topic, size_t len, const char **why);

/* 0 when filter is a valid MQTT subscription filter, else -EINVAL and *why. */
int btopic_filter_check(const char *filter, const char **why);

/* 0 when prefix may prefix topics: UTF-8 without NUL, '+' or '#' (may be
 * empty), else -EINVAL and *why. */
int btopic_prefix_check(const char *prefix, const char **why);

/* Does the (valid) filter match the topic, by MQTT's rules? */
bool btopic_match(const char *filter, const char *topic);

/*
 * Map a topic across a route: topic must start with from_prefix; the rest is
 * appended to to_prefix into out (cap bytes, NUL-terminated). Returns the
 * length, -ENOENT when topic does not start with from_prefix, -ENAMETOOLONG
 * when the result does not fit.
 */
long btopic_map(const char *topic, const char *from_prefix, const char *to_prefix, char *out, size_t cap);
