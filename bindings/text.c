/* text.c - the bindings' text helpers: UTF-8 well-formedness (what
 * conn:send and refusal texts are held to) and a URL query string as a
 * table (on_connect's info.query). */
#include <string.h>

#include <lauxlib.h>

#include "gc_lua.h"

/* 1 when 's' is well-formed UTF-8 (no overlongs, no surrogates, nothing
 * above U+10FFFF): what the host and every client require of text. */
int gc_lua_utf8_valid(const unsigned char *s, size_t len) {
  size_t i = 0;
  while (i < len) {
    unsigned c = s[i];
    size_t n;
    unsigned lo = 0x80, hi = 0xbf;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c == 0xe0)
        lo = 0xa0;
      else if (c == 0xed)
        hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c == 0xf0)
        lo = 0x90;
      else if (c == 0xf4)
        hi = 0x8f;
    } else {
      return 0;
    }
    if (len - i <= n)
      return 0;
    for (size_t k = 1; k <= n; k++) {
      unsigned b = s[i + k];
      if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xbf))
        return 0;
    }
    i += n + 1;
  }
  return 1;
}

static int hexval(int ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

/* Pushes s[0..n) URL-decoded ('+' is a space, bad escapes stay as is). */
static void push_decoded(lua_State *L, const char *s, size_t n) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < n; i++) {
    int h, l;
    if (s[i] == '+') {
      luaL_addchar(&b, ' ');
    } else if (s[i] == '%' && i + 2 < n &&
               (h = hexval((unsigned char)s[i + 1])) >= 0 &&
               (l = hexval((unsigned char)s[i + 2])) >= 0) {
      luaL_addchar(&b, (char)(h * 16 + l));
      i += 2;
    } else {
      luaL_addchar(&b, s[i]);
    }
  }
  luaL_pushresult(&b);
}

/* Pushes the query string 'q' (after '?') as a table: 'a=1&b=x%20y&c'
 * gives {a = "1", b = "x y", c = ""}; a repeated key keeps its last value. */
void gc_lua_push_query(lua_State *L, const char *q) {
  lua_newtable(L);
  while (q && *q) {
    const char *end = strchr(q, '&');
    size_t n = end ? (size_t)(end - q) : strlen(q);
    if (n > 0) {
      const char *eq = memchr(q, '=', n);
      size_t kn = eq ? (size_t)(eq - q) : n;
      push_decoded(L, q, kn);
      if (eq)
        push_decoded(L, eq + 1, n - kn - 1);
      else
        lua_pushliteral(L, "");
      lua_rawset(L, -3);
    }
    q = end ? end + 1 : NULL;
  }
}
