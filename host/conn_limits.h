/* conn_limits.h - per-connection statistics and their YELLOW / RED thresholds.
 *
 * Game Carrier's model: each statistic (enum gc_conn_stats) has a YELLOW
 * threshold, where the app is asked through on_issue, and a RED one, where
 * the host drops the connection without asking. Defaults come from the
 * config's "conn_notice" (YELLOW) and "conn_critical" (RED), at the root and
 * overridden per app entry; connectionSetLimit changes one connection.
 *
 * Units: every value here is in the API's unit (messages, bytes, bytes per
 * second). Only the config's "kbytes_per_second" (Game Carrier's name) is
 * in KiB per second; it is converted when loaded. */
#ifndef GC_CONN_LIMITS_H
#define GC_CONN_LIMITS_H

#include <jansson.h>
#include <stdint.h>

#define GC_STAT_MAX 4 /* highest enum gc_conn_stats */

struct gc_limits {
  /* [level][stat]: level 1 YELLOW, 2 RED; 0 = no limit. */
  uint64_t v[3][GC_STAT_MAX + 1];
};

/* The most one message may hold, in and out, whatever a limit says; a
 * message size of 0 ("no limit") means this. The host holds a message whole,
 * and Game Carrier's adapters may keep a length in an int. */
#define GC_MSG_SIZE_HARD_MAX ((uint64_t)INT32_MAX)

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
/* The API's name of a statistic ("bytes_per_second", as in Lua's
 * conn:set_limit), in whose unit logs give its values; NULL if none. */
const char *gc_stat_name(int stat);

/* The message size bound a RED max_msg_size 'limit' gives: 0 (no limit)
 * and anything above the hard maximum are the hard maximum. */
static inline uint64_t gc_msg_size_limit(uint64_t limit) {
  return limit && limit < GC_MSG_SIZE_HARD_MAX ? limit : GC_MSG_SIZE_HARD_MAX;
}

#endif
