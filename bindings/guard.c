/* guard.c - no script code where Lua's hooks are off.
 *
 * Lua runs some script code with its hooks off, where the time limit's stop
 * (watchdog.c) cannot reach it: xpcall's message handler when the error
 * came from a hook, hooks set by the script, finalizers, and the
 * to-be-closed variables of a coroutine that died in a hook. The guards
 * here keep scripts out of each, and out of what the guards themselves
 * hold (the debug library's ways into C frames, upvalues and the
 * registry). */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "gc_lua.h"

/* A coroutine killed by the stop: a tag in the low bit of its extra space
 * (the app's address, so the bit is free; see gc_lua_app_of). */
void gc_lua_thread_mark_stopped(lua_State *co) {
  uintptr_t p;
  memcpy(&p, lua_getextraspace(co), sizeof p);
  p |= 1u;
  memcpy(lua_getextraspace(co), &p, sizeof p);
}

int gc_lua_thread_stopped(lua_State *co) {
  uintptr_t p;
  memcpy(&p, lua_getextraspace(co), sizeof p);
  return (int)(p & 1u);
}

/* xpcall's message handler as the script gave it (upvalue 1). Lua calls
 * it with hooks off when the error was raised by a hook, so after the stop
 * the error passes untouched and the script's handler never runs. */
static int guarded_msgh(lua_State *L) {
  if (gc_lua_stopped(gc_lua_app_of(L))) {
    lua_settop(L, 1);
    return 1;
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

/* lbaselib's 'finishpcall'. */
static int finish_xpcall(lua_State *L, int status, lua_KContext extra) {
  if (status != LUA_OK && status != LUA_YIELD) {
    lua_pushboolean(L, 0);
    lua_pushvalue(L, -2);
    return 2;
  }
  return lua_gettop(L) - (int)extra;
}

/* xpcall(f, msgh, ...): lbaselib's, with 'msgh' behind guarded_msgh. It
 * does not call Lua's own: that one would be reachable through
 * debug.getinfo(level, "f") from 'f'. debug.traceback (C, calls no Lua)
 * is given as is, so its traceback has no extra level. */
static int guarded_xpcall(lua_State *L) {
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (lua_tocfunction(L, 2) != gc_lua_app_of(L)->traceback) {
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, guarded_msgh, 1);
    lua_replace(L, 2);
  }
  lua_pushboolean(L, 1);
  lua_pushvalue(L, 1);
  lua_rotate(L, 3, 2);
  int st = lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, finish_xpcall);
  return finish_xpcall(L, st, 2);
}

/* A hook of the script would run with hooks off, and could remove the
 * stop: scripts get none (debug.gethook shows the host's). */
static int no_sethook(lua_State *L) {
  return luaL_error(L, "debug.sethook is not available to gcs scripts (the "
                       "time limit needs the hook)");
}

/* Finalizers run with hooks off, so no object of the script may get one.
 * Lua marks an object for finalization only if its metatable has a __gc
 * field when it is set, so refusing that here is enough. */
static void check_no_gc(lua_State *L) {
  if (lua_type(L, 2) != LUA_TTABLE)
    return;
  lua_pushliteral(L, "__gc");
  if (lua_rawget(L, 2) != LUA_TNIL) /* raw, as Lua's own check */
    luaL_argerror(L, 2, "__gc metamethods are not available to gcs scripts");
  lua_pop(L, 1);
}

/* setmetatable(t, mt): lbaselib's, without __gc. */
static int guarded_setmetatable(lua_State *L) {
  int t = lua_type(L, 2);
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
    return luaL_error(L, "cannot change a protected metatable");
  lua_settop(L, 2);
  check_no_gc(L);
  lua_setmetatable(L, 1);
  return 1;
}

/* debug.setmetatable(v, mt): ldblib's, without __gc. */
static int guarded_dbsetmetatable(lua_State *L) {
  int t = lua_type(L, 2);
  luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  lua_settop(L, 2);
  check_no_gc(L);
  lua_setmetatable(L, 1);
  return 1;
}

/* setmetatable refuses __gc, but a metatable that C code made with __gc
 * keeps marking the objects C code gives it: its __gc rewritten, each new
 * one would run script code with hooks off. Scripts reach none of them:
 *  - getmetatable honours __metatable, which ours have ("gc.conn",
 *    "gc.timer") and liolib's "FILE*" gets here (the string its handles'
 *    getmetatable returns);
 *  - debug.getmetatable honours it too, as getmetatable (libraries such as
 *    dkjson and luassert call it on every value, so it cannot just raise);
 *  - debug.getregistry, which holds them all ("FILE*", "gc.conn",
 *    "_CLIBS"...), raises, "lua.unsafe" or not: unsafe turns on what may
 *    block the loop or load native code, never a way past the time limit
 *    (as debug.sethook);
 *  - a C function's frame is not the script's: debug.getlocal and setlocal
 *    see no locals there. Its temporaries would give lauxlib's buffer boxes
 *    ("_UBOX*", no __metatable) and let the script swap what a guard put
 *    on the C stack (guarded_xpcall's handler, a slot Lua reads when the
 *    stop raises, with hooks off);
 *  - debug.setupvalue sets no upvalue of a C function (the app of the gc
 *    functions, a wrapped coroutine: C code trusts them), and
 *    debug.setuservalue raises (C code trusts those it set).
 * Modules the operator installs (lfs...) make metatables of their own:
 * that is the operator's trust. */
