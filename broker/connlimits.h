/* SPDX-License-Identifier: MIT */
/*
 * Connection limits of a shared broker: max_clients and max_clients_per_uid
 * (config.h). The broker counts its live connections per uid here (a hash
 * table of small counters, one per uid with a connection), so admitting a
 * connection is O(1) whatever the number of clients. The other per-client
 * limits (names, subscriptions) are checked where those requests are handled
 * (naming.c, subscription.c). Every refusal is an ERR_LIMIT error frame with
 * a reason naming the key and its value, and is counted in the broker's
 * counters (lbus stats).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "hashtab.h"

struct uid_limits {
	struct hashtab per_uid; /* struct uid_count.node, by uid */
};

/* Which limit refused a connection. */
enum limit_refusal {
	LIMIT_OK = 0,
	LIMIT_MAX_CLIENTS,
	LIMIT_MAX_CLIENTS_PER_UID,
};

void uid_limits_init(struct uid_limits *l);
/* Free every counter. */
void uid_limits_deinit(struct uid_limits *l);
/* Live connections of uid. */
uint32_t uid_limits_count(const struct uid_limits *l, uid_t uid);
/*
 * May one more connection of uid come in, `clients` being connected now?
 * LIMIT_OK, or which limit it would pass, with a one-line reason in why.
 */
enum limit_refusal uid_limits_admit(const struct uid_limits *l, const struct config *cfg, uint64_t clients,
				    uid_t uid, char *why, size_t whylen);
/* Count a new connection of uid (0 or -ENOMEM) / one that closed. */
int uid_limits_add(struct uid_limits *l, uid_t uid);
void uid_limits_del(struct uid_limits *l, uid_t uid);
