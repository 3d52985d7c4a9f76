/* test_lua_adapter.c - the Lua adapter (bindings/) as a real adapter: the
 * built libgc_lua.so is dlopened as gcs does and driven through its exported
 * events, with a fake 'struct core_api' that records every call. No host
 * code runs: this checks the binding's side of the contract alone.
 *
 * Most tests use tests/unit/lua/harness.lua, whose on_message runs the
 * message as Lua code and sends back what it returns, so a test reads as
 * "send this Lua, expect this answer". */
#include <dlfcn.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <game-carrier/server.h>

#ifndef GC_BUILD_DIR
#define GC_BUILD_DIR "."
#endif
#ifndef GC_SOURCE_DIR
#define GC_SOURCE_DIR ".."
#endif
#define LUA_DIR GC_SOURCE_DIR "/tests/unit/lua/"
#define LIB_PATH GC_BUILD_DIR "/libgc_lua.so"

/* ---- the fake host ------------------------------------------------------- */

#define MAX_LOG 512
#define MAX_CONNS 64
#define MAX_TIMERS 64

struct sent_msg {
  GCT_INTPTR handle;
  char *data;
  size_t len;
  GCT_INTPTR cookie;
};

struct fake_conn {
  GCT_INTPTR handle;
  GCT_INTPTR user;
  int open, closing, close_reason, timer_ms;
  char *last; /* last message sent to it */
};

struct fake_timer {
  GCT_INT app_id;
  GCT_INT ms, repeat_ms;
  GCTimerCallback cb;
  GCT_INTPTR user;
  int active;
};

struct opt {
  const char *key;
  const char *str; /* STRING value, or NULL for a number */
  uint64_t num;
};

static struct {
  char *log[MAX_LOG];
  int log_level[MAX_LOG];
  int nlog;
  struct sent_msg *sent;
  size_t nsent, capsent;
  int broadcasts; /* connectionsBroadcast calls */
  struct fake_conn conns[MAX_CONNS];
  int nconns;
  struct fake_timer timers[MAX_TIMERS];
  int ntimers; /* timer id = index + 1 */
  int timer_stops;
  int close_calls;
  GCT_INTPTR limit_handle;
  GCT_INT limit_level, limit_stat;
  GCT_COUNTER_VALUE limit_value;
  int64_t now;
  const struct opt *opts;
  GCT_COUNTER_VALUE counters[8];
  int ncounters, mem_counter;
} F;

static struct fake_conn *conn_by_handle(GCT_INTPTR h) {
  for (int i = 0; i < F.nconns; i++)
    if (F.conns[i].handle == h)
      return &F.conns[i];
  return NULL;
}

static GCT_INT fake_get_opt(GCT_CSTR name, GCT_INT type, GCT_PTR value) {
  if (!name || (!value && type != GC_OPT_TYPE_NULL))
    return EINVAL;
  for (const struct opt *o = F.opts; o && o->key; o++) {
    if (strcmp(o->key, name) != 0)
      continue;
    switch (type) {
    case GC_OPT_TYPE_NULL: return 0;
    case GC_OPT_TYPE_STRING:
      if (!o->str)
        return EINVAL;
      *(const char **)value = o->str;
      return 0;
    case GC_OPT_TYPE_INT:
      if (o->str || o->num > INT32_MAX)
        return EINVAL;
      *(int32_t *)value = (int32_t)o->num;
      return 0;
    case GC_OPT_TYPE_UINT64:
      if (o->str)
        return EINVAL;
      *(uint64_t *)value = o->num;
      return 0;
    default: return EINVAL;
    }
  }
  return ENOENT;
}

static GCT_INT fake_add_message(GCT_INTPTR h, GCT_PTR data, GCT_SIZE len,
                                GCT_INTPTR cookie) {
  struct fake_conn *c = conn_by_handle(h);
  if (!c || !c->open || c->closing || (!data && len))
    return EINVAL;
  if (F.nsent == F.capsent) {
    F.capsent = F.capsent ? 2 * F.capsent : 256;
    F.sent = realloc(F.sent, F.capsent * sizeof *F.sent);
    assert_non_null(F.sent);
  }
  struct sent_msg *m = &F.sent[F.nsent++];
  m->handle = h;
  m->data = malloc(len + 1);
  assert_non_null(m->data);
  memcpy(m->data, data, len);
  m->data[len] = '\0';
  m->len = len;
  m->cookie = cookie;
  free(c->last);
  c->last = strdup(m->data);
  return 0;
}

static GCT_INT fake_close(GCT_INTPTR h, GCT_INT reason) {
  F.close_calls++;
  struct fake_conn *c = conn_by_handle(h);
  if (!c || !c->open || c->closing ||
      (reason != GC_CLOSE_REASON_NORMAL && reason != GC_CLOSE_REASON_DROP))
    return EINVAL;
  c->closing = 1;
  c->close_reason = reason;
  return 0;
}

static GCT_INT fake_set_timer(GCT_INTPTR h, GCT_INT ms) {
  struct fake_conn *c = conn_by_handle(h);
  if (!c || !c->open || c->closing)
    return EINVAL;
  c->timer_ms = ms;
  return 0;
}

static GCT_INT fake_set_limit(GCT_INTPTR h, GCT_INT level, GCT_INT id,
                              GCT_COUNTER_VALUE value) {
  struct fake_conn *c = conn_by_handle(h);
  if (!c || !c->open || c->closing || level < 1 || level > 2)
    return EINVAL;
  F.limit_handle = h;
  F.limit_level = level;
  F.limit_stat = id;
  F.limit_value = value;
  return 0;
}

static void fake_log(GCT_INT level, GCT_CPTR msg) {
  if (getenv("TEST_VERBOSE"))
    fprintf(stderr, "[log %d] %s\n", (int)level, (const char *)msg);
  if (F.nlog < MAX_LOG) {
    F.log_level[F.nlog] = level;
    F.log[F.nlog++] = strdup(msg);
  }
}

static GCT_INTPTR fake_timer_start(GCT_INT app_id, GCT_INT ms, GCT_INT repeat,
                                   GCTimerCallback cb, GCT_INTPTR user) {
  if (F.ntimers == MAX_TIMERS || !cb || ms < 0)
    return 0;
  F.timers[F.ntimers] =
      (struct fake_timer){app_id, ms, repeat, cb, user, 1};
  return ++F.ntimers;
}

static GCT_INT fake_timer_stop(GCT_INTPTR id) {
  if (id < 1 || id > F.ntimers || !F.timers[id - 1].active)
    return EINVAL;
  F.timers[id - 1].active = 0;
  F.timer_stops++;
  return 0;
}

static int64_t fake_now(void) { return F.now; }

/* Counters: the app's "lua.<name>.memory" is the one the tests read. */
static GCT_INT fake_counter_create(GCT_CSTR name) {
  if (F.ncounters == (int)(sizeof F.counters / sizeof *F.counters))
    return -1;
  if (strstr(name, ".memory"))
    F.mem_counter = F.ncounters;
  return F.ncounters++;
}

static GCT_INT fake_counter_set(GCT_INT id, GCT_COUNTER_VALUE value) {
  if (id < 0 || id >= F.ncounters)
    return EINVAL;
  F.counters[id] = value;
  return 0;
}

/* The host shares one payload; the fake records one message per taker. */
static GCT_INT fake_broadcast(const GCT_INTPTR *handles, GCT_SIZE count,
                              GCT_PTR data, GCT_SIZE len, GCT_INTPTR cookie,
                              GCT_SIZE *queued) {
  GCT_SIZE n = 0;
  for (GCT_SIZE i = 0; i < count; i++)
    if (fake_add_message(handles[i], data, len, cookie) == 0)
      n++;
  if (queued)
    *queued = n;
  F.broadcasts++;
  return 0;
}

static struct core_api fake_api = {
    .getOpt = fake_get_opt,
    .connectionAddMessage = fake_add_message,
    .connectionClose = fake_close,
    .connectionSetTimer = fake_set_timer,
    .connectionSetLimit = fake_set_limit,
    .logMessage = fake_log,
    .timerStart = fake_timer_start,
    .timerStop = fake_timer_stop,
    .nowMs = fake_now,
    .connectionsBroadcast = fake_broadcast,
    .counterCreate = fake_counter_create,
    .counterSet = fake_counter_set,
};

/* Fires timer 'id' as the host would (a one-shot dies). */
static void fire_timer(int id) {
  assert_true(id >= 1 && id <= F.ntimers);
  struct fake_timer *t = &F.timers[id - 1];
  if (!t->active)
    return;
  if (t->repeat_ms <= 0)
    t->active = 0;
  t->cb(t->user);
}

