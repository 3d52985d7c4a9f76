/* embed.h - the host inside another program: what gc.testing uses.
 *
 * The same server, loop, connection and adapter code as gcs, with two
 * things replaced: clients connect in memory (struct gc_mem_ops instead of
 * a socket) and time is virtual (it moves only by gc_host_advance). */
#ifndef GC_EMBED_H
#define GC_EMBED_H

#include <stddef.h>
#include <stdint.h>

struct gc_host;
struct gc_conn;

/* What an in-memory peer hears from its connection. */
struct gc_mem_ops {
  /* Bytes the server wrote, in order. Called from inside the loop: do not
   * call back into the host from here. */
  void (*on_data)(void *ud, const uint8_t *data, size_t len);
  /* The connection is gone; its gc_conn pointer is dead after this. */
  void (*on_close)(void *ud);
  /* Optional: non-zero while the peer takes no bytes (a client that does
   * not read). The host then keeps its output queued, as behind a full
   * kernel buffer (limits, YELLOW issues, close_drain_ms and
   * send_timeout_ms apply), until gc_host_resume. */
  int (*paused)(void *ud);
  /* The connection was handed to the worker its app's route chose: from
   * now on it is 'c' (the old pointer is dead). Required with workers. */
  void (*on_moved)(void *ud, struct gc_conn *c);
};

/* Loads a JSON config, its adapters ('lua_adapter' = path of
 * libgc_lua.so for "lua" entries) and starts the applications. 0, or an
 * errno with a message in 'err'. */
int gc_host_create(const char *config_json, const char *source,
                   const char *lua_adapter, struct gc_host **out, char *err,
                   size_t errlen);
/* Stops the apps, closes every connection NORMAL (virtual time runs on
 * until the last on_disconnect), shuts down and unloads. NULL is ignored. */
void gc_host_destroy(struct gc_host *h);
/* Starts the shutdown: application_stop, then a NORMAL close of every
 * connection. gc_host_finished tells when the last one is gone. */
void gc_host_stop(struct gc_host *h);
int gc_host_finished(const struct gc_host *h);
/* Runs loop turns until nothing is left to do now. */
void gc_host_pump(struct gc_host *h);
/* Moves virtual time by 'ms', firing every timer due on the way in order,
 * one loop turn after another (a timer started by a timer fires on a
 * later turn, even at 0 ms). 0, or ELOOP when timers keep firing at one
 * instant for GC_HOST_TURNS_MAX turns (a 0 ms timer that restarts itself):
 * time then stays at that instant. */
int gc_host_advance(struct gc_host *h, int64_t ms);
#define GC_HOST_TURNS_MAX 100000
int64_t gc_host_now(const struct gc_host *h);
/* While 'on', links (s2sCreate, gc.connect) fail with "connection refused"
 * at their connect, as if nothing listened. */
void gc_host_refuse_links(struct gc_host *h, int on);
/* The value of the counter 'name' (built-in "gcs.*", an app's, or a Lua
 * application's "lua.<app>.memory"): 0, or ENOENT when there is none. */
int gc_host_counter(struct gc_host *h, const char *name, int64_t *value);
/* A new in-memory client on the vhost at 'port' (0: the first one). It
 * starts before the HTTP upgrade; feed it the request with
 * gc_host_input. NULL when no such vhost or no memory. */
struct gc_conn *gc_host_connect(struct gc_host *h, int port, const char *rip,
                                int rport, const struct gc_mem_ops *ops,
                                void *ud);
/* Bytes from the client; the peer vanishing. Both pump afterwards. */
void gc_host_input(struct gc_host *h, struct gc_conn *c, const void *data,
                   size_t len);
void gc_host_eof(struct gc_host *h, struct gc_conn *c);
/* The peer takes bytes again (ops->paused now says 0): what waited is
 * written, as when a socket becomes writable. Pumps afterwards. */
void gc_host_resume(struct gc_host *h, struct gc_conn *c);

#endif
