/* gc_lua.h - internals of the Lua adapter (bindings/), shared by its files.
 *
 * The Lua adapter is just another adapter: it sees the host only through
 * the 'struct core_api' copied in adapter_initialize, and includes nothing
 * but <game-carrier/server.h>, Lua and libc. Everything one Lua state
 * needs hangs off one 'struct gc_lua_app' (its lua_State, its open
 * connections, its limits); an application has one such state, or one
 * per worker when its connections are spread over the workers (group.c).
 * A state is only ever entered from one thread at a time: its worker's,
 * or the main thread's during the lifecycle events, when no loop runs.
 *
 * Who owns what:
 *  - 'struct gc_lua_app' is malloc'ed by gc_lua_app_new and freed by
 *    gc_lua_app_free, which first closes the state; group.c owns them.
 *  - 'struct gc_lua_conn' lives inside a full userdata (Lua memory). The
 *    app anchors it with a registry ref from on_connect until
 *    on_disconnect returns; during that time its address is the
 *    'conn_user' the host gives back, and the userdata never moves. After
 *    on_disconnect the C side forgets it and Lua's GC frees it whenever the
 *    script drops its last reference.
 *  - application timers are userdata too, anchored in the app's timer
 *    table while armed; the host knows them only by an integer (the
 *    state's key + serial), so a late or stale timer can never reach freed
 *    memory. So do gc.publish's deliveries (pubsub.c). */
#ifndef GC_LUA_H
#define GC_LUA_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <game-carrier/server.h>
#include <lua.h>

#define GC_LUA_CONN_MT "gc.conn"
#define GC_LUA_TIMER_MT "gc.timer"

/* Defaults of the per-application limits (overridden by the config). */
#define GC_LUA_DEFAULT_BUDGET 0          /* VM instructions; 0 = not counted */
#define GC_LUA_DEFAULT_TIME_LIMIT_MS 1000 /* CPU ms per handler call */
/* Counted instead when no watchdog timer can be had (bindings/watchdog.c). */
#define GC_LUA_FALLBACK_BUDGET 100000000
#define GC_LUA_DEFAULT_MEMORY 0         /* bytes; 0 = no limit */
#define GC_LUA_MEM_COUNTER_STEP (64u << 10) /* bytes */

#define GC_LUA_DEFAULT_MAX_PENDING 1000 /* events queued behind a wait */

/* Settings of one application, read from the config ("lua.*" at the
 * root, then the application's own "lua" object, which wins). 0 means
 * unlimited. 'path' (borrowed, may be NULL) is added to package.path after
 * the script's folder: a template with '?' as is, else a folder. */
struct gc_lua_limits {
  int64_t instruction_budget;
  uint64_t time_limit_ms;
  uint64_t memory_limit;
  const char *path;
  int unsafe; /* "lua.unsafe": io.popen, os.execute, package.loadlib on */
  int message_text; /* the app entry's "message_type" is "text" */
  uint64_t max_pending_events; /* a waiting connection's queue; 0: none */
};

struct gc_lua_conn;

struct gc_lua_wd_thread; /* a thread's CPU-time watchdog (watchdog.c) */

/* An app's part in the watchdog of the thread it runs on (watchdog.c).
 * 'fired' is shared with the signal handler, which runs on that thread. */
struct gc_lua_watch {
  int on;                        /* the time limit is kept by a watchdog */
  uint64_t limit_ns, tick_ns;    /* the limit, the tick it asks for */
  struct gc_lua_wd_thread *cur;  /* the thread's, during an outermost entry */
  struct gc_lua_app *outer;      /* the entry of another state this one is in */
  lua_State *outer_running;
  atomic_int fired;              /* the current entry passed the limit */
};

struct gc_lua_link; /* link.c */

