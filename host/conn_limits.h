/* conn_limits.h - per-connection statistics and their YELLOW / RED thresholds.
 *
 * Game Carrier's model: each statistic (enum gc_conn_stats) has a YELLOW
 * threshold, where the app is asked through on_issue, and a RED one, where
 * the host drops the connection without asking. Defaults come from the
 * config's "conn_notice" (YELLOW) and "conn_critical" (RED), at the root and
 * overridden per app entry; connectionSetLimit changes one connection. */
#ifndef GC_CONN_LIMITS_H
#define GC_CONN_LIMITS_H

#include <jansson.h>
#include <stdint.h>

#define GC_STAT_MAX 4 /* highest enum gc_conn_stats */

struct gc_limits {
  /* [level][stat]: level 1 YELLOW, 2 RED; 0 = no limit. */
  uint64_t v[3][GC_STAT_MAX + 1];
};

/* Defaults that protect a public server when the config says nothing. */
#define GC_DEFAULT_MAX_MSG_SIZE (16u << 20)       /* RED max_msg_size */
#define GC_DEFAULT_OUTPUT_QUEUE 4096              /* RED output_queue_size */
/* Hard byte bound of one output queue, whatever the message count says:
 * uWS and KBEngine stop at 1 MiB, skynet warns at 1 MiB. */
#define GC_OUTPUT_QUEUE_MAX_BYTES (4ull << 20)

/* Fills 'out' from the root's and then the app entry's conn_notice /
 * conn_critical ('app' may be NULL). */
void gc_limits_from_config(struct gc_limits *out, const json_t *root,
                           const json_t *app);
/* The config key of a statistic, or NULL. */
const char *gc_stat_name(int stat);

#endif
