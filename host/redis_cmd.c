/* redis_cmd.c - redisCommand (API 1.4). */
#include <errno.h>

#include "internal.h"

int gc__redis_command(struct gc_server *s, int argc, const char *const *argv,
                      const size_t *argvlen, GCRedisCallback cb,
                      intptr_t user) {
  (void)s, (void)argc, (void)argv, (void)argvlen, (void)cb, (void)user;
  return ENOSYS;
}
