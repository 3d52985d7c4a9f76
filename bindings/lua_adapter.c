/* lua_adapter.c - the adapter exports of the Lua adapter and the one entry
 * into Lua (gc_lua_call).
 *
 * Each application's script runs in its own lua_State with a counting
 * allocator (optional memory limit) and an instruction budget per handler
 * call. Every handler runs under lua_pcall with a traceback; an error is
 * logged and the host carries on: in on_connect it refuses the client, in
 * on_message the connection stays open. */
#include "lua_adapter.h"

#include <errno.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct core_api gc_lua_api;

/* app_id -> app. The adapter exports carry no context: this small table is
 * the adapter's only mutable global, written during initialisation. */
static struct lapp **apps;
static size_t app_cap;

#define DEFAULT_BUDGET 100000000ull /* instructions per handler call */

static void lua_logf(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void lua_logf(int level, const char *fmt, ...) {
  char buf[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (gc_lua_api.logMessage)
    gc_lua_api.logMessage(level, buf);
}

static struct lapp *app_get(GCT_INT app_id) {
  return app_id >= 0 && (size_t)app_id < app_cap ? apps[app_id] : NULL;
}

struct lapp *gc_lua_app_of(lua_State *L) {
  struct lapp *app;
  memcpy(&app, lua_getextraspace(L), sizeof app);
  return app;
}

/* ---- allocator and budget ------------------------------------------------ */

static void *app_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  struct lapp *app = ud;
  if (!ptr)
    osize = 0;
  if (nsize == 0) {
    free(ptr);
    app->mem_used -= osize;
    return NULL;
  }
  if (app->mem_limit && nsize > osize &&
      app->mem_used + (nsize - osize) > app->mem_limit)
    return NULL; /* Lua raises "not enough memory" in the script */
  void *p = realloc(ptr, nsize);
  if (p)
    app->mem_used = app->mem_used - osize + nsize;
  return p;
}

/* Fires when a handler ran out of instructions. It re-arms itself on every
 * instruction before raising, so a pcall inside the script cannot swallow
 * the stop (Redis's luaMaskCountHook). */
static void budget_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  struct lapp *app = gc_lua_app_of(L);
  app->killed = 1;
  lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
  luaL_error(L, "instruction budget exceeded (%I instructions): the handler "
                "was stopped", (LUAI_UACINT)app->budget);
}

/* ---- the one entry into Lua ---------------------------------------------- */

static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      msg = lua_tostring(L, -1);
    else
      msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int gc_lua_call(struct lapp *app, const char *event, int nargs, int nres) {
  lua_State *L = app->L;
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  app->killed = 0;
  if (app->budget)
    lua_sethook(L, budget_hook, LUA_MASKCOUNT,
                app->budget > 0x7fffffff ? 0x7fffffff : (int)app->budget);
  int st = lua_pcall(L, nargs, nres, base);
  lua_sethook(L, NULL, 0, 0);
  if (st != LUA_OK) {
    const char *kind = st == LUA_ERRMEM ? "out of memory"
                       : st == LUA_ERRERR ? "error in the error handler"
                                          : "error";
    lua_logf(GCL_ERR, "lua app %s: %s in %s: %s", app->name, kind, event,
             lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
    lua_pop(L, 1);
  }
  lua_remove(L, base);
  return st;
}

int gc_lua_handler(struct lapp *app, const char *event) {
  lua_State *L = app->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, app->handlers_ref);
  if (lua_getfield(L, -1, event) == LUA_TFUNCTION) {
    lua_remove(L, -2);
    return 1;
  }
  lua_pop(L, 2);
  return 0;
}

/* ---- loading a script ---------------------------------------------------- */

static uint64_t opt_u64(const char *path, uint64_t def) {
  uint64_t v;
  return gc_lua_api.getOpt && gc_lua_api.getOpt(path, GC_OPT_TYPE_UINT64, &v) == 0
             ? v
             : def;
}