static const char *log_find(const char *needle) {
  for (int i = 0; i < F.nlog; i++)
    if (strstr(F.log[i], needle))
      return F.log[i];
  return NULL;
}

static int log_count(const char *needle) {
  int n = 0;
  for (int i = 0; i < F.nlog; i++)
    n += strstr(F.log[i], needle) != NULL;
  return n;
}

static void log_dump(void) {
  for (int i = 0; i < F.nlog; i++)
    fprintf(stderr, "  log[%d] %d: %s\n", i, F.log_level[i], F.log[i]);
}

static void fake_reset(void) {
  for (int i = 0; i < F.nlog; i++)
    free(F.log[i]);
  for (size_t i = 0; i < F.nsent; i++)
    free(F.sent[i].data);
  free(F.sent);
  for (int i = 0; i < F.nconns; i++)
    free(F.conns[i].last);
  memset(&F, 0, sizeof F);
}

static void clear_sent(void) {
  for (size_t i = 0; i < F.nsent; i++)
    free(F.sent[i].data);
  F.nsent = 0;
}

/* ---- the adapter under test ------------------------------------------------ */

static struct {
  void *dl;
  gc_adapter_initialize_fn adapter_initialize;
  gc_adapter_finalize_fn adapter_finalize;
  gc_application_initialize_fn application_initialize;
  gc_application_event_fn application_start, application_stop,
      application_shutdown;
  gc_on_connect_fn on_connect;
  gc_on_disconnect_fn on_disconnect;
  gc_on_message_fn on_message;
  gc_on_message_sent_fn on_message_sent;
  gc_on_timer_fn on_timer;
  gc_on_issue_fn on_issue;
} A;

