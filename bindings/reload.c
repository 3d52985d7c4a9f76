/* reload.c - a script reloaded in its running state (SIGHUP, gcs --watch,
 * gc.testing's host:reload).
 *
 * The state stays: connection objects and their fields, subscriptions and
 * timers survive. The Lua modules the script required (those loaded from
 * package.path while it ran) are taken out of package.loaded, the script
 * runs again, and its new handler table replaces the old one; then the new
 * table's on_reload(old_handlers), if any, migrates what it wants. A
 * reload that fails anywhere (the file, its top level, a result that is no
 * table, on_reload) puts the old modules and handlers back and logs one
 * line: the old code goes on as if nothing happened.
 *
 * Each state reloads on its own worker (posted there), between two events:
 * no handler of it runs meanwhile, so no message is lost or reordered. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "gc_lua.h"

/* ---- which modules are the script's -------------------------------------- */

/* Pushes a set (name -> true) of the keys of package.loaded now. */
static void loaded_keys(lua_State *L) {
  lua_newtable(L);
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      lua_pushvalue(L, -1);
      lua_pushboolean(L, 1);
      lua_rawset(L, -5);
    }
  }
  lua_pop(L, 1);
}

/* A Lua file found through package.path (not a C module). */
static int is_lua_module(lua_State *L, const char *name) {
  int top = lua_gettop(L);
  int found = 0;
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, "package") == LUA_TTABLE &&
      lua_getfield(L, -1, "searchpath") == LUA_TFUNCTION) {
    lua_pushstring(L, name);
    lua_getfield(L, -3, "path");
    found = lua_pcall(L, 2, 1, 0) == LUA_OK && lua_isstring(L, -1);
  }
  lua_settop(L, top);
  return found;
}

void gc_lua_modules_before(lua_State *L, struct gc_lua_app *app) {
  (void)app;
  loaded_keys(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "gc.modules.before");
}

/* Protected: the script's modules are what package.loaded gained since
 * gc_lua_modules_before, loaded from package.path; kept as an array. */
void gc_lua_modules_after(lua_State *L, struct gc_lua_app *app) {
  (void)app;
  int top = lua_gettop(L);
  lua_getfield(L, LUA_REGISTRYINDEX, "gc.modules.before");
  int before = top + 1;
  lua_newtable(L);
  int list = top + 2;
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  int loaded = top + 3;
  lua_Integer n = 0;
  lua_pushnil(L);
  while (lua_next(L, loaded)) {
    lua_pop(L, 1); /* the key stays on top */
    if (lua_type(L, -1) != LUA_TSTRING)
      continue;
    int old = 0;
    if (lua_istable(L, before)) {
      lua_pushvalue(L, -1);
      old = lua_rawget(L, before) != LUA_TNIL;
      lua_pop(L, 1);
    }
    const char *name = lua_tostring(L, -1);
    if (!old && strcmp(name, "gc") != 0 && is_lua_module(L, name)) {
      lua_pushvalue(L, -1);
      lua_rawseti(L, list, ++n);
    }
  }
  lua_pushvalue(L, list);
  lua_setfield(L, LUA_REGISTRYINDEX, "gc.modules");
  lua_pushnil(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "gc.modules.before");
  lua_settop(L, top);
}

/* ---- the reload ----------------------------------------------------------- */

struct reload_ev {
  struct gc_lua_app *app;
  const char *script;
  int stage; /* how far it went: 1 modules out, 2 handlers swapped */
  int old_ref;
};

/* Protected: the script's modules out of package.loaded (kept in the
 * registry's "gc.modules.saved" to put back on failure), the script run
 * again, the handler table swapped, on_reload(old) called. */
