/* conn_limits.c - see conn_limits.h. */
#include "conn_limits.h"

#include <string.h>

#include <game-carrier/server.h>

/* The config's keys: Game Carrier's names, and its unit (KiB) for the rate
 * of bytes. */
static const char *const stat_keys[GC_STAT_MAX + 1] = {
    NULL, "msg_per_second", "kbytes_per_second", "max_msg_size",
    "output_queue_size"};
/* The API's names (Lua's set_limit), in the unit the host counts. */
static const char *const stat_names[GC_STAT_MAX + 1] = {
    NULL, "msg_per_second", "bytes_per_second", "max_msg_size",
    "output_queue_size"};

const char *gc_stat_name(int stat) {
  return stat >= 1 && stat <= GC_STAT_MAX ? stat_names[stat] : NULL;
}

static void limits_read(struct gc_limits *out, const json_t *obj) {
  if (!obj)
    return;
  static const char *const sections[3] = {NULL, "conn_notice", "conn_critical"};
  for (int level = 1; level <= 2; level++) {
    const json_t *sec = json_object_get(obj, sections[level]);
    if (!json_is_object(sec))
      continue;
    for (int s = 1; s <= GC_STAT_MAX; s++) {
      const json_t *v = json_object_get(sec, stat_keys[s]);
      if (!json_is_integer(v) || json_integer_value(v) < 0)
        continue;
      uint64_t n = (uint64_t)json_integer_value(v);
      if (s == GC_CONN_STAT_BYTES_PER_SECOND) /* KiB, saturating */
        n = n > UINT64_MAX / 1024 ? UINT64_MAX : n * 1024;
      out->v[level][s] = n;
    }
  }
}

void gc_limits_from_config(struct gc_limits *out, const json_t *root,
                           const json_t *app) {
  memset(out, 0, sizeof *out);
  out->v[GC_STAT_STATUS_RED][GC_CONN_STAT_MAX_MSG_SIZE] = GC_DEFAULT_MAX_MSG_SIZE;
  out->v[GC_STAT_STATUS_RED][GC_CONN_STAT_OUTPUT_QUEUE_SIZE] =
      GC_DEFAULT_OUTPUT_QUEUE;
  limits_read(out, root);
  limits_read(out, app);
}