#define RESOLVE(sym)                                                           \
  do {                                                                         \
    *(void **)&A.sym = dlsym(A.dl, #sym);                                      \
    assert_non_null(A.sym);                                                    \
  } while (0)

static void load_adapter(void) {
  A.dl = dlopen(LIB_PATH, RTLD_NOW | RTLD_LOCAL);
  if (!A.dl)
    fail_msg("cannot load %s: %s", LIB_PATH, dlerror());
  RESOLVE(adapter_initialize);
  RESOLVE(adapter_finalize);
  RESOLVE(application_initialize);
  RESOLVE(application_start);
  RESOLVE(application_stop);
  RESOLVE(application_shutdown);
  RESOLVE(on_connect);
  RESOLVE(on_disconnect);
  RESOLVE(on_message);
  RESOLVE(on_message_sent);
  RESOLVE(on_timer);
  RESOLVE(on_issue);
  const GCT_INT *ver = dlsym(A.dl, "gc_adapter_api_version");
  assert_non_null(ver);
  assert_int_equal(*ver >> 16, GC_SERVER_API_VERSION_MAJOR);
  assert_int_equal(A.adapter_initialize(0, &fake_api, ""), 0);
}

static void unload_adapter(void) {
  if (!A.dl)
    return;
  A.adapter_finalize(0);
  dlclose(A.dl);
  memset(&A, 0, sizeof A);
}

static const struct opt harness_opts[] = {
    {"lua.instruction_budget", NULL, 2000000},
    {"adapters.len", NULL, 1},
    {"adapters[0].apps.len", NULL, 3},
    {"adapters[0].apps[0].name", "other", 0},
    {"adapters[0].apps[0].lua.instruction_budget", NULL, 500000},
    {"adapters[0].apps[1].name", "t", 0},
    {"adapters[0].apps[1].lua.memory_limit", NULL, 8u << 20},
    {"adapters[0].apps[1].lua.path", "/nonexistent/extra", 0},
    {"adapters[0].apps[2].name", "tl", 0},
    {"adapters[0].apps[2].lua.instruction_budget", NULL, 0},
    {"adapters[0].apps[2].lua.time_limit_ms", NULL, 40},
    {"game.name", "arena", 0},
    {"game.max", NULL, 42},
    {"game.big", NULL, 5000000000u},
    {NULL, NULL, 0}};

static int setup(void **state) {
  (void)state;
  fake_reset();
  F.opts = harness_opts;
  load_adapter();
  return 0;
}

static int setup_harness(void **state) {
  setup(state);
  int rc = A.application_initialize(0, "t", "lua", LUA_DIR "harness.lua");
  if (rc != 0)
    log_dump();
  assert_int_equal(rc, 0);
  A.application_start(0);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  unload_adapter();
  fake_reset();
  return 0;
}

static GCT_INTPTR next_handle = 1000;

/* A client connects to app 0; returns conn_user (GC_DROP_CONNECTION if
 * refused). */
static GCT_INTPTR connect_to(const char *target, struct fake_conn **out) {
  assert_true(F.nconns < MAX_CONNS);
  struct fake_conn *c = &F.conns[F.nconns++];
  memset(c, 0, sizeof *c);
  c->handle = next_handle += 7;
  c->open = 1;
  c->user = A.on_connect(0, c->handle, GC_PROTOCOL_WS, "10.0.0.1", 5555,
                         "127.0.0.1", 7681, target);
  if (c->user == GC_DROP_CONNECTION)
    c->open = 0;
  if (out)
    *out = c;
  return c->user;
}

static void disconnect(struct fake_conn *c) {
  c->open = 0;
  A.on_disconnect(c->user);
}

/* Runs 'code' in on_message of 'c'; the answer it sent, or NULL. */
static const char *eval(struct fake_conn *c, const char *code) {
  free(c->last);
  c->last = NULL;
  A.on_message(c->user, (GCT_PTR)code, strlen(code));
  return c->last;
}

#define assert_eval(c, code, expect)                                           \
  do {                                                                         \
    const char *got_ = eval((c), (code));                                      \
    const char *want_ = (expect);                                              \
    if (want_ ? !got_ || strcmp(got_, want_) != 0 : got_ != NULL) {           \
      log_dump();                                                              \
      fail_msg("eval(%s): expected \"%s\", got \"%s\"", (code),              \
               want_ ? want_ : "(nothing)", got_ ? got_ : "(nothing)");        \
    }                                                                          \
  } while (0)

#define assert_logged(needle)                                                  \
  do {                                                                         \
    if (!log_find(needle)) {                                                   \
      log_dump();                                                              \
      fail_msg("no log line contains \"%s\"", (needle));                       \
    }                                                                          \
  } while (0)

/* ---- tests ---------------------------------------------------------------- */

static void test_load_and_connect(void **state) {
  (void)state;
  struct fake_conn *c;
  GCT_INTPTR u = connect_to("/chat?room=7&name=a%20b+c&flag", &c);
  assert_true(u != GC_DROP_CONNECTION && u != 0);
  assert_non_null(c->last);
  assert_string_equal(c->last, "hello 1 /chat /chat?room=7&name=a%20b+c&flag "
                               "ws 10.0.0.1 5555 127.0.0.1 7681 0 "
                               "flag=&name=a b c&room=7");
  assert_eval(c, "return state.events[1], state.events[2]", "init start");
  assert_eval(c, "return conn.id, conn.path, conn.remote_ip, conn.remote_port",
              "1 /chat 10.0.0.1 5555");
  assert_eval(c, "return mod.answer", "42");
  assert_eval(c, "return tostring(conn)", "gc.conn 1 (10.0.0.1:5555)");
  assert_eval(c, "return gc.app.name, gc.app.id, gc.CLOSE_NORMAL, "
                 "gc.CLOSE_DROP, gc.DROP_CONNECTION, gc.USER, "
                 "gc.STATUS_YELLOW, gc.REACTION_IGNORE",
              "t 0 0 1 -1 1024 1 2");
}

static void test_send_bytes_and_cookies(void **state) {
  (void)state;
  struct fake_conn *c;
  connect_to("/", &c);
  clear_sent();
  eval(c, "conn:send('a\\0b') conn:send(12)");
  assert_int_equal(F.nsent, 2);
  assert_int_equal(F.sent[0].handle, c->handle);
  assert_int_equal(F.sent[0].len, 3);
  assert_memory_equal(F.sent[0].data, "a\0b", 3);
  assert_int_equal(F.sent[0].cookie, 0);
  assert_string_equal(F.sent[1].data, "12");
  clear_sent();
  assert_eval(c, "return conn:send('xy', {tag = 'T'})", "true");
  assert_int_equal(F.nsent, 2); /* 'xy' and the answer "true" */
  GCT_INTPTR cookie = F.sent[0].cookie;
  assert_true(cookie != 0);
  A.on_message_sent(c->user, cookie, 2, 0);
  A.on_message_sent(c->user, 0, 4, ECANCELED);
  assert_eval(c, "return state.sent[1], state.sent[2]", "1 T 2 0 1 nil 4 125");
  /* The cookie was released: the same C cookie gives nothing back now. */
  A.on_message_sent(c->user, cookie, 2, 0);
  assert_eval(c, "return state.sent[3]", "1 nil 2 0");
}

static void test_close_reasons(void **state) {
  (void)state;
  struct fake_conn *ctl, *a, *b, *d;
  connect_to("/", &ctl);
  connect_to("/", &a);
  connect_to("/", &b);
  connect_to("/", &d);
  /* 'ctl' runs the code: a connection that is closing cannot answer. */
  assert_eval(ctl, "return state.by_id[2]:close(gc.CLOSE_DROP)", "true");
  assert_int_equal(a->close_reason, GC_CLOSE_REASON_DROP);
  assert_true(a->closing);
  /* Closing: send and close say "closed" (the host would say EINVAL). */
  assert_eval(ctl, "local a = state.by_id[2] local ok, err = a:send('x') "
                   "return a:is_open(), ok, err",
              "false nil closed");
  assert_eval(ctl, "return state.by_id[2]:close()", "nil closed");
  /* And when the host says EINVAL first, the binding agrees. */
  b->closing = 1;
  assert_eval(ctl, "local ok, err = state.by_id[3]:send('x') return ok, err",
              "nil closed");
  b->closing = 0;
  assert_eval(ctl, "return state.by_id[3]:close()", "nil closed");
  assert_eval(ctl, "return pcall(function() state.by_id[4]:close('bogus') "
                   "end)",
              "false eval:1: bad argument #1 to 'close' (invalid option "
              "'bogus')");
  assert_eval(ctl, "return pcall(function() state.by_id[4]:close(7) end)",
              "false eval:1: bad argument #1 to 'close' (invalid close "
              "reason)");
  assert_eval(ctl, "return state.by_id[4]:close('drop')", "true");
  assert_int_equal(d->close_reason, GC_CLOSE_REASON_DROP);
  assert_eval(ctl, "return state.by_id[1]:close()", NULL);
  assert_int_equal(ctl->close_reason, GC_CLOSE_REASON_NORMAL);
  assert_true(ctl->closing);
}

static void test_refusal(void **state) {
  (void)state;
  int calls = F.close_calls;
  assert_int_equal(connect_to("/?refuse=false", NULL), GC_DROP_CONNECTION);
  assert_int_equal(connect_to("/?refuse=drop", NULL), GC_DROP_CONNECTION);
  assert_int_equal(connect_to("/x?refuse=error", NULL), GC_DROP_CONNECTION);
  assert_logged("lua app t: error in on_connect: ");
  assert_logged("harness.lua:21: no entry for /x");
  assert_logged("stack traceback:");
  assert_int_equal(F.close_calls, calls); /* refusing is not closing */
  struct fake_conn *c;
  assert_true(connect_to("/?quiet=1", &c) != GC_DROP_CONNECTION);
  /* The refused ones are not listed as connections. */
  assert_eval(c, "local n = 0 for _ in gc.connections() do n = n + 1 end "
                 "return n",
              "1");
}

static void test_errors_are_isolated(void **state) {
  (void)state;
  struct fake_conn *a, *b;
  connect_to("/", &a);
  connect_to("/", &b);
  assert_null(eval(a, "error('boom')"));
  assert_logged("lua app t: error in on_message: eval:1: boom | stack traceback:");
  const char *line = log_find("eval:1: boom");
  assert_null(strchr(line, '\n')); /* one line */
  assert_false(a->closing);
  assert_eval(a, "return 'still here'", "still here");
  assert_eval(b, "return 'b too'", "b too");
  assert_null(eval(a, "local t = nil; return t.x"));
  assert_logged("attempt to index a nil value");
  assert_null(eval(a, "error(setmetatable({}, {__tostring = function() "
                      "return 'custom' end}))"));
  assert_logged("lua app t: error in on_message: custom");
  assert_null(eval(a, "error({})"));
  assert_logged("(error object is a table value)");
  /* Runaway recursion: "stack overflow", or the 8 MiB memory limit first. */
  assert_null(eval(a, "local function f() return 1 + f() end return f()"));
  assert_true(log_find("stack overflow") || log_find("not enough memory"));
  assert_eval(a, "return 'after overflow'", "after overflow");
}

/* Method calls inside a function, so Lua can name the function (a
 * direct 'pcall(conn.send, ...)' reports "bad argument #2 to '?'"). */
static void test_bad_arguments(void **state) {
  (void)state;
  struct fake_conn *c;
  connect_to("/", &c);
  assert_null(eval(c, "conn:send(nil)"));
  assert_logged("lua app t: error in on_message: eval:1: bad argument #1 to 'send' "
                "(string expected, got nil)");
  assert_eval(c, "return select(2, pcall(function() conn:send({}) end))",
              "eval:1: bad argument #1 to 'send' (string expected, got "
              "table)");
  assert_eval(c, "local t = {send = conn.send} "
                 "return select(2, pcall(function() return t:send('x') end))",
              "eval:1: calling 'send' on bad self (gc.conn expected, got "
              "table)");
  assert_eval(c, "return select(2, pcall(function() "
                 "conn:set_timer('x') end))",
              "eval:1: bad argument #1 to 'set_timer' (number expected, got "
              "string)");
  assert_eval(c, "return select(2, pcall(function() "
                 "gc.set_interval(0, print) end))",
              "eval:1: bad argument #1 to 'set_interval' (interval must be > "
              "0)");
  assert_eval(c, "return select(2, pcall(function() gc.set_timeout(5) end))",
              "eval:1: bad argument #2 to 'set_timeout' (function expected, "
              "got no value)");
  assert_eval(c, "return select(2, pcall(function() gc.log(3, 'x') end))",
              "eval:1: bad argument #1 to 'log' (invalid log level)");
  assert_eval(c, "return select(2, pcall(function() conn.id = 5 end))",
              "eval:1: field 'id' of gc.conn is read-only");
  assert_eval(c, "return select(2, pcall(function() conn.send = 5 end))",
              "eval:1: cannot replace method 'send' of gc.conn");
  /* The connection is unharmed. */
  assert_eval(c, "return conn:send('ok')", "true");
}

static void test_identity_and_fields(void **state) {
  (void)state;
  struct fake_conn *a, *b;
  connect_to("/", &a);
  connect_to("/", &b);
  assert_eval(a, "conn.name = 'bob' return 1", "1");
  assert_eval(a, "return conn.name, rawequal(state.first, conn), "
                 "state.byconn[conn], state.first == state.last",
              "bob true 1 false");
  assert_eval(b, "return conn.name, rawequal(state.last, conn), "
                 "state.byconn[conn]",
              "nil true 2");
  /* Fields of any key live on the handle, each connection its own; the
   * metatable stays hidden; only a gc.conn passes as one. */
  assert_eval(a, "conn[1] = 'one' conn.score = 3 "
                 "return conn[1], conn.score, conn.nope, getmetatable(conn)",
              "one 3 nil gc.conn");
  assert_eval(b, "return conn[1], conn.score, conn.send == state.first.send",
              "nil nil true");
  assert_eval(a, "return select(2, pcall(function() "
                 "conn.send(io.stdout, 'x') end))",
              "eval:1: bad argument #1 to 'send' (gc.conn expected, got "
              "FILE*)");
  assert_eval(a, "return select(2, pcall(function() string.rep(conn, 2) "
                 "end))",
              "eval:1: bad argument #1 to 'rep' (string expected, got "
              "gc.conn)");
  assert_eval(a, "return select(2, pcall(function() conn.path = 'x' end))",
              "eval:1: field 'path' of gc.conn is read-only");
  /* Each connection has its own metatable, yet its entries are no fields,
   * and another userdata of ours is still no gc.conn. */
  assert_eval(a, "return conn.__index, conn.__newindex, conn.__name, "
                 "conn.__close, conn.__metatable, conn.is_open(conn)",
              "nil nil nil nil nil true");
  assert_eval(a, "local t = gc.set_timeout(1000, print) "
                 "local ok, e = pcall(function() conn.send(t, 'x') end) "
                 "t:cancel() return e",
              "eval:1: bad argument #1 to 'send' (gc.conn expected, got "
              "gc.timer)");
  assert_eval(a, "return gc.broadcast('all', {conn, state.last})", "2");
  A.on_timer(a->user);
  assert_string_equal(a->last, "timer 1");
  assert_eval(a, "return conn:set_timer(250)", "true");
  assert_int_equal(a->timer_ms, 250);
  assert_eval(a, "return conn:set_limit(gc.STATUS_YELLOW, "
                 "'bytes_per_second', 1000)",
              "true");
  assert_int_equal(F.limit_handle, a->handle);
  assert_int_equal(F.limit_level, GC_STAT_STATUS_YELLOW);
  assert_int_equal(F.limit_stat, GC_CONN_STAT_BYTES_PER_SECOND);
  assert_int_equal(F.limit_value, 1000);
  assert_int_equal(A.on_issue(a->user, 1, 99), GC_STAT_REACTION_DEFAULT);
  eval(a, "state.reaction = gc.REACTION_IGNORE");
  assert_int_equal(A.on_issue(a->user, 2, 7), GC_STAT_REACTION_IGNORE);
  eval(a, "state.reaction = 'close'");
  assert_int_equal(A.on_issue(a->user, 2, 7), GC_STAT_REACTION_CLOSE);
  assert_eval(a, "return state.events[3], state.events[4]",
              "issue 1 1 99 issue 1 2 7");
}

static void test_after_disconnect(void **state) {
  (void)state;
  struct fake_conn *a, *b;
  connect_to("/", &a);
  connect_to("/", &b);
  disconnect(a);
  assert_eval(b, "return state.last_disconnect", "disconnect 1 false");
  assert_eval(b, "local o = state.old local ok, err = o:send('x') "
                 "return ok, err, o:is_open(), tostring(o), o.id",
              "nil closed false gc.conn 1 (closed) 1");
  assert_eval(b, "return state.old:close()", "nil closed");
  assert_eval(b, "return state.old:set_timer(10)", "nil closed");
  assert_eval(b, "return state.old:close(gc.CLOSE_DROP)", "nil closed");
  assert_eval(b, "local n = 0 for c in gc.connections() do n = n + 1 end "
                 "return n",
              "1");
  /* The record is gone for the host: a late event is ignored, not a crash
   * (the userdata is still alive, held by state.old). */
  A.on_message(a->user, (GCT_PTR) "return 1", 8);
}

/* Runaway loops that must all be stopped with 'line' logged, with pcall
 * and coroutines around them: nothing after them may run. */
static void assert_runaways_stopped(struct fake_conn *c, const char *line,
                                    const char *stop) {
  static const char *const loops[] = {
      "while true do end",
      "pcall(function() while true do end end) conn:send('survived')",
      "for i = 1, 3 do pcall(function() while true do end end) end "
      "conn:send('survived')",
      "local co = coroutine.wrap(function() while true do end end) pcall(co) "
      "conn:send('survived')",
      "local co = coroutine.create(function() while true do end end) "
      "while true do coroutine.resume(co) end",
      "local inner = coroutine.wrap(function() while true do end end) "
      "local outer = coroutine.create(function() pcall(inner) "
      "coroutine.yield() end) while true do coroutine.resume(outer) end"};
  int before = log_count(stop);
  for (size_t i = 0; i < sizeof loops / sizeof *loops; i++)
    assert_null(eval(c, loops[i]));
  assert_logged(line);
  assert_int_equal(log_count(stop), before + (int)(sizeof loops / sizeof *loops));
}

/* Starts app 'name' (id 0) on harness.lua and connects one client. */
static struct fake_conn *start_app(const char *name) {
  assert_int_equal(
      A.application_initialize(0, name, "lua", LUA_DIR "harness.lua"), 0);
  struct fake_conn *c;
  connect_to("/", &c);
  return c;
}

static void test_instruction_budget(void **state) {
  (void)state;
  struct fake_conn *c;
  connect_to("/", &c);
  assert_runaways_stopped(c, "lua app t: error in on_message: eval:1: "
                             "instruction budget exceeded (2000000 instructions)",
                          "instruction budget exceeded");
  /* The state works normally afterwards, with a fresh budget per call. */
  assert_eval(c, "local n = 0 for i = 1, 100000 do n = n + i end return n",
              "5000050000");
  assert_eval(c, "local n = 0 for i = 1, 100000 do n = n + i end return n",
              "5000050000");
}

/* The default limit: CPU time, enforced by the watchdog, with no hook while
 * the script runs (so the VM does not trap on every instruction). */
static void test_time_limit(void **state) {
  (void)state;
  struct fake_conn *c = start_app("tl");
  assert_eval(c, "return debug.gethook()", "nil");
  /* pcall cannot swallow the stop, nor can a coroutine, at any depth. */
  assert_runaways_stopped(c, "lua app tl: error in on_message: eval:1: time "
                             "limit exceeded (40 ms of CPU)",
                          "time limit exceeded");
  /* The state is normal afterwards: no hook left on it or on the
   * coroutine that was stopped, a fresh limit per call. */
  assert_eval(c, "return debug.gethook()", "nil");
  assert_eval(c, "local n = 0 for i = 1, 100000 do n = n + i end return n",
              "5000050000");
  /* A script sets no hook (see test_time_limit_escapes). */
  assert_eval(c, "return pcall(debug.sethook) == false, debug.gethook()",
              "true nil");
  /* The wrapped coroutine functions behave as Lua's own. */
  assert_eval(c, "local g = coroutine.wrap(function(a) local b = "
                 "coroutine.yield(a + 1) coroutine.yield(b * 2) end) "
                 "return g(1), g(5), coroutine.isyieldable()",
              "2 10 false");
  assert_eval(c, "local co = coroutine.create(function(x) "
                 "coroutine.yield(x) return 'done' end) "
                 "local a, b = coroutine.resume(co, 7) "
                 "local c2, d = coroutine.resume(co) "
                 "local e, f = coroutine.resume(co) "
                 "return a, b, c2, d, e, f, coroutine.status(co)",
              "true 7 true done false cannot resume dead coroutine dead");
  assert_eval(c, "return pcall(coroutine.wrap(function() error('x') end))",
              "false eval:1: x");
  assert_eval(c, "return select(2, pcall(coroutine.resume, 42))",
              "bad argument #1 to 'coroutine.resume' (thread expected, got "
              "number)");
  assert_eval(c, "local co = coroutine.create(function() local t <close> = "
                 "setmetatable({}, {__close = function() state.closed = 1 "
                 "end}) coroutine.yield() end) coroutine.resume(co) "
                 "return coroutine.close(co), state.closed",
              "true 1");
  /* The same answers as Lua's own (lua5.4 prints these). */
  assert_eval(c, "local g = coroutine.wrap(function() end) g() "
                 "return pcall(g)",
              "false cannot resume dead coroutine");
  assert_eval(c, "local co co = coroutine.create(function() "
                 "return coroutine.resume(co) end) return coroutine.resume(co)",
              "true false cannot resume non-suspended coroutine");
  assert_eval(c, "local g = coroutine.wrap(function() local t <close> = "
                 "setmetatable({}, {__close = function() state.c = 'closed' "
                 "end}) error({}) end) local ok, e = pcall(g) "
                 "return ok, type(e), state.c",
              "false table closed");
  assert_eval(c, "return coroutine.resume(coroutine.create(function(...) "
                 "return select('#', ...), ... end), 1, nil, 3)",
              "true 3 1 nil 3");
  assert_eval(c, "return pcall(coroutine.close, (coroutine.running()))",
              "false cannot close a running coroutine");
  assert_eval(c, "return select(2, pcall(coroutine.wrap))",
              "bad argument #1 to 'coroutine.wrap' (function expected, got "
              "no value)");
  assert_int_equal(log_count("time limit exceeded"), 6);
  disconnect(c);
  A.application_shutdown(0);
}

/* Each app gives its timer and slot back when it closes (there are 256
 * slots): 300 apps in turn all get a watchdog. */
static void test_time_limit_slots(void **state) {
  (void)state;
  for (int i = 0; i < 300; i++) {
    assert_int_equal(
        A.application_initialize(0, "tl", "lua", LUA_DIR "harness.lua"), 0);
    A.application_shutdown(0);
  }
  assert_null(log_find("no CPU-time watchdog"));
}

static void foreign_handler(int sig) { (void)sig; }

/* When the embedding program holds the watchdog's signal, gcs says so and
 * counts instructions instead: a limit is never silently lost. */
static void test_time_limit_fallback(void **state) {
  (void)state;
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = foreign_handler;
  int sig = SIGRTMIN + 3;
  assert_int_equal(sigaction(sig, &sa, &old), 0);
  struct fake_conn *c = start_app("tl");
  assert_logged("lua app tl: no CPU-time watchdog (Device or resource busy): "
                "counting 100000000 instructions per call instead");
  assert_eval(c, "return (debug.gethook())", "external hook");
  disconnect(c);
  A.application_shutdown(0);
  assert_int_equal(sigaction(sig, &old, NULL), 0);
}

/* An instruction budget in the config puts the count hook back. */
static void test_budget_hooks(void **state) {
  (void)state;
  struct fake_conn *c;
  connect_to("/", &c);
  assert_eval(c, "return (debug.gethook())", "external hook");
}

static void test_memory_limit(void **state) {
  (void)state;
  struct fake_conn *c;
  connect_to("/", &c);
  assert_eval(c, "local used, limit = gc.memory() return used > 0, limit",
              "true 8388608");
  assert_null(eval(c, "local t = {} for i = 1, 1e8 do t[i] = ('x'):rep(64) .. "
                      "i end"));
  assert_logged("lua app t: error in on_message: not enough memory");
  assert_eval(c, "collectgarbage() return 'ok'", "ok");
  /* Memory runs out while the payload itself is pushed, before any
   * protected call: logged, and the state goes on. */
  assert_null(eval(c, "state.hog = {} for i = 1, 1e8 do state.hog[i] = "
                      "('x'):rep(64) .. i end"));
  int before = log_count("not enough memory");
  size_t big = 2u << 20;
  char *msg = malloc(big);
  assert_non_null(msg);
  memset(msg, ' ', big);
  memcpy(msg, "return 1", 8);
  A.on_message(c->user, (GCT_PTR)msg, big);
  free(msg);
  assert_int_equal(log_count("not enough memory"), before + 1);
  assert_logged("lua app t: error in on_message: not enough memory (");
  assert_eval(c, "state.hog = nil collectgarbage() return 'ok'", "ok");
}

static void test_gc_module(void **state) {
  (void)state;
  struct fake_conn *c;
  connect_to("/", &c);
  assert_eval(c, "return gc.getopt('game.name'), gc.getopt('game.max'), "
                 "gc.getopt('game.big'), gc.getopt('nope')",
              "arena 42 5000000000 nil no option 'nope'");
  F.now = 123456;
  assert_eval(c, "return gc.now()", "123456");
  eval(c, "gc.log(gc.WARN, 'x=%d %s', 5, 'y') gc.log('info', '100%')");
  assert_logged("lua app t: x=5 y");
  assert_logged("lua app t: 100%");
  assert_int_equal(F.log_level[F.nlog - 1], GCL_INFO);
  /* The script's folder first, then "lua.path", then the default path. */
  assert_eval(c, "local p, dir = package.path, gc.app.script:match('^(.*/)') "
                 "local extra = p:find('/nonexistent/extra/?.lua', 1, true) "
                 "return p:sub(1, #dir + 5) == dir .. '?.lua', extra ~= nil, "
                 "p:find('/usr/share/lua/5.4/?.lua', 1, true) > extra",
              "true true true");
  /* Debian's installed modules load: a pure-Lua one and a C one. */
  assert_eval(c, "if not package.searchpath('dkjson', package.path) then "
                 "return 'skip' end return require('dkjson').encode({1})",
              "[1]");
  const char *r = eval(c, "if not package.searchpath('lfs', package.cpath) "
                          "then return 'skip' end "
                          "return type(require('lfs').currentdir())");
  assert_non_null(r);
  if (strcmp(r, "skip") == 0)
    print_message("lfs (Debian lua-filesystem) not installed: C module "
                  "check skipped\n");
  else
    assert_string_equal(r, "string");
  assert_eval(c, "return select(2, pcall(require, 'gc.nope'))~= nil", "true");
}

static void test_broadcast_and_connections(void **state) {
  (void)state;
  struct fake_conn *a, *b, *d;
  connect_to("/", &a);
  connect_to("/", &b);
  connect_to("/", &d);
  eval(b, "conn:close()");
  clear_sent();
  F.broadcasts = 0;
  assert_eval(a, "return gc.broadcast('hey')", "2");
  assert_int_equal(F.broadcasts, 1); /* one hand-over for every receiver */
  assert_int_equal(F.nsent, 3);
  assert_string_equal(F.sent[0].data, "hey");
  assert_int_equal(F.sent[0].handle, a->handle);
  assert_int_equal(F.sent[1].handle, d->handle);
  clear_sent();
  assert_eval(a, "return gc.broadcast('odd', function(c) return c.id ~= 1 "
                 "end)",
              "1");
  assert_int_equal(F.sent[0].handle, d->handle);
  assert_eval(a, "local ids = {} for c in gc.connections() do "
                 "ids[#ids + 1] = c.id end return table.concat(ids, ',')",
              "1,3");
}

static void test_app_timers(void **state) {
  (void)state;
  struct fake_conn *c;
  connect_to("/", &c);
  assert_eval(c, "state.t = gc.set_interval(100, function(t) state.n = "
                 "state.n + 1 end) return tostring(state.t)",
              "gc.timer 1 (every 100 ms)");
  assert_int_equal(F.ntimers, 1);
  assert_int_equal(F.timers[0].ms, 100);
  assert_int_equal(F.timers[0].repeat_ms, 100);
  assert_int_equal(F.timers[0].app_id, 0);
  fire_timer(1);
  fire_timer(1);
  fire_timer(1);
  assert_eval(c, "return state.n, state.t:is_active()", "3 true");
  assert_eval(c, "return state.t:cancel(), state.t:cancel()", "true false");
  assert_int_equal(F.timer_stops, 1);
  /* A late fire of a cancelled timer does nothing. */
  F.timers[0].active = 1;
  fire_timer(1);
  assert_eval(c, "return state.n", "3");
  /* A timeout runs once; an error in a timer is logged, others go on. */
  eval(c, "state.o = gc.set_timeout(50, function(t) state.once = "
          "t:is_active() end) "
          "gc.set_timeout(10, function() error('tick failed') end)");
  assert_int_equal(F.ntimers, 3);
  assert_int_equal(F.timers[1].repeat_ms, 0);
  fire_timer(2);
  fire_timer(3);
  assert_logged("lua app t: error in timer: eval:1: tick failed");
  assert_eval(c, "return state.once, state.o:is_active(), state.o:cancel()",
              "false false false");
  /* Shutdown disarms what is still armed. */
  eval(c, "state.keep = gc.set_interval(1000, function() end)");
  int stops = F.timer_stops;
  disconnect(c);
  A.application_stop(0);
  A.application_shutdown(0);
  assert_int_equal(F.timer_stops, stops + 1);
  fire_timer(4); /* the app is gone: ignored */
}

static void test_budget_in_timer(void **state) {
  (void)state;
  struct fake_conn *c;
  connect_to("/", &c);
  eval(c, "gc.set_timeout(1, function() while true do end end)");
  fire_timer(1);
  assert_logged("lua app t: error in timer: eval:1: instruction budget exceeded");
  assert_eval(c, "return 'alive'", "alive");
}

static void test_lifecycle_and_load_errors(void **state) {
  (void)state;
  assert_int_not_equal(
      A.application_initialize(1, "syn", "lua", LUA_DIR "bad_syntax.lua"), 0);
  assert_logged("lua app syn: cannot load script: ");
  assert_logged("bad_syntax.lua:3: ')' expected");
  assert_int_not_equal(
      A.application_initialize(2, "nt", "lua", LUA_DIR "no_table.lua"), 0);
  assert_logged("must return a table of handlers (it returned number)");
  assert_int_not_equal(
      A.application_initialize(3, "loop", "lua", LUA_DIR "load_loop.lua"), 0);
  assert_logged("lua app loop: error in load: ");
  assert_logged("load_loop.lua:2: instruction budget exceeded");
  assert_int_not_equal(
      A.application_initialize(4, "if", "lua", LUA_DIR "init_false.lua"), 0);
  assert_logged("lua app if: application_initialize returned false");
  assert_int_equal(
      A.application_initialize(5, "gone", "lua", LUA_DIR "missing.lua"),
      ENOENT);
  assert_logged("lua app gone: cannot open");
  /* A failed app takes no connection. */
  assert_int_equal(A.on_connect(1, 1, GC_PROTOCOL_WS, "1.2.3.4", 1,
                                "127.0.0.1", 2, "/"),
                   GC_DROP_CONNECTION);
  /* The good one goes through its whole life. */
  assert_int_equal(
      A.application_initialize(0, "t", "lua", LUA_DIR "harness.lua"), 0);
  assert_int_equal(A.application_initialize(0, "t", "lua",
                                            LUA_DIR "harness.lua"),
                   EEXIST);
  A.application_start(0);
  struct fake_conn *c;
  connect_to("/", &c);
  A.application_stop(0);
  assert_eval(c, "return table.concat(state.events, ',')", "init,start,stop");
  disconnect(c);
  A.application_shutdown(0);
  assert_int_equal(connect_to("/", NULL), GC_DROP_CONNECTION);
}

/* An application's own "lua" object wins over the root one. */
static void test_per_app_config(void **state) {
  (void)state;
  struct fake_conn *c = start_app("other");
  assert_null(eval(c, "while true do end"));
  assert_logged("lua app other: error in on_message: eval:1: instruction "
                "budget exceeded (500000 instructions)");
  assert_eval(c, "return select(2, gc.memory())", "0"); /* no limit */
}

/* Handle lifetime: 10,000 connect/disconnect cycles (each with a message,
 * a cookie and a timer) leave no Lua memory behind after a full GC. */
static void test_no_growth(void **state) {
  (void)state;
  struct fake_conn *probe;
  connect_to("/?quiet=1", &probe);
  eval(probe, "state.quiet_sent = true");
  const char *measure = "collectgarbage() collectgarbage() "
                        "return math.floor(collectgarbage('count') * 1024)";
  /* Warm up: first-use allocations (registry slots, strings, tables). */
  for (int round = 0; round < 2; round++) {
    const char *r = eval(probe, measure);
    assert_non_null(r);
    long before = atol(r);
    for (int i = 0; i < (round ? 10000 : 200); i++) {
      struct fake_conn c = {0};
      c.handle = next_handle += 3;
      c.open = 1;
      F.conns[MAX_CONNS - 1] = c;
      struct fake_conn *fc = &F.conns[MAX_CONNS - 1];
      if (F.nconns < MAX_CONNS)
        F.nconns = MAX_CONNS;
      fc->user = A.on_connect(0, fc->handle, GC_PROTOCOL_WS, "10.0.0.1", 5555,
                              "127.0.0.1", 7681, "/room?name=x");
      assert_true(fc->user != GC_DROP_CONNECTION);
      const char *code = "conn.tag = {} conn:send('m', {}) conn:set_timer(5)";
      A.on_message(fc->user, (GCT_PTR)code, strlen(code));
      A.on_message_sent(fc->user, F.sent[F.nsent - 1].cookie, 1, 0);
      if (i % 2)
        eval(fc, "conn:send('unacked', 'cookie') return nil");
      disconnect(fc);
      free(fc->last);
      fc->last = NULL;
      clear_sent();
    }
    r = eval(probe, measure);
    assert_non_null(r);
    long after = atol(r);
    if (round == 1) {
      print_message("Lua memory over 10000 connections: %ld -> %ld bytes\n",
                    before, after);
      if (after - before > 4096) {
        log_dump();
        fail_msg("Lua memory grew by %ld bytes over 10000 connections "
                 "(%ld -> %ld)",
                 after - before, before, after);
      }
    }
  }
  assert_eval(probe, "local n = 0 for c in gc.connections() do n = n + 1 end "
                     "return n",
              "1");
}

/* Script code that spins for a second of CPU, then leaves 'flag' set: it
 * ran where no stop could reach it (hooks off) if the flag is set. */
#define SPIN(flag)                                                             \
  "local t0 = os.clock() while os.clock() - t0 < 1 do end state." flag        \
  " = true "

/* Once the stop has fired, no code of the script runs with Lua's hooks off
 * (where no stop can reach it): not xpcall's message handler, not the
 * to-be-closed variables of a coroutine the stop killed. Nor can a script
 * set a hook (it would run with hooks off, and could remove the stop) or a
 * __gc metamethod (finalizers run with hooks off). */
static void test_time_limit_escapes(void **state) {
  (void)state;
  struct fake_conn *c = start_app("tl");
  /* Lua calls xpcall's handler from the stop hook, with hooks off. */
  assert_null(eval(c, "xpcall(function() while true do end end, "
                      "function(e) " SPIN("h1") "return e end)"));
  assert_null(eval(c, "xpcall(function() while true do end end, "
                      "function(e) for i = 1, 1e6 do debug.sethook() end "
                      SPIN("h2") "return e end)"));
  /* A handler stopped in its own loop is not called again for the stop. */
  assert_null(eval(c, "state.n = 0 xpcall(error, function(e) "
                      "state.n = state.n + 1 " SPIN("h3") "return e end)"));
  /* A coroutine the stop killed is left with hooks off: its to-be-closed
   * variables are not run, neither by wrap nor by a later close. */
  assert_null(eval(c, "local g = coroutine.wrap(function() local x <close> = "
                      "setmetatable({}, {__close = function() " SPIN("c1")
                      "end}) while true do end end) g()"));
  assert_null(eval(c, "state.co = coroutine.create(function() local x "
                      "<close> = setmetatable({}, {__close = function() "
                      SPIN("c2") "end}) while true do end end) "
                      "coroutine.resume(state.co)"));
  assert_eval(c, "local ok, e = coroutine.close(state.co) "
                 "return ok, e, state.c2",
              "false cannot close a coroutine stopped by the time limit nil");
  assert_eval(c, "return state.h1, state.h2, state.n, state.h3, state.c1",
              "nil nil 1 nil nil");
  assert_int_equal(log_count("time limit exceeded"), 5);
  /* Outside a stop, xpcall and its handler are Lua's own. */
  assert_eval(c, "return xpcall(error, function(e) return 'h:' .. e end, 'x')",
              "false h:x");
  assert_eval(c, "return xpcall(function(a, b) return a + b end, print, 1, 2)",
              "true 3");
  assert_eval(c, "local ok, e = xpcall(error, debug.traceback, 'tb') "
                 "return ok, e:match('^tb\\nstack traceback:\\n\\t%[C%]: in "
                 "function \\'error\\'') ~= nil",
              "false true");
  assert_eval(c, "return select(2, pcall(xpcall, print))",
              "bad argument #2 to 'xpcall' (function expected, got no value)");
  assert_eval(c, "local co = coroutine.wrap(function() return xpcall("
                 "function() coroutine.yield(1) error('y') end, "
                 "function(e) return 'h:' .. e end) end) "
                 "return co(), co()",
              "1 false h:eval:1: y");
  /* No hook from scripts (it would run with hooks off), no finalizer. */
  assert_eval(c, "return pcall(debug.sethook, print, 'l')",
              "false debug.sethook is not available to gcs scripts (the time "
              "limit needs the hook)");
  assert_eval(c, "return debug.gethook()", "nil");
  assert_eval(c, "return pcall(setmetatable, {}, {__gc = function() end})",
              "false bad argument #2 to 'setmetatable' (__gc metamethods are "
              "not available to gcs scripts)");
  assert_eval(c, "return pcall(debug.setmetatable, {}, {__gc = print})",
              "false bad argument #2 to 'debug.setmetatable' (__gc metamethods are "
              "not available to gcs scripts)");
  assert_eval(c, "local t = setmetatable({}, {__index = {a = 1}}) "
                 "return t.a, getmetatable(debug.setmetatable(t, nil))",
              "1 nil");
  assert_eval(c, "return select(2, pcall(setmetatable, setmetatable({}, "
                 "{__metatable = 1}), {}))",
              "cannot change a protected metatable");
  disconnect(c);
  A.application_shutdown(0);
}

/* Finalizers run with hooks off, so a script must not reach a metatable
 * that C code made with __gc and rewrite its __gc: not the FILE* one of
 * liolib (getmetatable, debug.getmetatable, the registry), not those of
 * our userdata (the "gc.conn" template is copied into each new
 * connection's, "gc.timer"), not the "_UBOX*" one of lauxlib's buffers (a
 * C temporary, seen through debug.getlocal on a C function's frame). Nor
 * may a script swap what a guard holds: xpcall's wrapped handler on the C
 * stack (debug.setlocal), Lua's own coroutine.close (debug.getupvalue),
 * the upvalues of C functions. Each escape runs in a fresh app: on code
 * without the guard, its script spins a second with hooks off and sets
 * the flag. */
static void test_finalizer_escapes(void **state) {
  (void)state;
#define LOOP "function() " SPIN("esc") "end"
  static const char *const escapes[][2] = {
      {"FILE* by getmetatable",
       "getmetatable(io.stdout).__gc = " LOOP " io.tmpfile() "
       "collectgarbage()"},
      {"FILE* by debug.getmetatable",
       "debug.getmetatable(io.stdout).__gc = " LOOP " io.tmpfile() "
       "collectgarbage()"},
      {"FILE* by the registry",
       "debug.getregistry()['FILE*'].__gc = " LOOP " io.tmpfile() "
       "collectgarbage()"},
      {"gc.timer by debug.getmetatable",
       "local t = gc.set_timeout(1e6, print) t:cancel() "
       "debug.getmetatable(t).__gc = " LOOP " t = nil "
       "gc.set_timeout(1e6, print):cancel() collectgarbage()"},
      {"gc.conn by the registry",
       "debug.getregistry()['gc.conn'].__gc = " LOOP},
      {"_UBOX* by debug.getlocal",
       "string.gsub(('x'):rep(3000) .. 'y', '.', function(ch) "
       "if ch ~= 'y' then return end "
       "for i = 1, 50 do local n, v = debug.getlocal(2, i) "
       "if type(v) == 'userdata' then getmetatable(v).__gc = " LOOP
       " end end end) "
       "local s = ('z'):rep(5000) collectgarbage()"},
      {"xpcall's handler by debug.setlocal",
       "xpcall(function() debug.setlocal(2, 2, function(e) " SPIN("esc")
       "return e end) while true do end end, print)"},
      {"coroutine.close by debug.getupvalue",
       "state.co = coroutine.create(function() local x <close> = "
       "setmetatable({}, {__close = " LOOP "}) while true do end end) "
       "coroutine.resume(state.co)"},
  };
#undef LOOP
  for (size_t i = 0; i < sizeof escapes / sizeof *escapes; i++) {
    struct fake_conn *c = start_app("tl");
    eval(c, escapes[i][1]);
    if (i == 4) { /* a new connection gets the template's entries */
      struct fake_conn *d;
      connect_to("/", &d);
      disconnect(d);
      eval(c, "state.old = nil collectgarbage()");
    } else if (i == 7) { /* the stopped coroutine, closed by Lua's own */
      eval(c, "local _, close = debug.getupvalue(coroutine.close, 1) "
              "close(state.co)");
    }
    const char *got = eval(c, "return state.esc");
    if (!got || strcmp(got, "nil") != 0)
      fail_msg("escape \"%s\": script code ran with hooks off", escapes[i][0]);
    disconnect(c);
    A.application_shutdown(0);
  }
  /* What scripts are told. */
  struct fake_conn *c = start_app("tl");
  assert_eval(c, "return getmetatable(io.stdout), "
                 "getmetatable(gc.set_timeout(1e6, print)), "
                 "getmetatable(conn)",
              "FILE* gc.timer gc.conn");
  assert_eval(c, "return pcall(debug.getregistry)",
              "false debug.getregistry is not available to gcs scripts "
              "(finalizers run with hooks off)");
  /* debug.getmetatable honours __metatable, as getmetatable. */
  assert_eval(c, "local mt = {} return debug.getmetatable(io.stdout), "
                 "debug.getmetatable(conn), debug.getmetatable(setmetatable("
                 "{}, mt)) == mt, debug.getmetatable(1), "
                 "debug.getmetatable('').__index == string",
              "FILE* gc.conn true nil true");
  assert_eval(c, "return pcall(debug.setupvalue, gc.now, 1, 1)",
              "false bad argument #1 to 'debug.setupvalue' (Lua function "
              "expected: gcs scripts cannot set the upvalues of C functions)");
  assert_eval(c, "return pcall(debug.setuservalue, conn, 1, 1)",
              "false debug.setuservalue is not available to gcs scripts (C "
              "code relies on the values it set)");
  /* C frames have no locals for scripts; Lua frames work as in Lua. */
  assert_eval(c, "local a, b xpcall(function() a = debug.getlocal(2, 1) "
                 "b = debug.setlocal(2, 1, 5) end, print) return a, b",
              "nil nil");
  assert_eval(c, "local a, b = 1, 2 local n, v = debug.getlocal(1, 2) "
                 "debug.setlocal(1, 1, 7) return n, v, a",
              "b 2 7");
  assert_eval(c, "local co = coroutine.create(function(x) "
                 "coroutine.yield() end) coroutine.resume(co, 4) "
                 "return debug.getlocal(co, 1, 1)",
              "x 4");
  assert_eval(c, "local f = function(p, q) end return debug.getlocal(f, 2)",
              "q");
  assert_eval(c, "local u = 1 local f = function() return u end "
                 "debug.setupvalue(f, 1, 9) return f()",
              "9");
  assert_eval(c, "return select(2, pcall(debug.getlocal, 50, 1))",
              "bad argument #1 to 'debug.getlocal' (level out of range)");
  disconnect(c);
  A.application_shutdown(0);
}

/* Loops reached through C functions (string.gsub, table.sort, a __close
 * after the stop) are stopped like any other. */
static void test_time_limit_callbacks(void **state) {
  (void)state;
  struct fake_conn *c = start_app("tl");
  static const char *const loops[] = {
      "string.gsub(('x'):rep(1e6), '.', function() "
      "pcall(function() while true do end end) end) conn:send('survived')",
      "local t = {} for i = 1, 1000 do t[i] = -i end table.sort(t, "
      "function(a, b) pcall(function() while true do end end) return a < b "
      "end) conn:send('survived')",
      "do local x <close> = setmetatable({}, {__close = function() while "
      "true do end end}) while true do end end",
      "pcall(function() local x <close> = setmetatable({}, {__close = "
      "function() while true do end end}) while true do end end) "
      "conn:send('survived')"};
  for (size_t i = 0; i < sizeof loops / sizeof *loops; i++)
    assert_null(eval(c, loops[i]));
  assert_int_equal(log_count("time limit exceeded"),
                   (int)(sizeof loops / sizeof *loops));
  disconnect(c);
  A.application_shutdown(0);
}

/* Scripts load text only: a binary chunk (a corrupted one can crash Lua)
 * is a normal error, from load, loadfile, dofile and require alike. */
static void test_text_chunks_only(void **state) {
  (void)state;
  struct fake_conn *c;
  connect_to("/", &c);
  const char *bin = "attempt to load a binary chunk (mode is 't')";
  assert_eval(c, "return load(string.dump(function() return 1 end))",
              "nil attempt to load a binary chunk (mode is 't')");
  assert_eval(c, "return load(string.dump(function() return 1 end), 'b', "
                 "'b')",
              "nil attempt to load a binary chunk (mode is 't')");
  assert_eval(c, "local parts = {string.dump(function() end)} "
                 "return load(function() return table.remove(parts) end, "
                 "'=r')",
              "nil attempt to load a binary chunk (mode is 't')");
  /* Text still loads, with its chunk name and environment. */
  assert_eval(c, "return load('return x', '=n', 't', {x = 5})()", "5");
  assert_eval(c, "return load(coroutine.wrap(function() "
                 "coroutine.yield('return ') coroutine.yield('7') end))()",
              "7");
  assert_eval(c, "return select(2, load('x ='))",
              "[string \"x =\"]:1: unexpected symbol near <eof>");
  /* Files: a module, a loadfile and a dofile of bytecode. */
  char dir[] = "/tmp/gcs_bin_XXXXXX";
  assert_non_null(mkdtemp(dir));
  char code[1024];
  snprintf(code, sizeof code,
           "local f = assert(io.open('%s/binmod.lua', 'wb')) "
           "f:write(string.dump(function() return {x = 1} end)) f:close() "
           "f = assert(io.open('%s/txtmod.lua', 'w')) "
           "f:write('return {y = 2}') f:close() "
           "package.path = '%s/?.lua;' .. package.path return 1",
           dir, dir, dir);
  assert_eval(c, code, "1");
  snprintf(code, sizeof code,
           "local ok, e = pcall(require, 'binmod') "
           "return ok, e:find(\"%s\", 1, true) ~= nil, require('txtmod').y",
           bin);
  assert_eval(c, code, "false true 2");
  snprintf(code, sizeof code,
           "local f, e = loadfile('%s/binmod.lua') local f2 = loadfile("
           "'%s/txtmod.lua', 'bt') return f, e:find(\"%s\", 1, true) ~= nil, "
           "f2().y",
           dir, dir, bin);
  assert_eval(c, code, "nil true 2");
  snprintf(code, sizeof code,
           "local ok, e = pcall(dofile, '%s/binmod.lua') return ok, "
           "e:find(\"%s\", 1, true) ~= nil, dofile('%s/txtmod.lua').y",
           dir, bin, dir);
  assert_eval(c, code, "false true 2");
  snprintf(code, sizeof code, "%s/binmod.lua", dir);
  unlink(code);
  snprintf(code, sizeof code, "%s/txtmod.lua", dir);
  unlink(code);
  rmdir(dir);
}

/* Writes 'code' to a new file under /tmp; its path in 'path' (unlink it). */
static void write_script(char *path, size_t len, const char *code) {
  snprintf(path, len, "/tmp/gcs_script_XXXXXX.lua");
  int fd = mkstemps(path, 4);
  assert_true(fd >= 0);
  size_t n = strlen(code);
  assert_int_equal(write(fd, code, n), (ssize_t)n);
  close(fd);
}

/* A handler under a misspelt name would never be called: each key of the
 * handler table that looks like one but is not gets a WARN line with the
 * closest name. Plain fields and helpers of the script do not. */
static void test_unknown_handlers(void **state) {
  (void)state;
  char path[64];
  write_script(path, sizeof path,
               "local app = { players = {}, count = 0, state = {} }\n"
               "function app.on_connect() end\n"
               "function app.on_message_sent() end\n"
               "function app.on_mesage() end\n"
               "function app.application_strat() end\n"
               "function app.onDisconnect() end\n"
               "function app.on_tick() end\n"
               "function app.broadcast() end\n"
               "function app.helper() end\n"
               "function app.timer() end\n"
               "app[1] = function() end\n"
               "return app\n");
  int rc = A.application_initialize(0, "typo", "lua", path);
  if (rc != 0)
    log_dump();
  assert_int_equal(rc, 0);
  char line[256];
  static const char *const warned[][2] = {
      {"on_mesage", "on_message"},
      {"application_strat", "application_start"},
      {"onDisconnect", "on_disconnect"},
      {"on_tick", "on_timer"}};
  for (size_t i = 0; i < sizeof warned / sizeof *warned; i++) {
    snprintf(line, sizeof line,
             "lua app typo: %s: unknown handler \"%s\" (did you mean \"%s\"?)",
             path, warned[i][0], warned[i][1]);
    assert_logged(line);
    for (int j = 0; j < F.nlog; j++)
      if (strcmp(F.log[j], line) == 0)
        assert_int_equal(F.log_level[j], GCL_WARN);
  }
  if (log_count("unknown handler") != 4) {
    log_dump();
    fail_msg("expected 4 unknown-handler lines");
  }
  A.application_shutdown(0);
  /* The harness script (fields, helpers, every real handler): no line. */
  assert_int_equal(
      A.application_initialize(0, "t", "lua", LUA_DIR "harness.lua"), 0);
  assert_int_equal(log_count("unknown handler"), 4);
  unlink(path);
}

/* Scripts cannot end or escape the process: os.exit raises always, and
 * io.popen, os.execute and package.loadlib raise unless "lua.unsafe".
 * Installed C modules still load (require's C searcher does not go
 * through package.loadlib). */
static void test_unsafe_functions(void **state) {
  (void)state;
  struct fake_conn *c;
  connect_to("/", &c);
  /* Before the guard this ended the test binary with status 7. */
  assert_eval(c, "return pcall(os.exit, 7)",
              "false os.exit is not available to gcs scripts");
  assert_eval(c, "return pcall(os.exit)",
              "false os.exit is not available to gcs scripts");
  assert_eval(c, "return pcall(io.popen, 'echo hi')",
              "false io.popen is off in gcs scripts (\"lua\": { \"unsafe\": "
              "true } in the config turns it on)");
  assert_eval(c, "return pcall(os.execute)",
              "false os.execute is off in gcs scripts (\"lua\": { \"unsafe\": "
              "true } in the config turns it on)");
  assert_eval(c, "return pcall(package.loadlib, 'libc.so.6', '*')",
              "false package.loadlib is off in gcs scripts (\"lua\": { "
              "\"unsafe\": true } in the config turns it on)");
  assert_eval(c, "return select('#', os.getenv('PATH')), io.open ~= nil",
              "1 true");
  assert_eval(c, "if not package.searchpath('lfs', package.cpath) then "
                 "return 'function' end "
                 "return type(require('lfs').currentdir)",
              "function");
}

static const struct opt unsafe_opts[] = {
    {"lua.unsafe", NULL, 1},
    {"adapters.len", NULL, 1},
    {"adapters[0].apps.len", NULL, 2},
    {"adapters[0].apps[0].name", "locked", 0},
    {"adapters[0].apps[0].lua.unsafe", NULL, 0},
    {"adapters[0].apps[1].name", "open", 0},
    {NULL, NULL, 0}};

/* "lua.unsafe" at the root, and the application's own value winning. */
static void test_unsafe_setting(void **state) {
  (void)state;
  F.opts = unsafe_opts;
  struct fake_conn *c = start_app("open");
  assert_eval(c, "local f = io.popen('echo hi') local s = f:read('l') "
                 "f:close() return s",
              "hi");
  assert_eval(c, "return (os.execute('true'))", "true");
  assert_eval(c, "return type(package.loadlib)", "function");
  assert_eval(c, "return pcall(os.exit, 7)",
              "false os.exit is not available to gcs scripts");
  /* The guards of the time limit stay: unsafe is not about them. */
  assert_eval(c, "return (pcall(debug.getregistry)), (pcall(debug.sethook)), "
                 "debug.getmetatable(io.stdout), getmetatable(io.stdout)",
              "false false FILE* FILE*");
  disconnect(c);
  A.application_shutdown(0);
  c = start_app("locked");
  assert_eval(c, "return (pcall(io.popen, 'echo hi'))", "false");
}

/* After many connections have closed and the app is quiet, a full
 * collection gives their garbage back (the collector would otherwise wait
 * until the memory doubled): a timer of the adapter, postponed while
 * events come. The state's memory is read from its counter, which runs no
 * Lua (an event would postpone the collection). */
static void test_quiet_collect(void **state) {
  (void)state;
  enum { N = 3000 };
  struct fake_conn *probe;
  connect_to("/?quiet=1", &probe);
  eval(probe, "state.quiet_sent = true");
  GCT_INTPTR *users = calloc(N, sizeof *users);
  assert_non_null(users);
  const char *code = "conn.tag = {('y'):rep(200) .. conn.id}";
  for (int i = 0; i < N; i++) {
    users[i] = A.on_connect(0, next_handle += 3, GC_PROTOCOL_WS, "10.0.0.1",
                            5555, "127.0.0.1", 7681, "/?quiet=1");
    assert_true(users[i] != GC_DROP_CONNECTION);
    A.on_message(users[i], (GCT_PTR)code, strlen(code));
  }
  int timers = F.ntimers;
  for (int i = 0; i < N; i++)
    A.on_disconnect(users[i]);
  free(users);
  /* One timer of the adapter's own, armed by the drop. */
  assert_int_equal(F.ntimers, timers + 1);
  struct fake_timer *t = &F.timers[F.ntimers - 1];
  assert_true(t->active && t->repeat_ms == 0 && t->ms >= 1000 &&
              t->ms <= 5000);
  GCT_COUNTER_VALUE busy = F.counters[F.mem_counter];
  /* Disconnects came after it was armed: it waits once more. */
  fire_timer(F.ntimers);
  assert_int_equal(F.ntimers, timers + 2);
  assert_true(F.counters[F.mem_counter] >= busy - (64 << 10));
  /* Quiet now: collected. */
  fire_timer(F.ntimers);
  assert_int_equal(F.ntimers, timers + 2);
  GCT_COUNTER_VALUE quiet = F.counters[F.mem_counter];
  print_message("Lua memory after %d connections closed: %lld -> %lld bytes "
                "at the quiet collection\n",
                N, (long long)busy, (long long)quiet);
  assert_true(quiet < busy - (busy >> 2));
  /* The state is intact. */
  assert_eval(probe, "local n = 0 for c in gc.connections() do n = n + 1 end "
                     "return n",
              "1");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_load_and_connect, setup_harness,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_send_bytes_and_cookies,
                                      setup_harness, teardown),
      cmocka_unit_test_setup_teardown(test_close_reasons, setup_harness,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_refusal, setup_harness, teardown),
      cmocka_unit_test_setup_teardown(test_errors_are_isolated, setup_harness,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_bad_arguments, setup_harness,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_identity_and_fields, setup_harness,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_after_disconnect, setup_harness,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_time_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_time_limit_slots, setup, teardown),
      cmocka_unit_test_setup_teardown(test_time_limit_fallback, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_budget_hooks, setup_harness,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_instruction_budget, setup_harness,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_memory_limit, setup_harness,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_gc_module, setup_harness, teardown),
      cmocka_unit_test_setup_teardown(test_broadcast_and_connections,
                                      setup_harness, teardown),
      cmocka_unit_test_setup_teardown(test_app_timers, setup_harness,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_budget_in_timer, setup_harness,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_lifecycle_and_load_errors, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_per_app_config, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_growth, setup_harness, teardown),
      cmocka_unit_test_setup_teardown(test_time_limit_escapes, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_finalizer_escapes, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_time_limit_callbacks, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_text_chunks_only, setup_harness,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_unknown_handlers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unsafe_functions, setup_harness,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_unsafe_setting, setup, teardown),
      cmocka_unit_test_setup_teardown(test_quiet_collect, setup_harness,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