struct gc_lua_app {
  const struct core_api *api; /* the adapter's copy; outlives the app */
  GCT_INT app_id;
  GCT_INT worker;       /* the worker whose thread runs this state */
  GCT_INT worker_count; /* of the host */
  int log_worker;       /* one state of several: log lines name the worker */
  char *name;   /* application name, for log lines */
  char *script; /* path of the script as configured */
  char *extra_path; /* "lua.path" of the config, or NULL */
  lua_State *L; /* NULL once closed */
  int closing;  /* never enter the state again */
  int unsafe;   /* "lua.unsafe" (sandbox.c) */
  int message_text; /* "message_type": "text" (gc.broadcast's default) */
  int handlers_ref; /* registry ref of the table the script returned */
  int sent_name_ref; /* registry ref of the string "on_message_sent" */
  int msg_name_ref;  /* registry ref of the string "on_message" */
  /* gc_lua_pcall_message's recovery point while it pushes unprotected. */
  void *push_jmp;
  /* gc_lua_may_handle_sent's answer, valid until Lua runs again (only a
   * script can change its handler table). */
  unsigned char sent_known, sent_may;
  int timers_ref;   /* registry ref of {serial -> gc.timer} of armed timers */
  int subs_ref;     /* registry ref of {channel -> {gc.subscription...}} */
  lua_Integer next_sub_id;
  lua_Integer next_conn_id;
  uint32_t bcast_serial; /* gc.broadcast calls, to list each conn once */
  GCT_INTPTR next_timer_serial;
  /* The open connections, oldest first (for gc.connections, broadcast). */
  struct gc_lua_conn *conn_head, *conn_tail;
  size_t conn_count;
  /* Instruction budget (see limits.c). */
  int64_t budget;  /* per outermost entry; 0 = unlimited */
  int64_t used;    /* instructions counted in the current entry */
  int hook_count;  /* instructions between two hook calls */
  int expired;     /* the current entry ran out: the hook raises on every line */
  int depth;       /* nesting of gc_lua_pcall */
  uint64_t time_limit_ms;     /* CPU per outermost entry; 0 = unlimited */
  struct gc_lua_watch wd;    /* the time limit */
  unsigned entries;          /* outermost entries so far (activity) */
  /* Memory (see the allocator in limits.c). */
  size_t mem_used, mem_limit, mem_warn_at;
  /* Counter "lua.<app>.memory" (bytes of the app's states, each adding
   * its share), or -1; updated when this state's use moved by
   * GC_LUA_MEM_COUNTER_STEP since its last report ('mem_reported'). */
  GCT_INT mem_counter;
  size_t mem_reported;
  /* debug.traceback's C function: an xpcall handler that needs no guard. */
  lua_CFunction traceback;
  /* Lua's own functions behind the guards (watchdog.c), kept here and not
   * as upvalues, where debug.getupvalue would hand them to scripts. */
  lua_CFunction co_close, db_getlocal, db_setlocal, db_setupvalue;
  /* The quiet collection (app.c): the most connections open since the
   * last one, the host timer waiting for quiet (0: none), the activity
   * seen when it was armed and how often it was postponed. */
  size_t conn_peak;
  GCT_INTPTR quiet_timer;
  unsigned quiet_seq, quiet_waits;
  size_t quiet_mem;
  /* Handlers as coroutines (coro.c). 'co_idle' is the coroutine the next
   * handler runs in, anchored by registry slot 'co_slot_ref', which it
   * shares with the one running while 'co_slot_busy'; more idle ones wait
   * in the table 'co_pool_ref' ('co_pool_n' of them). */
  lua_State *co_idle;
  int co_slot_ref, co_slot_busy, co_pool_ref, co_pool_n;
  const struct gc_lua_run *run; /* what the handler running now is for */
  lua_State *run_co;      /* its coroutine (NULL between handlers) */
  int wait_made;          /* set by a waiting function just before it yields */
  lua_State *enter_co;    /* the hot path: the entry runs in this coroutine */
  /* coroutine.resume/wrap in progress, innermost first (watchdog.c): a
   * script's coroutine may wait when every resumer up to the handler's
   * may yield; the wait then suspends them all (see gc_lua_wait_rehome). */
  struct gc_lua_chain *chain;
  GCT_INTPTR last_wait_serial;
  int waits_ref;          /* registry ref of {serial -> gc.wait} */
  GCT_INTPTR next_wait_serial;
  size_t waiting;         /* handlers suspended now */
  size_t io_waiting;      /* of which on Redis or HTTP (host:settle) */
  size_t max_pending;     /* lua.max_pending_events */
  struct gc_lua_link *link_head; /* gc.connect's links still anchored */
  /* Pieces of a lua_warning message being assembled. */
  char warn_buf[256];
  size_t warn_len;
};

/* Ordering (evq.c): the events of one object (a connection, a link)
 * that came while one of its handlers waits ('busy'), oldest first; when
 * that handler ends, coro.c calls 'drain', which runs them in order. */
