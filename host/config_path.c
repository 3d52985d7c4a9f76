/* config_path.c - see config_path.h. jansson keeps no position for a
 * value, so a problem found in the parsed tree is placed by walking the
 * text again along the key path. Also the validation context's path and
 * the messages placed with it (config_internal.h). */
#include "config_path.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config_internal.h"

void gc__config_path_format(char *out, size_t len,
                            const struct gc_config_step *path, size_t n) {
  size_t used = 0;
  out[0] = '\0';
  for (size_t i = 0; i < n && used < len; i++) {
    int w = path[i].key
                ? snprintf(out + used, len - used, "%s%s", i ? "." : "",
                           path[i].key)
                : snprintf(out + used, len - used, "[%zu]", path[i].idx);
    if (w < 0)
      break;
    used += (size_t)w;
  }
}

/* ---- positions in the text ----------------------------------------------- */

/* Columns count characters, not bytes, as jansson's do: a UTF-8
 * continuation byte does not advance the column. */
struct cursor {
  const char *s;
  int line, col;
};

static void cur_next(struct cursor *c) {
  if (!*c->s)
    return;
  char was = *c->s++;
  if (was == '\n') {
    c->line++;
    c->col = 1;
  } else if (((unsigned char)*c->s & 0xC0) != 0x80) {
    c->col++;
  }
}

static void cur_ws(struct cursor *c) {
  while (*c->s == ' ' || *c->s == '\t' || *c->s == '\n' || *c->s == '\r')
    cur_next(c);
}

static void cur_skip_string(struct cursor *c) {
  cur_next(c); /* opening quote */
  while (*c->s && *c->s != '"') {
    if (*c->s == '\\')
      cur_next(c);
    cur_next(c);
  }
  cur_next(c); /* closing quote */
}

/* Skips one value. Iterative, so a deeply nested value (jansson accepts
 * 2048 levels) costs no stack. */
static void cur_skip_value(struct cursor *c) {
  size_t depth = 0;
  do {
    cur_ws(c);
    char ch = *c->s;
    if (!ch)
      return;
    if (ch == '"') {
      cur_skip_string(c);
    } else if (ch == '{' || ch == '[') {
      depth++;
      cur_next(c);
    } else if (ch == '}' || ch == ']') {
      if (depth)
        depth--;
      cur_next(c);
    } else if (ch == ',' || ch == ':') {
      cur_next(c);
    } else {
      while (*c->s && !strchr(",:{}[]\" \t\r\n", *c->s))
        cur_next(c);
    }
  } while (depth > 0);
}

static unsigned cur_hex4(struct cursor *c) {
  unsigned v = 0;
  for (int i = 0; i < 4 && *c->s; i++) {
    char h = *c->s;
    v = v * 16 + (unsigned)(isdigit((unsigned char)h) ? h - '0'
                                                       : tolower((unsigned char)h) - 'a' + 10);
    cur_next(c);
  }
  return v;
}

/* Decodes the escape after a backslash into UTF-8 bytes; returns their
 * count. The text passed jansson, so escapes and surrogates are valid. */
