/* capture.c - gc.testing's capture of what the host logs: script errors
 * from the Lua adapter's error sink, every line through the log hook (the
 * last LOGS_KEPT), and host:settle's wait for the handlers that wait. */
#include <dlfcn.h>
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <game-carrier/server.h>

#include "embed.h"
#include "log.h"
#include "testing.h"

#define LOGS_KEPT 10000

struct thost *gc_thost_log_target;

void gc_thost_enter(struct thost *t) { gc_thost_log_target = t; }

static void errors_add(struct thost *t, const char *line) {
  size_t n = strlen(line);
  char *p = realloc(t->errors, t->errors_len + n + 2);
  if (!p)
    return;
  memcpy(p + t->errors_len, line, n);
  t->errors_len += n;
  p[t->errors_len++] = ERR_SEP;
  p[t->errors_len] = '\0';
  t->errors = p;
}

/* The adapter's script errors (gc_lua_set_error_sink). */
static void error_sink(const char *line, void *ud) {
  (void)ud;
  if (gc_thost_log_target)
    errors_add(gc_thost_log_target, line);
}

static int have_sink; /* else ERR lines stand for script errors (old adapter) */
void *gc_thost_sink_dl; /* our reference to the adapter */

/* Sets the sink in the adapter at 'path' before the host loads it: our
 * handle makes the host's dlopen find the same, already loaded copy. */
void gc_thost_error_sink_install(const char *path) {
  if (gc_thost_sink_dl)
    dlclose(gc_thost_sink_dl); /* one reference of ours at a time */
  void *dl = gc_thost_sink_dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  void (*set)(void (*)(const char *, void *), void *) = NULL;
  if (dl)
    *(void **)&set = dlsym(dl, "gc_lua_set_error_sink");
  if (set)
    set(error_sink, NULL);
  have_sink = set != NULL;
}

/* "[2026/12/02 10:00:00:1234] E: text" without its timestamp. */
static const char *untimed(const char *line) {
  const char *p = line[0] == '[' ? strstr(line, "] ") : NULL;
  return p ? p + 2 : line;
}

static void logs_add(struct thost *t, int level, const char *line) {
  if (t->nlogs == LOGS_KEPT) { /* the oldest half goes */
    size_t half = LOGS_KEPT / 2;
    for (size_t i = 0; i < half; i++)
      free(t->logs[i]);
    memmove(t->logs, t->logs + half, (t->nlogs - half) * sizeof *t->logs);
    memmove(t->log_levels, t->log_levels + half,
            (t->nlogs - half) * sizeof *t->log_levels);
    t->nlogs -= half;
  }
  if (t->nlogs == t->logs_cap) {
    size_t cap = t->logs_cap ? t->logs_cap * 2 : 64;
    char **l = realloc(t->logs, cap * sizeof *l);
    if (l)
      t->logs = l;
    int *v = l ? realloc(t->log_levels, cap * sizeof *v) : NULL;
    if (v)
      t->log_levels = v;
    if (!l || !v)
      return;
    t->logs_cap = cap;
  }
  char *copy = strdup(line);
  if (!copy)
    return;
  t->logs[t->nlogs] = copy;
  t->log_levels[t->nlogs++] = level;
}

void gc_thost_logs_free(struct thost *t) {
  for (size_t i = 0; i < t->nlogs; i++)
    free(t->logs[i]);
  free(t->logs);
  free(t->log_levels);
  t->logs = NULL;
  t->log_levels = NULL;
  t->nlogs = t->logs_cap = 0;
}

void gc_thost_log_hook(int level, const char *line, void *ud) {
  (void)ud;
  struct thost *t = gc_thost_log_target;
  if (!t)
    return;
  logs_add(t, level, untimed(line));
  if (!have_sink && (level & GCL_ERR))
    errors_add(t, untimed(line));
}

void gc_thost_unlink(struct thost *t, struct tclient *c) {
  for (struct tclient **p = &t->clients; *p; p = &(*p)->next)
    if (*p == c) {
      *p = c->next;
      c->next = NULL;
      return;
    }
}

/* Pushes the errors logged so far as one message ('prefix' first) and
 * forgets them; the caller raises it. */
void gc_thost_push_errors(lua_State *L, struct thost *t, const char *prefix) {
  for (size_t i = 0; i < t->errors_len; i++)
    if (t->errors[i] == ERR_SEP)
      t->errors[i] = '\n';
  lua_pushfstring(L, "%s%s", prefix, t->errors ? t->errors : "");
  free(t->errors);
  t->errors = NULL;
  t->errors_len = 0;
}

/* Lets clients answer the server (close replies, pongs) until all is quiet,
 * then raises any script error logged meanwhile. */
void gc_thost_settle(lua_State *L, struct thost *t) {
  for (int round = 0; round < 1000; round++) {
    int busy = 0;
    for (struct tclient *c = t->clients; c; c = c->next) {
      if (gc_tclient_process(c)) {
        busy = 1;
        gc_tclient_flush(c);
      }
    }
    if (!busy)
      break;
  }
  for (struct tclient *c = t->clients, *next; c; c = next) {
    next = c->next;
    gc_tclient_process(c);
    if (c->finished)
      gc_thost_unlink(t, c);
  }
  if (t->errors_len && t->raise_errors) {
    gc_thost_push_errors(L, t, "");
    lua_error(L);
  }
}