static int do_reload(lua_State *L) {
  struct reload_ev *ev = lua_touserdata(L, 1);
  struct gc_lua_app *app = ev->app;
  lua_settop(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE); /* 2 */
  lua_newtable(L);                                    /* 3: saved */
  lua_pushvalue(L, 3);
  lua_setfield(L, LUA_REGISTRYINDEX, "gc.modules.saved");
  if (lua_getfield(L, LUA_REGISTRYINDEX, "gc.modules") == LUA_TTABLE) { /* 4 */
    lua_Integer n = (lua_Integer)lua_rawlen(L, 4);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, 4, i); /* name */
      lua_pushvalue(L, -1);
      lua_rawget(L, 2); /* name, old value */
      lua_rawset(L, 3);
      lua_rawgeti(L, 4, i);
      lua_pushnil(L);
      lua_rawset(L, 2);
    }
  }
  lua_settop(L, 3);
  ev->stage = 1;
  gc_lua_modules_before(L, app);
  if (luaL_loadfilex(L, ev->script, "t") != LUA_OK)
    return lua_error(L);
  lua_call(L, 0, 1);
  if (!lua_istable(L, -1))
    return luaL_error(L, "%s must return a table of handlers (it returned %s)",
                      ev->script, luaL_typename(L, -1));
  gc_lua_handlers_check(L, app, -1);
  int new_idx = lua_gettop(L);
  /* Swapped before on_reload runs: it may call handlers of the new table
   * (and a failure swaps back). */
  ev->old_ref = app->handlers_ref;
  lua_pushvalue(L, new_idx);
  app->handlers_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  app->sent_known = 0;
  ev->stage = 2;
  lua_getfield(L, new_idx, "on_reload");
  if (!lua_isnil(L, -1)) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, ev->old_ref);
    lua_call(L, 1, 0);
  } else {
    lua_pop(L, 1);
  }
  gc_lua_modules_after(L, app);
  return 0;
}

/* Protected: undoes what do_reload did up to 'stage'. */
static int do_restore(lua_State *L) {
  struct reload_ev *ev = lua_touserdata(L, 1);
  struct gc_lua_app *app = ev->app;
  if (ev->stage >= 2) {
    luaL_unref(L, LUA_REGISTRYINDEX, app->handlers_ref);
    app->handlers_ref = ev->old_ref;
    ev->old_ref = LUA_NOREF;
    app->sent_known = 0;
  }
  if (ev->stage >= 1) {
    /* The modules the failed run loaded go; the old ones come back. */
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    int loaded = lua_gettop(L);
    lua_getfield(L, LUA_REGISTRYINDEX, "gc.modules.before");
    if (lua_istable(L, -1)) {
      lua_pushnil(L);
      while (lua_next(L, loaded)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, loaded + 1) == LUA_TNIL && lua_type(L, -2) == LUA_TSTRING &&
            is_lua_module(L, lua_tostring(L, -2))) {
          lua_pop(L, 1);
          lua_pushvalue(L, -1);
          lua_pushnil(L);
          lua_rawset(L, loaded); /* safe: an existing key set to nil */
        } else {
          lua_pop(L, 1);
        }
      }
    }
    lua_pop(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, "gc.modules.saved");
    if (lua_istable(L, -1)) {
      lua_pushnil(L);
      while (lua_next(L, -2)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, loaded);
      }
    }
    lua_pop(L, 2);
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "gc.modules.before");
  }
  return 0;
}

static int do_forget(lua_State *L) {
  struct reload_ev *ev = lua_touserdata(L, 1);
  if (ev->old_ref != LUA_NOREF)
    luaL_unref(L, LUA_REGISTRYINDEX, ev->old_ref);
  lua_pushnil(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "gc.modules.saved");
  return 0;
}

int gc_lua_app_reload(struct gc_lua_app *app, const char *script, char *err,
                      size_t errlen) {
  char own[512];
  if (err == NULL || errlen == 0) {
    err = own;
    errlen = sizeof own;
  }
  err[0] = '\0';
  if (app->L == NULL || app->closing || app->depth > 0)
    return EBUSY;
  if (script && strcmp(script, app->script) != 0) {
    char *copy = strdup(script);
    if (copy == NULL)
      return ENOMEM;
    free(app->script);
    app->script = copy;
  }
  /* The hot paths keep the handler table on the stack between entries. */
  lua_settop(app->L, 0);
  struct reload_ev ev = {.app = app, .script = app->script, .old_ref = LUA_NOREF};
  int st = gc_lua_pcall_quiet(app, do_reload, &ev, err, errlen);
  if (st != LUA_OK) {
    if (gc_lua_pcall_quiet(app, do_restore, &ev, NULL, 0) != LUA_OK)
      gc_lua_log(app, GCL_ERR, "reload: could not put the old modules back");
    gc_lua_log(app, GCL_ERR, "reload of %s failed, the old code goes on: %s",
               app->script, *err ? err : "error");
    (void)gc_lua_pcall_quiet(app, do_forget, &ev, NULL, 0);
    return st == LUA_ERRMEM ? ENOMEM : EINVAL;
  }
  (void)gc_lua_pcall_quiet(app, do_forget, &ev, NULL, 0);
  gc_lua_log(app, GCL_NOTICE, "reloaded %s", app->script);
  return 0;
}
