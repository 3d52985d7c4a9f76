/* lua_adapter.h - the Lua adapter's shared types (bindings/ only).
 *
 * The Lua adapter is an adapter like any other: it includes the public
 * <game-carrier/server.h> and Lua, never a host header, and reaches the
 * host only through the 'struct core_api' copied in adapter_initialize. */
#ifndef GC_LUA_ADAPTER_H
#define GC_LUA_ADAPTER_H

#include <game-carrier/server.h>
#include <lua.h>
#include <stddef.h>
#include <stdint.h>

/* One Lua state per application. */
struct lapp {
  lua_State *L;
  int app_id;
  char *name;
  char *script;
  int handlers_ref; /* the table the script returned */
  int conns_ref;    /* lightuserdata(ud) -> conn userdata, open ones */
  int timers_ref;   /* lightuserdata(timer) -> timer userdata, active ones */
  size_t mem_used, mem_limit;
  uint64_t budget; /* instructions per handler call */
  int killed;      /* the running handler exceeded its budget */
  lua_Integer next_conn_id;
  int closing;     /* application_shutdown: no more Lua */
};

/* A connection as Lua sees it: a full userdata, one per connection.
 * User values: 1 = fields table (conn.name = ...), 2 = cookies. */
struct lconn {
  intptr_t handle;
  struct lapp *app;
  lua_Integer id;
  int open; /* until on_disconnect */
  lua_Integer next_cookie;
  int rport;
  char rip[46];
  char path[1]; /* grows: the request target */
};

extern struct core_api gc_lua_api;

/* Calls the function below 'nargs' arguments on the stack under pcall with
 * a traceback and the instruction budget; logs an error with the app,
 * the event and 'script:line: message'. Returns the lua_pcall status; on
 * success 'nres' results are left on the stack. */
int gc_lua_call(struct lapp *app, const char *event, int nargs, int nres);
/* Pushes handlers[event] and returns 1, or pushes nothing and returns 0. */
int gc_lua_handler(struct lapp *app, const char *event);
struct lapp *gc_lua_app_of(lua_State *L);

/* lua_conn.c */
void gc_lua_conn_register(lua_State *L);
/* Creates the userdata for a new connection and anchors it (protected). */
struct lconn *gc_lua_conn_new(struct lapp *app, intptr_t handle, const char *rip,
                              int rport, const char *path);
void gc_lua_conn_push(struct lapp *app, struct lconn *c);
/* After on_disconnect: closed for good, no longer anchored. */
void gc_lua_conn_release(struct lapp *app, struct lconn *c);
/* Pushes and forgets the cookie value stored under 'key'. */
void gc_lua_conn_push_cookie(struct lapp *app, struct lconn *c, intptr_t key);
struct lconn *gc_lua_conn_check(lua_State *L, int idx);

/* lua_gc.c: the "gc" module. */
int gc_lua_open_gc(lua_State *L);
void gc_lua_timers_stop_all(struct lapp *app);

#endif
