/* adapter.c - the exported Game Carrier events of libgc_lua.so.
 *
 * This is the only file that knows it is a dlopened adapter: it keeps the
 * copy of 'struct core_api' (the exports carry no context argument, so this
 * and group.c's table of states are the mutable globals) and forwards each
 * event: application events to every state of the app (group.c),
 * connection events to the one state of the connection (conn.c).
 * 'conn_user' is the address of the connection's record (never
 * GC_DROP_CONNECTION), so connection events need no lookup; on_connect
 * finds its state by the app and the worker it comes on.
 *
 * Threads: connection events of a state come on its worker's thread only,
 * and nothing below shares a lua_State between threads. */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "gc_lua.h"

GC_ADAPTER_DECLARE_API_VERSION;

static struct core_api api; /* copied in adapter_initialize */
static int initialized;
/* Where script errors go besides the log (gc.testing raises them in the
 * spec): set through the exported gc_lua_set_error_sink, NULL in gcs. */
static gc_lua_error_sink_fn error_sink;
static void *error_sink_ud;

GC_ADAPTER_EXPORT void gc_lua_set_error_sink(gc_lua_error_sink_fn sink,
                                             void *ud) {
  error_sink = sink;
  error_sink_ud = ud;
}

void gc_lua_report_error(const char *line) {
  if (error_sink)
    error_sink(line, error_sink_ud);
}

/* Debian's Lua C modules (lpeg.so, lfs.so...) are not linked with liblua:
 * they expect the Lua API in the global symbol scope, as the lua
 * interpreter provides it. We are loaded RTLD_LOCAL, so the liblua we
 * brought is not global: promote it (RTLD_NOLOAD only raises its scope).
 *
 * The cost: a native adapter loaded after us that embeds another Lua
 * (5.3, LuaJIT) through a shared liblua would bind its lua_* calls to ours,
 * since the global scope is searched first. Loading this adapter in a
 * namespace of its own (dlmopen) would spare it, but the C modules would
 * then find no Lua at all in theirs, and the sanitizers the tests run under
 * do not support a second namespace (nor RTLD_DEEPBIND for the native
 * adapters). Such an adapter links its Lua statically (or with
 * -Bsymbolic), as the README says. */
static void promote_lua_symbols(void) {
  union {
    lua_State *(*fn)(void);
    void *p;
  } u = {.fn = luaL_newstate};
  Dl_info info;
  if (dladdr(u.p, &info) && info.dli_fname &&
      dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL) == NULL)
    (void)dlerror(); /* then only pure-Lua modules load: not fatal */
}

/* Compiles the script of every app of this adapter (adapters[id] of the
 * config) in a scratch state, without running it: the host initializes
 * every adapter before any application, so a script that is missing or
 * does not compile stops start-up before any script has run. The line is
 * the one gc_lua_app_load would log. 0, or the first failure's errno. */
static int check_scripts(GCT_INT adapter_id) {
  char key[96];
  GCT_INT n = 0;
  snprintf(key, sizeof key, "adapters[%d].apps.len", (int)adapter_id);
  if (api.getOpt == NULL || api.getOpt(key, GC_OPT_TYPE_INT, &n) != 0)
    return 0; /* a host without a config: application_initialize checks */
  lua_State *L = luaL_newstate();
  if (L == NULL)
    return ENOMEM;
  int rc = 0;
  for (GCT_INT k = 0; k < n && rc == 0; k++) {
    const char *name = NULL, *file = NULL;
    snprintf(key, sizeof key, "adapters[%d].apps[%d].file_name",
             (int)adapter_id, (int)k);
    if (api.getOpt(key, GC_OPT_TYPE_STRING, &file) != 0 || !file || !*file)
      continue; /* application_initialize says so */
    int st = luaL_loadfilex(L, file, "t");
    if (st == LUA_OK) {
      lua_settop(L, 0);
      continue;
    }
    snprintf(key, sizeof key, "adapters[%d].apps[%d].name", (int)adapter_id,
             (int)k);
    if (api.getOpt(key, GC_OPT_TYPE_STRING, &name) != 0 || !name)
      name = "lua";
    struct gc_lua_app as_app = {.api = &api, .name = (char *)name};
    gc_lua_log_error(&as_app, "%s%s",
                     st == LUA_ERRFILE ? "" : "cannot load script: ",
                     lua_tostring(L, -1));
    rc = st == LUA_ERRFILE ? ENOENT : st == LUA_ERRMEM ? ENOMEM : EINVAL;
  }
  lua_close(L);
  return rc;
}

GC_ADAPTER_EVENT GCT_INT adapter_initialize(GCT_INT adapter_id,
                                            struct core_api *core,
                                            GCT_CPTR load_path) {
  (void)load_path;
  if (core == NULL || core->logMessage == NULL ||
      core->connectionAddMessage == NULL || core->connectionClose == NULL)
    return EINVAL;
  api = *core; /* valid only during this call */
  int rc = gc_lua_options_check(&api, adapter_id);
  if (rc == 0)
    rc = check_scripts(adapter_id);
  if (rc != 0)
    return rc;
  promote_lua_symbols();
  initialized = 1;
  return 0;
}