struct gc_lua_pend;
struct gc_lua_evq {
  unsigned char busy;
  struct gc_lua_pend *head, *tail;
  size_t len;
  void (*drain)(struct gc_lua_evq *q);
};

/* The C record inside a connection's userdata. */
struct gc_lua_conn {
  const void *type; /* &gc_lua_conn_type: what tells a gc.conn (conn.c) */
  uint32_t magic; /* GC_LUA_CONN_MAGIC while anchored, 0 after */
  unsigned char open;    /* between on_connect and on_disconnect */
  unsigned char closing; /* close() was accepted, or the host said EINVAL */
  uint32_t bcast_stamp;  /* gc.broadcast: listed in broadcast number N */
  GCT_INTPTR handle;
  struct gc_lua_app *app;
  struct gc_lua_conn *prev, *next; /* in app's list while open */
  lua_Integer id;
  lua_Integer next_cookie;
  int ref; /* registry ref of the userdata while open, else LUA_NOREF */
  int remote_port;
  /* Ordering (conn_events.c): its events while a handler of it waits;
   * the host said disconnect (on_disconnect is queued or running);
   * on_connect refused after a wait (its events are dropped, no
   * on_disconnect). */
  struct gc_lua_evq evq;
  unsigned char gone, refused;
};
#define GC_LUA_CONN_MAGIC 0x67634c43u

/* ---- app.c: the life of a state ----------------------------------------- */

/* A new application, not loaded yet; NULL when out of memory. 'api' is
 * borrowed for the life of the app. */
struct gc_lua_app *gc_lua_app_new(const struct core_api *api, GCT_INT app_id,
                                  const char *name, const char *script,
                                  const struct gc_lua_limits *lim);
/* Creates the state, loads and runs the script, then calls its
 * 'application_initialize' handler. 0, or an errno after logging why
 * (ENOENT no file, EINVAL syntax error or bad script, ENOMEM, ECANCELED the
 * script raised or application_initialize returned false). */
int gc_lua_app_load(struct gc_lua_app *app);
/* Calls a lifecycle handler ('event' = its name) that takes no argument. */
void gc_lua_app_event(struct gc_lua_app *app, const char *event);
/* Stops the app's timers and closes its state; events are ignored after. */
void gc_lua_app_close(struct gc_lua_app *app);
/* Closes (if needed) and frees. NULL is ignored. */
void gc_lua_app_free(struct gc_lua_app *app);
/* After a connection closed (app->conn_count already down): arms the
 * quiet collection when many have closed since the peak. */
void gc_lua_app_conn_closed(struct gc_lua_app *app);

/* ---- call.c: the one way into Lua, and the log --------------------------- */

/* The protected entry into an application's state: runs 'fn' (a C
 * function receiving 'arg' as a light userdata at index 1) under lua_pcall
 * with a traceback handler, within the time limit and the instruction
 * budget. On failure it logs
 * one line at GCL_ERR naming the app and 'event'. Returns the Lua status
 * (LUA_OK ...); -1 if the state is closed or closing. */
int gc_lua_pcall(struct gc_lua_app *app, const char *event, lua_CFunction fn,
                 void *arg);
/* gc_lua_pcall without the log line and the traceback: on failure the
 * first line of the error goes to 'err' (may be NULL). */
int gc_lua_pcall_quiet(struct gc_lua_app *app, lua_CFunction fn, void *arg,
                       char *err, size_t errlen);
/* on_message(conn, data) the short way, for the loop's calls: the pushes
 * that cannot fail go unprotected, and the payload's push (which can run
 * out of memory) has a recovery point through the panic function; then
 * the handler runs under lua_pcall as in gc_lua_pcall. 0 when done (or no
 * handler), -1 when the caller must use gc_lua_pcall instead (nested entry,
 * a metatable on the handler table...). */
int gc_lua_pcall_message(struct gc_lua_app *app, struct gc_lua_conn *c,
                         const void *data, size_t len);
/* Outside any protected call: 0 when the script surely has no
 * on_message_sent handler (so the event needs no Lua call), else 1. */
int gc_lua_may_handle_sent(struct gc_lua_app *app);
/* Inside a protected call: pushes the handler 'name' of the script and
 * returns 1, or pushes nothing and returns 0 if it has none. */
int gc_lua_push_handler(lua_State *L, struct gc_lua_app *app,
                        const char *name);
/* Logs "lua app <name>: <formatted message>" at 'level' (printf); "lua app
 * <name> (worker <w>): ..." for one state of several. */