/* Which entry of the config is this app? Its per-app "lua" settings win. */
static void app_settings(struct lapp *app) {
  char path[160];
  app->budget = opt_u64("lua.instruction_budget", DEFAULT_BUDGET);
  app->mem_limit = (size_t)opt_u64("lua.memory_limit", 0);
  int32_t nad = 0;
  if (!gc_lua_api.getOpt || gc_lua_api.getOpt("adapters.len", GC_OPT_TYPE_INT, &nad))
    return;
  for (int32_t a = 0; a < nad; a++) {
    int32_t napps = 0;
    snprintf(path, sizeof path, "adapters[%d].apps.len", a);
    if (gc_lua_api.getOpt(path, GC_OPT_TYPE_INT, &napps))
      continue;
    for (int32_t k = 0; k < napps; k++) {
      const char *name = NULL;
      snprintf(path, sizeof path, "adapters[%d].apps[%d].name", a, k);
      if (gc_lua_api.getOpt(path, GC_OPT_TYPE_STRING, &name) || !name ||
          strcmp(name, app->name) != 0)
        continue;
      snprintf(path, sizeof path, "adapters[%d].apps[%d].lua.instruction_budget", a, k);
      app->budget = opt_u64(path, app->budget);
      snprintf(path, sizeof path, "adapters[%d].apps[%d].lua.memory_limit", a, k);
      app->mem_limit = (size_t)opt_u64(path, app->mem_limit);
    }
  }
}

/* Runs inside lua_pcall: anything here may raise (out of memory). */
static int app_boot(lua_State *L) {
  struct lapp *app = gc_lua_app_of(L);
  luaL_openlibs(L);
  luaL_requiref(L, "gc", gc_lua_open_gc, 0);
  lua_pop(L, 1);
  gc_lua_conn_register(L);
  lua_newtable(L);
  app->conns_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  app->timers_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  /* Scripts require their siblings first, then what is installed. */
  const char *slash = strrchr(app->script, '/');
  size_t dirlen = slash ? (size_t)(slash - app->script) : 1;
  const char *dir = slash ? app->script : ".";
  lua_getglobal(L, "package");
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 0; i < 2; i++) {
    luaL_addlstring(&b, dir, dirlen);
    luaL_addstring(&b, i == 0 ? "/?.lua;" : "/?/init.lua;");
  }
  lua_getfield(L, -2, "path");
  luaL_addvalue(&b);
  luaL_pushresult(&b);
  lua_setfield(L, -2, "path");
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, dir, dirlen);
  luaL_addstring(&b, "/?.so;");
  lua_getfield(L, -2, "cpath");
  luaL_addvalue(&b);
  luaL_pushresult(&b);
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
  if (getenv("GC_TESTING_AGGRESSIVE_GC"))
    lua_gc(L, LUA_GCINC, 1, 100, 0); /* collect all the time (tests) */
  return 0;
}

static void app_free(struct lapp *app) {
  if (!app)
    return;
  if (app->L)
    lua_close(app->L);
  free(app->name);
  free(app->script);
  free(app);
}

GC_ADAPTER_EVENT GCT_INT adapter_initialize(GCT_INT adapter_id,
                                            struct core_api *api,
                                            GCT_CPTR load_path) {
  (void)adapter_id, (void)load_path;
  if (!api)
    return EINVAL;
  gc_lua_api = *api;
  lua_logf(GCL_INFO, "lua adapter: %s", LUA_RELEASE);
  return 0;
}

GC_ADAPTER_EVENT void adapter_finalize(GCT_INT adapter_id) {
  (void)adapter_id;
  for (size_t i = 0; i < app_cap; i++)
    app_free(apps[i]);
  free(apps);
  apps = NULL;
  app_cap = 0;
}

