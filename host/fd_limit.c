/* fd_limit.c - see fd_limit.h. */
#include "fd_limit.h"

#include <errno.h>
#include <sys/resource.h>

static uint64_t lim_value(rlim_t v) {
  return v == RLIM_INFINITY ? UINT64_MAX : (uint64_t)v;
}

int gc_fd_limit_raise(uint64_t *before, uint64_t *after) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    *before = *after = 0;
    return errno;
  }
  *before = *after = lim_value(rl.rlim_cur);
  if (rl.rlim_cur == rl.rlim_max)
    return 0;
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
    return errno;
  *after = lim_value(rl.rlim_cur);
  return 0;
}
