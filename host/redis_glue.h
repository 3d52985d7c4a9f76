/* redis_glue.h - hiredis on libuv (redis_glue.c), for redis.c and
 * redis_cmd.c. */
#ifndef GC_REDIS_GLUE_H
#define GC_REDIS_GLUE_H

#include <stddef.h>
#include <uv.h>

struct addrinfo;
struct redisAsyncContext;
struct redisReply;
struct gc_redis_reply;

/* Drives 'ac' from 'loop' (a uv_poll on its socket, closed and freed when
 * hiredis frees the context). 0, ENOMEM or a libuv error as an errno. */
int gc__redis_ev_attach(struct redisAsyncContext *ac, uv_loop_t *loop);
/* The first address of 'res' as text in 'addr' ("" and EINVAL if none). */
int gc__redis_addr(const struct addrinfo *res, char *addr, size_t len);

/* hiredis's reply 'r' as the public struct in '*out': arrays get element
 * arrays of their own, freed by gc__redis_reply_free (also after a
 * failure). 0 or ENOMEM. Strings point into 'r'. */
int gc__redis_reply_convert(const struct redisReply *r,
                            struct gc_redis_reply *out);
void gc__redis_reply_free(struct gc_redis_reply *r);

#endif