GC_ADAPTER_EVENT GCT_INT application_initialize(GCT_INT app_id, GCT_CSTR name,
                                                GCT_CSTR type_name,
                                                GCT_CSTR file_name) {
  (void)type_name;
  if (app_id < 0 || !file_name || !*file_name)
    return EINVAL;
  if ((size_t)app_id >= app_cap) {
    size_t cap = (size_t)app_id + 8;
    struct lapp **a = realloc(apps, cap * sizeof *a);
    if (!a)
      return ENOMEM;
    memset(a + app_cap, 0, (cap - app_cap) * sizeof *a);
    apps = a;
    app_cap = cap;
  }
  struct lapp *app = calloc(1, sizeof *app);
  if (!app || !(app->name = strdup(name ? name : "?")) ||
      !(app->script = strdup(file_name))) {
    app_free(app);
    return ENOMEM;
  }
  app->app_id = app_id;
  app->handlers_ref = app->conns_ref = app->timers_ref = LUA_NOREF;
  app_settings(app);
  app->L = lua_newstate(app_alloc, app);
  if (!app->L) {
    app_free(app);
    return ENOMEM;
  }
  memcpy(lua_getextraspace(app->L), &app, sizeof app);
  lua_State *L = app->L;
  lua_pushcfunction(L, app_boot);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    lua_logf(GCL_ERR, "lua app %s: cannot start a Lua state: %s", app->name,
             lua_tostring(L, -1));
    app_free(app);
    return ENOMEM;
  }
  /* A syntax error stops start-up with the file and line. */
  if (luaL_loadfile(L, app->script) != LUA_OK) {
    lua_logf(GCL_ERR, "lua app %s: cannot load %s", app->name, lua_tostring(L, -1));
    app_free(app);
    return EINVAL;
  }
  lua_pushstring(L, app->name);
  if (gc_lua_call(app, "loading the script", 1, 1) != LUA_OK) {
    app_free(app);
    return EINVAL;
  }
  if (!lua_istable(L, -1)) {
    lua_logf(GCL_ERR, "lua app %s: %s must return a table of handlers, got %s",
             app->name, app->script, luaL_typename(L, -1));
    app_free(app);
    return EINVAL;
  }
  app->handlers_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  apps[app_id] = app;
  if (gc_lua_handler(app, "application_initialize")) {
    lua_pushinteger(L, app_id);
    if (gc_lua_call(app, "application_initialize", 1, 1) != LUA_OK) {
      apps[app_id] = NULL;
      app_free(app);
      return ECANCELED;
    }
    int refused = lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (refused) {
      lua_logf(GCL_ERR, "lua app %s: application_initialize returned false", app->name);
      apps[app_id] = NULL;
      app_free(app);
      return ECANCELED;
    }
  }
  lua_logf(GCL_NOTICE, "lua app %s: %s loaded (budget %llu instructions%s)",
           app->name, app->script, (unsigned long long)app->budget,
           app->mem_limit ? ", memory limited" : "");
  return 0;
}

static void app_event(GCT_INT app_id, const char *event) {
  struct lapp *app = app_get(app_id);
  if (!app || app->closing || !gc_lua_handler(app, event))
    return;
  lua_pushinteger(app->L, app_id);
  (void)gc_lua_call(app, event, 1, 0);
}

GC_ADAPTER_EVENT void application_start(GCT_INT app_id) {
  app_event(app_id, "application_start");
}

GC_ADAPTER_EVENT void application_stop(GCT_INT app_id) {
  app_event(app_id, "application_stop");
}

GC_ADAPTER_EVENT void application_shutdown(GCT_INT app_id) {
  struct lapp *app = app_get(app_id);
  if (!app)
    return;
  app_event(app_id, "application_shutdown");
  app->closing = 1;
  gc_lua_timers_stop_all(app);
  apps[app_id] = NULL;
  app_free(app);
}

/* ---- connection events --------------------------------------------------- */

/* on_connect's work, protected: building 'info' may raise. */
struct connect_args {
  struct lapp *app;
  intptr_t handle;
  int pid;
  const char *rip, *lip, *udata;
  int rport, lport;
  struct lconn *conn;
};