static int no_getregistry(lua_State *L) {
  return luaL_error(L, "debug.getregistry is not available to gcs scripts "
                       "(finalizers run with hooks off)");
}

/* debug.getmetatable(v): lbaselib's getmetatable (a protected metatable
 * gives its __metatable field). */
static int guarded_dbgetmetatable(lua_State *L) {
  luaL_checkany(L, 1);
  if (!lua_getmetatable(L, 1)) {
    lua_pushnil(L);
    return 1;
  }
  luaL_getmetafield(L, 1, "__metatable");
  return 1;
}

static int no_setuservalue(lua_State *L) {
  return luaL_error(L, "debug.setuservalue is not available to gcs scripts "
                       "(C code relies on the values it set)");
}

/* Whether the arguments of debug.getlocal/setlocal ([thread,] level, n)
 * name the frame of a C function (ldblib's 'getthread'). Anything else
 * (a function instead of a level, a level out of range, bad arguments)
 * is left to Lua's own, which answers or raises as usual. */
static int c_frame(lua_State *L) {
  lua_State *L1 = L;
  int arg = 0, isnum;
  lua_Debug ar;
  if (lua_isthread(L, 1)) {
    L1 = lua_tothread(L, 1);
    arg = 1;
  }
  lua_Integer level = lua_tointegerx(L, arg + 1, &isnum);
  if (!isnum || level < 0 || level > INT_MAX ||
      !lua_getstack(L1, (int)level, &ar))
    return 0;
  lua_getinfo(L1, "S", &ar);
  return strcmp(ar.what, "C") == 0;
}

/* debug.getlocal: ldblib's, none for a C function's frame. */
static int guarded_getlocal(lua_State *L) {
  if (c_frame(L)) {
    luaL_pushfail(L);
    return 1;
  }
  return gc_lua_app_of(L)->db_getlocal(L);
}

/* debug.setlocal: ldblib's, none for a C function's frame. */
static int guarded_setlocal(lua_State *L) {
  if (c_frame(L)) {
    luaL_pushfail(L);
    return 1;
  }
  return gc_lua_app_of(L)->db_setlocal(L);
}

/* debug.setupvalue: ldblib's, for Lua functions only. */
static int guarded_setupvalue(lua_State *L) {
  luaL_argcheck(L, !lua_iscfunction(L, 1), 1,
                "Lua function expected: gcs scripts cannot set the upvalues "
                "of C functions");
  return gc_lua_app_of(L)->db_setupvalue(L);
}

/* Replaces debug.'name' (the debug table on top) by 'f'; Lua's own C
 * function in '*orig' if wanted (the field stays if it is not one). */
static void guard(lua_State *L, const char *name, lua_CFunction f,
                  lua_CFunction *orig) {
  if (orig != NULL) {
    lua_getfield(L, -1, name);
    *orig = lua_tocfunction(L, -1);
    lua_pop(L, 1);
    if (*orig == NULL)
      return;
  }
  lua_pushcfunction(L, f);
  lua_setfield(L, -2, name);
}

void gc_lua_guards_open(lua_State *L, struct gc_lua_app *app) {
  lua_pushcfunction(L, guarded_xpcall);
  lua_setglobal(L, "xpcall");
  lua_pushcfunction(L, guarded_setmetatable);
  lua_setglobal(L, "setmetatable");
  if (luaL_getmetatable(L, LUA_FILEHANDLE) == LUA_TTABLE) {
    lua_pushliteral(L, LUA_FILEHANDLE);
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
  if (lua_getglobal(L, "debug") == LUA_TTABLE) {
    if (lua_getfield(L, -1, "traceback") == LUA_TFUNCTION)
      app->traceback = lua_tocfunction(L, -1);
    lua_pop(L, 1);
    lua_pushcfunction(L, no_sethook);
    lua_setfield(L, -2, "sethook");
    lua_pushcfunction(L, guarded_dbsetmetatable);
    lua_setfield(L, -2, "setmetatable");
    guard(L, "getregistry", no_getregistry, NULL);
    guard(L, "getmetatable", guarded_dbgetmetatable, NULL);
    guard(L, "setuservalue", no_setuservalue, NULL);
    guard(L, "getlocal", guarded_getlocal, &app->db_getlocal);
    guard(L, "setlocal", guarded_setlocal, &app->db_setlocal);
    guard(L, "setupvalue", guarded_setupvalue, &app->db_setupvalue);
  }
  lua_pop(L, 1);
}