/* gcs extension: SIGHUP (or gcs --watch) asks the adapter to reload. */
GC_ADAPTER_EVENT void adapter_reload(GCT_INT adapter_id) {
  (void)adapter_id;
  if (initialized)
    (void)gc_lua_groups_reload(&api);
}

/* gc.testing's host:reload([script]): at once, on the caller's thread. */
GC_ADAPTER_EXPORT int gc_lua_reload_now(const char *app_name, const char *script,
                                        char *err, size_t errlen) {
  if (!initialized)
    return EINVAL;
  return gc_lua_groups_reload_now(&api, app_name, script, err, errlen);
}

GC_ADAPTER_EVENT void adapter_finalize(GCT_INT adapter_id) {
  (void)adapter_id;
  gc_lua_groups_free(&api);
  gc_lua_watchdog_thread_end();
  initialized = 0;
}

GC_ADAPTER_EVENT GCT_INT application_initialize(GCT_INT app_id,
                                                GCT_CSTR name,
                                                GCT_CSTR type_name,
                                                GCT_CSTR file_name) {
  (void)type_name;
  if (!initialized || app_id < 0)
    return EINVAL;
  if (file_name == NULL || *file_name == '\0') {
    char line[160];
    snprintf(line, sizeof line, "%s: a Lua application needs a file_name",
             name ? name : "lua");
    api.logMessage(GCL_ERR, line);
    return EINVAL;
  }
  return gc_lua_group_initialize(&api, app_id, name, file_name);
}

GC_ADAPTER_EVENT void application_start(GCT_INT app_id) {
  gc_lua_group_start(&api, app_id);
}

/* On worker 0's thread while every loop runs: each state's handler is
 * posted to its own worker. */
GC_ADAPTER_EVENT void application_stop(GCT_INT app_id) {
  gc_lua_group_stop(&api, app_id);
}

/* Every connection is gone: the last handlers run, then the states close. */
GC_ADAPTER_EVENT void application_shutdown(GCT_INT app_id) {
  gc_lua_group_shutdown(&api, app_id);
}

GC_ADAPTER_EVENT GCT_INTPTR on_connect(GCT_INT app_id, GCT_INTPTR conn_handle,
                                       GCT_INT pid, GCT_CSTR rip,
                                       GCT_INT rport, GCT_CSTR lip,
                                       GCT_INT lport, GCT_CSTR udata) {
  struct gc_lua_app *app = gc_lua_group_connect_state(&api, app_id);
  if (app == NULL)
    return GC_DROP_CONNECTION;
  struct gc_lua_conn *c = gc_lua_conn_connect(app, conn_handle, pid, rip,
                                              rport, lip, lport, udata);
  if (c == NULL)
    return GC_DROP_CONNECTION;
  if (app->conn_count > app->conn_peak) /* for the quiet collection */
    app->conn_peak = app->conn_count;
  return (GCT_INTPTR)c;
}

GC_ADAPTER_EVENT void on_disconnect(GCT_INTPTR conn_user) {
  struct gc_lua_conn *c = (struct gc_lua_conn *)conn_user;
  /* Read first: once released, the record is Lua's to free. */
  struct gc_lua_app *app =
      c && c->magic == GC_LUA_CONN_MAGIC ? c->app : NULL;
  gc_lua_conn_disconnect(c);
  if (app)
    gc_lua_app_conn_closed(app);
}

GC_ADAPTER_EVENT void on_message(GCT_INTPTR conn_user, GCT_PTR data,
                                 GCT_SIZE len) {
  gc_lua_conn_message((struct gc_lua_conn *)conn_user, data, len);
}

GC_ADAPTER_EVENT void on_message_sent(GCT_INTPTR conn_user, GCT_INTPTR cookie,
                                      GCT_SIZE len, GCT_INT status) {
  gc_lua_conn_message_sent((struct gc_lua_conn *)conn_user, cookie, len,
                           status);
}

GC_ADAPTER_EVENT void on_timer(GCT_INTPTR conn_user) {
  gc_lua_conn_timer((struct gc_lua_conn *)conn_user);
}

/* gcs extension (API 1.3): a message of one of our apps' channels from
 * the host's Redis (gc.publish on this host or another), on worker 0:
 * every state of the app gets it, as gc.publish does in one process. */
GC_ADAPTER_EVENT void on_channel_message(GCT_INT app_id, GCT_CSTR channel,
                                         GCT_CPTR data, GCT_SIZE len) {
  if (!initialized || channel == NULL || (data == NULL && len))
    return;
  int rc = gc_lua_pubsub_deliver(&api, app_id, channel, strlen(channel),
                                 data, len);
  if (rc == ENOMEM) {
    char line[128];
    snprintf(line, sizeof line,
             "lua: a message on channel '%.48s' from redis was not delivered: "
             "out of memory",
             channel);
    api.logMessage(GCL_ERR, line);
  }
}

GC_ADAPTER_EVENT GCT_INT on_issue(GCT_INTPTR conn_user, GCT_INT id,
                                  GCT_COUNTER_VALUE value) {
  return gc_lua_conn_issue((struct gc_lua_conn *)conn_user, id, value);
}
