/* handlers.c - the names of a script's handlers.
 *
 * A handler is found by name only when its event comes, so one under a
 * misspelt name ("on_mesage") is never called and nothing says why. At
 * load, each key of the handler table that looks like a handler but is
 * not one gets a warning with the closest name. Looking like one: a
 * string key starting with "on_" or "application_", or within MAX_EDITS
 * edits of a name (case aside, so "onMessage" counts). Anything else
 * ("players", a helper named "broadcast") is the script's own business. */
#include <ctype.h>
#include <stddef.h>
#include <string.h>

#include <lauxlib.h>

#include "gc_lua.h"

/* Every name the adapter calls a script by (app.c, conn.c, adapter.c). */
static const char *const handler_names[] = {
    "on_connect",           "on_message",         "on_message_sent",
    "on_timer",             "on_issue",           "on_disconnect",
    "application_initialize", "application_start", "application_stop",
    "application_shutdown", NULL};

#define MAX_EDITS 2
#define NAME_MAX_CMP 64 /* longer keys are compared by their start */

_Static_assert(NAME_MAX_CMP == GC_LUA_EDIT_MAX, "one bound for both");

size_t gc_lua_edit_distance(const char *a, size_t la, const char *b, size_t lb) {
  size_t row[GC_LUA_EDIT_MAX + 1];
  for (size_t j = 0; j <= lb; j++)
    row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t cost = tolower((unsigned char)a[i - 1]) !=
                    tolower((unsigned char)b[j - 1]);
      size_t best = diag + cost;
      if (up + 1 < best)
        best = up + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

static int has_prefix(const char *s, size_t len, const char *prefix) {
  size_t n = strlen(prefix);
  return len >= n && memcmp(s, prefix, n) == 0;
}

/* The known name closest to 'key'; NULL when 'key' is one of them. */
static const char *closest(const char *key, size_t len, size_t *edits) {
  size_t cmp = len < NAME_MAX_CMP ? len : NAME_MAX_CMP;
  const char *best = NULL;
  size_t best_d = (size_t)-1;
  for (int i = 0; handler_names[i]; i++) {
    const char *name = handler_names[i];
    if (strlen(name) == len && memcmp(name, key, len) == 0)
      return NULL;
    size_t d = gc_lua_edit_distance(key, cmp, name, strlen(name));
    if (d < best_d) {
      best_d = d;
      best = name;
    }
  }
  *edits = best_d;
  return best;
}

void gc_lua_handlers_check(lua_State *L, struct gc_lua_app *app, int idx) {
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, 3, "checking the handler names");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1); /* the value */
    if (lua_type(L, -1) != LUA_TSTRING) /* lua_tolstring would convert it */
      continue;
    size_t len;
    const char *key = lua_tolstring(L, -1, &len);
    size_t edits;
    const char *name = closest(key, len, &edits);
    if (name == NULL)
      continue;
    if (edits > MAX_EDITS && !has_prefix(key, len, "on_") &&
        !has_prefix(key, len, "application_"))
      continue;
    gc_lua_log(app, GCL_WARN, "%s: unknown handler \"%.*s\" (did you mean "
               "\"%s\"?)", app->script, len > 80 ? 80 : (int)len, key, name);
  }
}