void gc_lua_log(const struct gc_lua_app *app, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* A script error (a handler raised, the script does not load): logged at
 * GCL_ERR as gc_lua_log does, and handed to gc_lua_report_error too. Its
 * own path, because a log line at GCL_ERR may be the script's gc.log. */
void gc_lua_log_error(const struct gc_lua_app *app, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* lua_WarnFunction of every state ('ud' is the app): warnings become
 * GCL_WARN lines; control messages ("@on") are ignored. */
void gc_lua_warnf(void *ud, const char *msg, int tocont);
/* lua_atpanic of every state: out of memory outside a protected call
 * jumps back to gc_lua_pcall_message's recovery point, if armed. */
int gc_lua_on_panic(lua_State *L);

/* ---- limits.c: memory, instructions, time, and their settings ------------ */

/* Reads the limits of application 'name' through api->getOpt. */
void gc_lua_limits_read(const struct core_api *api, const char *name,
                        struct gc_lua_limits *lim);
/* The lua_Alloc of every state ('ud' is the app): counts, warns, refuses
 * growth past app->mem_limit. */
void *gc_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
/* Writes 'value' (bytes) to the app's memory counter, if it has one. */
void gc_lua_mem_publish(struct gc_lua_app *app, size_t value);
/* Sets the instruction budget per outermost entry (0: none). */
void gc_lua_set_budget(struct gc_lua_app *app, int64_t budget);
/* Begin and end an entry (nested ones count as the outermost one): the
 * budget's count and the watchdog's view of it. */
void gc_lua_budget_enter(struct gc_lua_app *app);
void gc_lua_budget_leave(struct gc_lua_app *app);
/* The app owning state 'L' (any thread of it). */
struct gc_lua_app *gc_lua_app_of(lua_State *L);
/* link.c: gc.connect and the "gc.link" metatable. */
int gc_lua_l_connect(lua_State *L);
void gc_lua_link_open(lua_State *L);
/* 1 inside an entry that passed one of its limits (stop mode). */
int gc_lua_stopped(const struct gc_lua_app *app);
/* The hook of both limits: counts instructions for the budget, and in
 * stop mode raises on every line until the entry has left the script. */
void gc_lua_budget_hook(lua_State *L, lua_Debug *ar);

/* ---- watchdog.c: the CPU-time limit -------------------------------------- */

/* Puts the app under its thread's watchdog for app->time_limit_ms, making
 * the calling thread's watchdog if it has none yet (the thread of the
 * app's later entries gets its own at the first of them). 0, or an errno:
 * the caller then counts instructions instead. */
int gc_lua_watchdog_start(struct gc_lua_app *app);
/* The app leaves the watchdog (before its state is closed). Idempotent. */
void gc_lua_watchdog_stop(struct gc_lua_app *app);
/* An outermost entry of the app begins and ends (limits.c); 'leave'
 * answers 1 if the limit was passed. Where the thread can have no
 * watchdog, 'enter' logs why and puts the app on an instruction budget. */
void gc_lua_watchdog_enter(struct gc_lua_app *app);
int gc_lua_watchdog_leave(struct gc_lua_app *app);
/* A handler's coroutine 'co' runs (coro.c), then 'L' again; a stop that
 * fired in 'co' is passed on to 'L'. */
void gc_lua_watchdog_into(struct gc_lua_app *app, lua_State *co);
void gc_lua_watchdog_back(struct gc_lua_app *app, lua_State *L);
/* Deletes the calling thread's watchdog, if it has one (adapter_finalize;
 * other threads' go when they end). None of its states may be in an entry. */
void gc_lua_watchdog_thread_end(void);
/* Wraps coroutine.resume, wrap and close so that the watchdog knows which
 * Lua thread runs (protected context, after the libraries are open). */
void gc_lua_watchdog_open(lua_State *L);
/* Keeps scripts out of the places where Lua runs them with hooks off, so
 * no stop could reach them: xpcall's handler after a stop, debug.sethook,
 * __gc metamethods, C-made metatables and what the guards hold (protected
 * context, after the libraries are open). */
void gc_lua_guards_open(lua_State *L, struct gc_lua_app *app);
/* Coroutine 'co' died of the stop: Lua left its hooks off. */
void gc_lua_thread_mark_stopped(lua_State *co);
int gc_lua_thread_stopped(lua_State *co);

/* ---- coro.c: handlers in coroutines, and the waits ------------------------ */

/* What a handler run is for: kept across its waits. */
enum { GC_LUA_RUN_PLAIN, GC_LUA_RUN_CONNECT };
struct gc_lua_run {
  struct gc_lua_evq *q; /* its object's events wait behind it; NULL: none */
  int kind;
  const char *event; /* for log lines */
};

/* Inside a protected call on app->L: runs the function under its 'nargs'
 * arguments on top of L in a pooled coroutine. They are popped; finished,
 * its results are on L and their number is returned; -1: it waits (run->q
 * is busy until it ends); -2: it raised (logged as an error in run->event). */
int gc_lua_co_call(lua_State *L, struct gc_lua_app *app, int nargs,
                   const struct gc_lua_run *run);
/* The hot path's twin (call.c, unprotected, at depth 1 of an entry): only
 * when gc_lua_co_ready(app), with the function and its 'nargs' arguments
 * already pushed on app->co_idle; the results are dropped. Allocates
 * nothing unless the handler raised. */
int gc_lua_co_ready(const struct gc_lua_app *app);
void gc_lua_co_call_hot(lua_State *L, struct gc_lua_app *app, int nargs,
                        const struct gc_lua_run *run);
/* The registry slots of coro.c in a new state (protected context), and
 * the waiting functions gc.sleep, gc.redis, gc.http, gc.json in the gc
 * table on top. */
void gc_lua_coro_open(lua_State *L, struct gc_lua_app *app);
void gc_lua_waits_module(lua_State *L, struct gc_lua_app *app);
/* A wait in progress: a "gc.wait" userdata (its user value the waiting
 * coroutine) in the state's table of waits while armed. */
struct gc_lua_wait {
  struct gc_lua_app *app;
  struct gc_lua_evq *q; /* the handler's gc_lua_run */
  int kind;
  int io;    /* Redis or HTTP: host:settle waits for it */
  int armed; /* between the yield and the answer */
  GCT_INTPTR serial, host_id;
  void (*stop)(struct gc_lua_wait *w); /* the host's side, at close */
  char event[48];
};
/* In a waiting function 'fname' on L: raises unless L is a handler's
 * coroutine that may yield; else registers a wait record (left on top of
 * L). 'io': a Redis or HTTP wait. */
struct gc_lua_wait *gc_lua_wait_begin(lua_State *L, struct gc_lua_app *app,
                                      const char *fname, int io);
/* The 'user' of the host's callback that answers it. */
GCT_INTPTR gc_lua_wait_user(const struct gc_lua_wait *w);
/* The host refused to start it: forgotten. */
void gc_lua_wait_cancel(lua_State *L, struct gc_lua_wait *w);
/* One coroutine.resume in progress: 'from' resumed 'to'. */
struct gc_lua_chain {
  lua_State *from, *to;
  struct gc_lua_chain *up;
};
/* A script's coroutine waited: its resumer 'L' (running) suspends too and
 * becomes the thread the answer resumes (then it resumes the coroutine
 * with the answer). */
void gc_lua_wait_rehome(lua_State *L, struct gc_lua_app *app);
/* The host took it: the handler yields (return this from the function). */
int gc_lua_wait_yield(lua_State *L, struct gc_lua_wait *w);
/* Pushes the values the waiting function returns (protected, on the
 * state's main thread); their number. */
typedef int (*gc_lua_wake_push)(lua_State *L, void *ud);
/* The host's answer to wait 'user': resumes its handler in an entry of
 * its own, with what 'push' (NULL: nothing) pushes; then the events of
 * its connection that queued meanwhile. Unknown or stale: nothing. */
void gc_lua_wake(GCT_INTPTR user, gc_lua_wake_push push, void *ud);
/* gc.redis, gc.http (wait.c) and gc.json (json.c) in the gc table on top. */
void gc_lua_redis_module(lua_State *L, struct gc_lua_app *app);
void gc_lua_http_module(lua_State *L, struct gc_lua_app *app);
void gc_lua_json_module(lua_State *L);
/* Cancels the host's side of every wait (before the state closes). */
void gc_lua_waits_stop_all(struct gc_lua_app *app);
/* Logs a handler's failure as gc_lua_pcall does (call.c). */
void gc_lua_log_failure(struct gc_lua_app *app, const char *event, int st,
                        const char *msg);

/* Ordering (evq.c): a queued event. DISCONNECT and ERROR end their
 * object's life: never refused for the bound. */
enum {
  GC_LUA_EV_MESSAGE,
  GC_LUA_EV_SENT,
  GC_LUA_EV_TIMER,
  GC_LUA_EV_DISCONNECT,
  GC_LUA_EV_ERROR
};
struct gc_lua_pend {
  struct gc_lua_pend *next;
  int kind;
  GCT_INTPTR cookie;
  GCT_INT status;
  size_t len;
  char data[];
};
/* Queues an event on 'q' (a copy of 'data'): 0; EAGAIN when 'max' (0:
 * no bound) are waiting already, unless it is a final event; ENOMEM. */
int gc_lua_evq_push(struct gc_lua_evq *q, size_t max, int kind,
                    const void *data, size_t len, GCT_INTPTR cookie,
                    GCT_INT status) __attribute__((warn_unused_result));
/* The oldest event (the caller frees it), or NULL. */
struct gc_lua_pend *gc_lua_evq_pop(struct gc_lua_evq *q);
/* Frees the events left (the object or the state is going). */
void gc_lua_evq_free(struct gc_lua_evq *q);
#define gc_lua_container_of(p, type, member)                                   \
  ((type *)(void *)((char *)(p) - offsetof(type, member)))

/* A handler of a connection ended after waiting (its evq's 'drain'): its
 * queued events run, in order, until one waits again (then it stays
 * busy) or none is left. */
void gc_lua_conn_drain(struct gc_lua_evq *q);
/* on_connect ended after waiting, its results on top of L (protected). */
void gc_lua_conn_connect_done(lua_State *L, struct gc_lua_conn *c, int nres);
/* Frees the queues of the app's connections (the state is closing). */
void gc_lua_conn_queues_free(struct gc_lua_app *app);
/* The same for its links, which are forgotten (link.c). */
void gc_lua_link_queues_free(struct gc_lua_app *app);
/* gc.testing's host:settle(): Redis and HTTP waits of every state. */
GC_ADAPTER_EXPORT size_t gc_lua_io_pending(void);

/* ---- reload.c: the script run again in its state ------------------------ */

/* Around the script's first load (protected context): what it requires
 * from package.path is remembered as its modules, reloaded with it. */
void gc_lua_modules_before(lua_State *L, struct gc_lua_app *app);
void gc_lua_modules_after(lua_State *L, struct gc_lua_app *app);
/* Runs the script ('script', or the app's own when NULL) again in the
 * state, on the state's thread between events: its modules reloaded, the
 * new handler table in place, then its on_reload(old_handlers). On failure
 * everything is put back, one line is logged and its reason written to
 * 'err' (may be NULL). 0, EBUSY (inside a handler, or closed), EINVAL,
 * ENOMEM. */
int gc_lua_app_reload(struct gc_lua_app *app, const char *script, char *err,
                      size_t errlen);

/* ---- handlers.c: the names of the handlers ------------------------------- */

/* Warns (GCL_WARN) for each string key of the handler table at 'idx' that
 * looks like a handler and is not one: "on_..." or "application_...", or a
 * few edits from a handler's name (protected context, raw accesses). */
void gc_lua_handlers_check(lua_State *L, struct gc_lua_app *app, int idx);
/* Levenshtein distance with ASCII case folded, for "did you mean"; both
 * lengths at most GC_LUA_EDIT_MAX. */
#define GC_LUA_EDIT_MAX 64
size_t gc_lua_edit_distance(const char *a, size_t la, const char *b, size_t lb);

/* ---- sandbox.c: what a script may not reach ------------------------------ */

/* os.exit raises; io.popen, os.execute and package.loadlib raise unless
 * app->unsafe (protected context, after the libraries are open). */
void gc_lua_sandbox_open(lua_State *L, const struct gc_lua_app *app);

/* ---- conn.c: connection userdata and connection events ------------------ */

/* Registers the "gc.conn" metatable in a new state (protected context). */
void gc_lua_conn_open(lua_State *L);
/* on_connect: the connection's record (its address is 'conn_user'), or NULL
 * when the script refused it, raised, or memory ran out. */
struct gc_lua_conn *gc_lua_conn_connect(struct gc_lua_app *app,
                                        GCT_INTPTR handle, GCT_INT pid,
                                        GCT_CSTR rip, GCT_INT rport,
                                        GCT_CSTR lip, GCT_INT lport,
                                        GCT_CSTR udata);
void gc_lua_conn_disconnect(struct gc_lua_conn *c);
void gc_lua_conn_message(struct gc_lua_conn *c, const void *data, size_t len);
void gc_lua_conn_message_sent(struct gc_lua_conn *c, GCT_INTPTR cookie,
                              size_t len, GCT_INT status);
void gc_lua_conn_timer(struct gc_lua_conn *c);
GCT_INT gc_lua_conn_issue(struct gc_lua_conn *c, GCT_INT stat,
                          GCT_COUNTER_VALUE value);
/* The user values of a connection's userdata: its field table, the
 * cookies of its messages in flight. */
enum { GC_LUA_CONN_UV_FIELDS = 1, GC_LUA_CONN_UV_COOKIES };
/* Ends the C side's hold on a connection (conn.c); frees its queue
 * (conn_events.c). */
void gc_lua_conn_release(struct gc_lua_conn *c);
void gc_lua_conn_queue_free(struct gc_lua_conn *c);
/* The gc.conn at 'idx', or NULL for any other value; raises nothing. */
struct gc_lua_conn *gc_lua_conn_test(lua_State *L, int idx);
/* Pushes the userdata of an open connection (protected context). */
void gc_lua_conn_push(lua_State *L, const struct gc_lua_conn *c);
/* An integer argument, or one of 'names' standing for values[i]. */
lua_Integer gc_lua_check_int_or_name(lua_State *L, int arg,
                                     const char *const names[],
                                     const lua_Integer values[]);
/* Pushes nil and the message of host error 'rc'; returns 2. */
int gc_lua_push_error(lua_State *L, int rc);
/* The optional frame type at 'arg' ("text" or "binary", else raises) as a
 * GC_MESSAGE_* flag; GC_MESSAGE_DEFAULT when none or nil. */
int gc_lua_check_msg_type(lua_State *L, int arg);

/* ---- gc_module.c: require "gc" and application timers ------------------- */

/* Registers package.preload.gc and the "gc.timer" metatable (protected). */
void gc_lua_module_open(lua_State *L, struct gc_lua_app *app);
/* Disarms every timer of the app at the host (before closing the state). */
void gc_lua_timers_stop_all(struct gc_lua_app *app);
/* load, loadfile, dofile and require's Lua searcher, for text chunks only
 * (a bad binary chunk can crash Lua); protected, after the libraries. */
void gc_lua_loaders_open(lua_State *L);

/* ---- group.c: the states of an application, and the workers ------------- */

/* The states of one application: one per worker when its connections are
 * spread over the workers ("route"), else one, on worker 'home'. */
struct gc_lua_group {
  GCT_INT app_id;
  int routed;
  GCT_INT home;
  GCT_INT nworkers;
  struct gc_lua_app **states; /* [nworkers], NULL where there is none */
};

/* A state's key for the host's callbacks: its worker and app id in the low
 * GC_LUA_KEY_BITS bits of a GCT_INTPTR (timers put a serial above). */
#define GC_LUA_APP_BITS 16
#define GC_LUA_WORKER_BITS 12
#define GC_LUA_KEY_BITS (GC_LUA_APP_BITS + GC_LUA_WORKER_BITS)
GCT_INTPTR gc_lua_state_key(const struct gc_lua_app *app);
/* The live state of a key (other bits ignored), or NULL. */
struct gc_lua_app *gc_lua_state_by_key(GCT_INTPTR key);
struct gc_lua_app *gc_lua_state_find(GCT_INT app_id, GCT_INT worker);
struct gc_lua_group *gc_lua_group_find(GCT_INT app_id);

/* The host's workers; a host without the API 1.1 members has one, 0. */
GCT_INT gc_lua_worker_count(const struct core_api *api);
/* The worker the calling thread runs (or acts as), -1 for none. */
GCT_INT gc_lua_worker_id(const struct core_api *api);
/* workerPost, or on a host without it a timer due now (one worker). */
int gc_lua_worker_post(const struct core_api *api, GCT_INT app_id,
                       GCT_INT worker, GCTimerCallback cb, GCT_INTPTR user);

/* The application events, through every state of app 'app_id' (see
 * group.c for the threads). initialize: 0 or an errno, after logging why
 * (then no state is left). */
int gc_lua_group_initialize(const struct core_api *api, GCT_INT app_id,
                            const char *name, const char *file);
void gc_lua_group_start(const struct core_api *api, GCT_INT app_id);
void gc_lua_group_stop(const struct core_api *api, GCT_INT app_id);
void gc_lua_group_shutdown(const struct core_api *api, GCT_INT app_id);
/* Frees every state of every app (adapter_finalize). */
void gc_lua_groups_free(const struct core_api *api);
/* SIGHUP, gcs --watch: every state of every app reloads its script, each
 * on its own worker (posted). The number of reloads posted. */
int gc_lua_groups_reload(const struct core_api *api);
/* gc.testing: the states of app 'name' (NULL: every app) reload now, on
 * this thread acting as each one's worker; 'script' (NULL: their own)
 * replaces their script. 0, ENOENT (no such app), or the first failure
 * (its reason in 'err'). */
int gc_lua_groups_reload_now(const struct core_api *api, const char *name,
                             const char *script, char *err, size_t errlen);
/* The state that takes a new connection of 'app_id' on the calling
 * worker, or NULL. */
struct gc_lua_app *gc_lua_group_connect_state(const struct core_api *api,
                                              GCT_INT app_id);

/* ---- pubsub.c: gc.publish and gc.subscribe --------------------------------- */

/* Registers the "gc.subscription" metatable and the state's table of
 * subscriptions (protected context). */
void gc_lua_pubsub_open(lua_State *L, struct gc_lua_app *app);
/* Hands (channel, data) to every state of app 'app_id' in this process:
 * both are copied once, into one buffer shared by the deliveries, each
 * posted to its state's worker, where the state's subscribers of
 * 'channel' get it later (never inside this call), in the order of the
 * calls made from one thread. The entry point of every transport (gc.publish
 * today, a link between hosts later). 0, ENOMEM, or ESHUTDOWN when no
 * worker took it (the process is stopping); a worker that has stopped is
 * skipped quietly when others took it. */
int gc_lua_pubsub_deliver(const struct core_api *api, GCT_INT app_id,
                          const char *channel, size_t chlen, const void *data,
                          size_t len);
/* gc.publish and gc.subscribe (upvalue 1: the app). */
int gc_lua_l_publish(lua_State *L);
int gc_lua_l_subscribe(lua_State *L);

/* ---- settings.c, counter.c, options.c: what the config gives a script -- */

/* Sets gc.settings (the app's merged "settings", read-only tables) and
 * gc.null in the gc table on top (protected context). */
void gc_lua_settings_open(lua_State *L, const struct gc_lua_app *app);
/* gc.counter(name) (upvalue 1: the app). */
int gc_lua_l_counter(lua_State *L);
/* Opens (1) or closes (0) the calling thread's window in which gc.counter
 * may create counters: around the load of an app's states (group.c). */
void gc_lua_counter_window(int open);
/* Checks the "lua" objects of the config this adapter reads (the root's,
 * its apps'): 0, or EINVAL after logging the first problem with its place. */
int gc_lua_options_check(const struct core_api *api, GCT_INT adapter_id);

/* ---- provided by the driver (adapter.c) --------------------------------- */

/* Hands the line of a script error to the driver's error sink, if one is
 * set (gc.testing raises these in the spec); the log has it already. */
void gc_lua_report_error(const char *line);
/* Exported by libgc_lua.so (dlsym "gc_lua_set_error_sink"): a driver that
 * must tell script errors from log lines (a script's gc.log(gc.ERR, ...)
 * is one) gets each script error's line here, on the loop thread, as it is
 * logged. NULL turns it off. */
typedef void (*gc_lua_error_sink_fn)(const char *line, void *ud);
GC_ADAPTER_EXPORT void gc_lua_set_error_sink(gc_lua_error_sink_fn sink,
                                             void *ud);
/* Exported (dlsym "gc_lua_reload_now"): gc.testing's host:reload. */
GC_ADAPTER_EXPORT int gc_lua_reload_now(const char *app_name, const char *script,
                                        char *err, size_t errlen);

/* text.c */
/* 1 when 's' is well-formed UTF-8 (no overlongs, no surrogates, nothing
 * above U+10FFFF). */
int gc_lua_utf8_valid(const unsigned char *s, size_t len);
/* Pushes the query string 'q' (after '?'; NULL: none) as a table of its
 * URL-decoded keys and values. */
void gc_lua_push_query(lua_State *L, const char *q);

#endif /* GC_LUA_H */