static int hexval(char c) {
  return c >= '0' && c <= '9'   ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                : -1;
}

/* URL-decodes one key or value: '+' is a space, %XX a byte. */
static void push_decoded(lua_State *L, const char *s, size_t len) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (c == '+') {
      c = ' ';
    } else if (c == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 &&
               hexval(s[i + 2]) >= 0) {
      c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
      i += 2;
    }
    luaL_addchar(&b, c);
  }
  luaL_pushresult(&b);
}

/* "room=7&name=bob%20x" -> {room = "7", name = "bob x"}. */
static void push_query(lua_State *L, const char *q) {
  lua_newtable(L);
  while (q && *q) {
    size_t n = strcspn(q, "&");
    const char *eq = memchr(q, '=', n);
    size_t kn = eq ? (size_t)(eq - q) : n;
    if (kn > 0) {
      push_decoded(L, q, kn);
      push_decoded(L, eq ? eq + 1 : "", eq ? n - kn - 1 : 0);
      lua_rawset(L, -3);
    }
    q += n;
    if (*q == '&')
      q++;
  }
}

static int connect_prepare(lua_State *L) {
  struct connect_args *a = lua_touserdata(L, 1);
  a->conn = gc_lua_conn_new(a->app, a->handle, a->rip, a->rport, a->udata);
  const char *udata = a->udata ? a->udata : "/";
  const char *qm = strchr(udata, '?');
  lua_settop(L, 0);
  if (!gc_lua_handler(a->app, "on_connect"))
    return 0;
  gc_lua_conn_push(a->app, a->conn);
  lua_createtable(L, 0, 9);
  lua_pushlstring(L, udata, qm ? (size_t)(qm - udata) : strlen(udata));
  lua_setfield(L, -2, "path");
  push_query(L, qm ? qm + 1 : NULL);
  lua_setfield(L, -2, "query");
  lua_pushstring(L, udata);
  lua_setfield(L, -2, "target");
  lua_pushstring(L, a->pid == GC_PROTOCOL_WSS ? "wss" : "ws");
  lua_setfield(L, -2, "protocol");
  lua_pushstring(L, a->rip ? a->rip : "");
  lua_setfield(L, -2, "remote_ip");
  lua_pushinteger(L, a->rport);
  lua_setfield(L, -2, "remote_port");
  lua_pushstring(L, a->lip ? a->lip : "");
  lua_setfield(L, -2, "local_ip");
  lua_pushinteger(L, a->lport);
  lua_setfield(L, -2, "local_port");
  lua_pushinteger(L, a->app->app_id);
  lua_setfield(L, -2, "app_id");
  return 3;
}

GC_ADAPTER_EVENT GCT_INTPTR on_connect(GCT_INT app_id, GCT_INTPTR conn_handle,
                                       GCT_INT pid, GCT_CSTR rip, GCT_INT rport,
                                       GCT_CSTR lip, GCT_INT lport,
                                       GCT_CSTR udata) {
  struct lapp *app = app_get(app_id);
  if (!app || app->closing)
    return GC_DROP_CONNECTION;
  lua_State *L = app->L;
  struct connect_args a = {app, conn_handle, pid, rip, lip, udata, rport, lport, NULL};
  int top = lua_gettop(L);
  lua_pushcfunction(L, connect_prepare);
  lua_pushlightuserdata(L, &a);
  if (lua_pcall(L, 1, LUA_MULTRET, 0) != LUA_OK) {
    lua_logf(GCL_ERR, "lua app %s: on_connect: %s", app->name, lua_tostring(L, -1));
    lua_settop(L, top);
    if (a.conn)
      gc_lua_conn_release(app, a.conn);
    return GC_DROP_CONNECTION;
  }
  if (lua_gettop(L) == top)
    return (GCT_INTPTR)a.conn; /* no on_connect handler: accepted */
  int accept = 0;
  if (gc_lua_call(app, "on_connect", 2, 1) == LUA_OK) {
    /* false or gc.DROP_CONNECTION refuse; nil, true, anything else accept. */
    accept = !((lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) ||
               (lua_isinteger(L, -1) && lua_tointeger(L, -1) == GC_DROP_CONNECTION));
    lua_pop(L, 1);
  }
  lua_settop(L, top);
  if (!accept) {
    gc_lua_conn_release(app, a.conn);
    return GC_DROP_CONNECTION;
  }
  return (GCT_INTPTR)a.conn;
}