static size_t cur_escape(struct cursor *c, char out[4]) {
  char e = *c->s;
  cur_next(c);
  switch (e) {
  case 'b': out[0] = '\b'; return 1;
  case 'f': out[0] = '\f'; return 1;
  case 'n': out[0] = '\n'; return 1;
  case 'r': out[0] = '\r'; return 1;
  case 't': out[0] = '\t'; return 1;
  case 'u': break;
  default: out[0] = e; return 1; /* " \ / */
  }
  unsigned cp = cur_hex4(c);
  if (cp >= 0xD800 && cp <= 0xDBFF && c->s[0] == '\\' && c->s[1] == 'u') {
    cur_next(c);
    cur_next(c);
    unsigned lo = cur_hex4(c);
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
  }
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Consumes the string token at 'c'; true when it decodes to 'want' (keys
 * come decoded from jansson, so an escaped key must still match). */
static bool cur_string_equals(struct cursor *c, const char *want) {
  bool eq = true;
  size_t i = 0;
  cur_next(c); /* opening quote */
  while (*c->s && *c->s != '"') {
    char buf[4];
    size_t n;
    if (*c->s == '\\') {
      cur_next(c);
      n = cur_escape(c, buf);
    } else {
      buf[0] = *c->s;
      n = 1;
      cur_next(c);
    }
    for (size_t k = 0; eq && k < n; k++)
      eq = want[i + k] == buf[k]; /* stops at want's NUL: buf has none */
    i += n;
  }
  cur_next(c); /* closing quote */
  return eq && want[i] == '\0';
}

/* Finds where the value at 'path' starts in 'text' (where its key starts
 * with 'at_key'). Every path validation produces exists in the text; should
 * one not, the place of the deepest step found is given. */
void gc__config_locate(const char *text, const struct gc_config_step *path,
                       size_t n, bool at_key, int *line, int *col) {
  struct cursor c = {text, 1, 1};
  cur_ws(&c);
  int vl = c.line, vc = c.col, kl = 0, kc = 0;
  size_t d;
  for (d = 0; d < n; d++) {
    bool found = false;
    if (path[d].key && *c.s == '{') {
      cur_next(&c);
      for (;;) {
        cur_ws(&c);
        if (*c.s != '"')
          break; /* '}': no such key */
        int l = c.line, k = c.col;
        bool match = cur_string_equals(&c, path[d].key);
        cur_ws(&c);
        cur_next(&c); /* ':' */
        cur_ws(&c);
        if (match) {
          kl = l;
          kc = k;
          found = true;
          break;
        }
        cur_skip_value(&c);
        cur_ws(&c);
        if (*c.s == ',')
          cur_next(&c);
      }
    } else if (!path[d].key && *c.s == '[') {
      cur_next(&c);
      kl = 0;
      for (size_t i = 0;; i++) {
        cur_ws(&c);
        if (!*c.s || *c.s == ']')
          break;
        if (i == path[d].idx) {
          found = true;
          break;
        }
        cur_skip_value(&c);
        cur_ws(&c);
        if (*c.s == ',')
          cur_next(&c);
      }
    }
    if (!found)
      break;
    vl = c.line;
    vc = c.col;
  }
  bool key_found = d == n && n > 0 && path[n - 1].key;
  *line = at_key && key_found ? kl : vl;
  *col = at_key && key_found ? kc : vc;
}

/* ---- the validation context's path and messages -------------------------- */

void gc__config_path_push_key(struct gc_config_ctx *v, const char *key) {
  assert(v->depth < GC_CONFIG_PATH_MAX_STEPS); /* bounded by the schema */
  v->path[v->depth++] = (struct gc_config_step){key, 0};
}

void gc__config_path_push_idx(struct gc_config_ctx *v, size_t idx) {
  assert(v->depth < GC_CONFIG_PATH_MAX_STEPS);
  v->path[v->depth++] = (struct gc_config_step){NULL, idx};
}

void gc__config_path_pop(struct gc_config_ctx *v) {
  assert(v->depth > 0);
  v->depth--;
}

int gc__config_fail(const struct gc_config_ctx *v, size_t named, bool at_key,
                    const char *fmt, ...) {
  char msg[768], where[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  gc__config_path_format(where, sizeof where, v->path, named);
  int line, col;
  gc__config_locate(v->text, v->path, v->depth, at_key, &line, &col);
  snprintf(v->err, v->errlen, "%s:%d:%d: %s%s%s", v->source, line, col, where,
           *where ? ": " : "", msg);
  return EINVAL;
}

void gc__config_describe(const json_t *j, char *out, size_t len) {
  switch (json_typeof(j)) {
  case JSON_OBJECT:
    snprintf(out, len, json_object_size(j) ? "an object" : "{}");
    return;
  case JSON_ARRAY:
    snprintf(out, len, json_array_size(j) ? "an array" : "[]");
    return;
  case JSON_INTEGER:
    snprintf(out, len, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
    return;
  case JSON_TRUE: snprintf(out, len, "true"); return;
  case JSON_FALSE: snprintf(out, len, "false"); return;
  case JSON_NULL: snprintf(out, len, "null"); return;
  case JSON_STRING:
  case JSON_REAL: break;
  }
  char *text = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
  if (!text) {
    snprintf(out, len, json_is_string(j) ? "a string" : "a number");
    return;
  }
  if (strlen(text) > GC_CONFIG_DESCRIBE_MAX)
    snprintf(out, len, "%.*s...", GC_CONFIG_DESCRIBE_MAX - 3, text);
  else
    snprintf(out, len, "%s", text);
  json_free_t jfree;
  json_get_alloc_funcs(NULL, &jfree);
  jfree(text);
}
