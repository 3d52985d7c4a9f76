/* fd_limit.h - the open-file limit, which bounds the connections. */
#ifndef GC_FD_LIMIT_H
#define GC_FD_LIMIT_H

#include <stdint.h>

/* Raises the soft RLIMIT_NOFILE to the hard one, as Node does at start:
 * every client is a descriptor, and the usual soft limit of 1024 would
 * refuse clients ("too many open files") long before max_connections.
 * Writes the soft limit before and after (UINT64_MAX = unlimited); 0, or
 * the errno of getrlimit/setrlimit with '*after' the limit in effect. */
int gc_fd_limit_raise(uint64_t *before, uint64_t *after)
    __attribute__((warn_unused_result));

#endif