/* Pushes the handler and the connection; 0 when there is nothing to call. */
static int conn_event(struct lconn *c, const char *event) {
  if (!c || !c->app || c->app->closing || !gc_lua_handler(c->app, event))
    return 0;
  gc_lua_conn_push(c->app, c);
  return 1;
}

GC_ADAPTER_EVENT void on_message(GCT_INTPTR conn_user, GCT_PTR data, GCT_SIZE len) {
  struct lconn *c = (struct lconn *)conn_user;
  if (!conn_event(c, "on_message"))
    return;
  lua_pushlstring(c->app->L, data ? (const char *)data : "", data ? len : 0);
  (void)gc_lua_call(c->app, "on_message", 2, 0);
}

GC_ADAPTER_EVENT void on_message_sent(GCT_INTPTR conn_user, GCT_INTPTR cookie,
                                      GCT_SIZE len, GCT_INT status) {
  struct lconn *c = (struct lconn *)conn_user;
  if (!c || !c->app || c->app->closing)
    return;
  lua_State *L = c->app->L;
  if (!gc_lua_handler(c->app, "on_message_sent")) {
    if (cookie) {
      /* Forget the cookie even when nobody listens. */
      gc_lua_conn_push_cookie(c->app, c, cookie);
      lua_pop(L, 1);
    }
    return;
  }
  gc_lua_conn_push(c->app, c);
  gc_lua_conn_push_cookie(c->app, c, cookie);
  lua_pushinteger(L, (lua_Integer)len);
  lua_pushinteger(L, status);
  (void)gc_lua_call(c->app, "on_message_sent", 4, 0);
}

GC_ADAPTER_EVENT void on_timer(GCT_INTPTR conn_user) {
  struct lconn *c = (struct lconn *)conn_user;
  if (conn_event(c, "on_timer"))
    (void)gc_lua_call(c->app, "on_timer", 1, 0);
}

GC_ADAPTER_EVENT GCT_INT on_issue(GCT_INTPTR conn_user, GCT_INT id,
                                  GCT_COUNTER_VALUE value) {
  struct lconn *c = (struct lconn *)conn_user;
  if (!conn_event(c, "on_issue"))
    return GC_STAT_REACTION_DEFAULT;
  lua_State *L = c->app->L;
  lua_pushinteger(L, id);
  lua_pushinteger(L, (lua_Integer)value);
  int reaction = GC_STAT_REACTION_DEFAULT;
  if (gc_lua_call(c->app, "on_issue", 3, 1) == LUA_OK) {
    if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0 &&
        lua_tointeger(L, -1) < GC_STAT_REACTION_COUNT)
      reaction = (int)lua_tointeger(L, -1);
    else if (lua_type(L, -1) == LUA_TSTRING)
      reaction = strcmp(lua_tostring(L, -1), "close") == 0    ? GC_STAT_REACTION_CLOSE
                 : strcmp(lua_tostring(L, -1), "ignore") == 0 ? GC_STAT_REACTION_IGNORE
                                                             : GC_STAT_REACTION_DEFAULT;
    lua_pop(L, 1);
  }
  return reaction;
}

GC_ADAPTER_EVENT void on_disconnect(GCT_INTPTR conn_user) {
  struct lconn *c = (struct lconn *)conn_user;
  if (!c || !c->app)
    return;
  struct lapp *app = c->app;
  if (conn_event(c, "on_disconnect"))
    (void)gc_lua_call(app, "on_disconnect", 1, 0);
  gc_lua_conn_release(app, c);
}
