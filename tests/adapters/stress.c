/* stress.c - a test adapter that checks Game Carrier's threading rules
 * under load (issue 15's stress proof), driven by tests/e2e/threads.test.js.
 * Only <game-carrier/server.h>, libc and pthreads, as a third party's would.
 *
 * Clients connect with "?role=keep" (durable: never closed by the adapter,
 * so everything sent to them with return 0 must arrive), "?role=victim"
 * (closed by anyone, any time, from any thread) or "?role=ctl" (the test's
 * control connection). Each gets "hello <id> <worker>" first.
 *
 * Every connection is a record, never freed nor reused (ids 1..MAX_RECORDS),
 * in one table shared by every thread. Senders are the worker threads
 * (sender index = workerId()) and STRESS_THREADS threads of the adapter's
 * own (sender index = workerCount() + t), started in application_start and
 * joined in application_stop. They send to connections picked from the
 * table, which are mostly another loop's:
 *   "d <addressee id> <sender> <seq>"  seq counts, per (sender, addressee),
 *        the messages accepted with return 0: a client must see 1, 2, 3...
 *        of each sender, in order, and a durable one must see every one;
 *   "b <sender> <id>,<id>,..."  a broadcast, naming every addressee;
 *   "d <old id> <sender> 0"  sent to a handle whose connection is gone
 *        (its on_disconnect returned): must be EINVAL, and can never reach
 *        a client, whose id differs (the client would see it).
 * They also close victims (NORMAL or DROP), arm connection timers (on_timer
 * sends one "d" message from the connection's own worker), call connection
 * members on stale handles (must be EINVAL) and the other core_api members
 * (getOpt, counters, smart locks, nowMs, the worker members).
 *
 * Client -> server: "p <own id> <n>" (the id must be the record's: else the
 * message reached another connection's events) and, on the ctl connection,
 * "quiesce": the worker threads stop sending (every event that may still
 * send has returned when the answer "quiesced" goes out); the adapter's
 * threads go on sending until application_stop, whose connections are
 * still open: what they sent with return 0 must arrive too.
 *
 * Every event checks that no other event of its connection runs at the
 * same time (a flag set and cleared with atomics), that it runs on the
 * connection's worker, and that nothing follows on_disconnect. At
 * application_shutdown the adapter logs one summary line
 *   stress: connects=N disconnects=N stale_einval=K misdelivered=0
 *           events_concurrent_same_conn=0 ...
 * and writes the app's "file_name" (JSON): the summary, and for every
 * durable connection the last seq of each sender. */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <errno.h>
#include <game-carrier/server.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_RECORDS 8192
#define MAX_WORKERS 12
#define STRESS_THREADS 3
#define MAX_SENDERS (MAX_WORKERS + STRESS_THREADS)
#define MAX_KEEP 256
#define BCAST_TARGETS 4
#define COOKIE_BCAST ((GCT_INTPTR)-1)

enum role { ROLE_VICTIM, ROLE_KEEP, ROLE_CTL };
/* FREE -> OPEN (on_connect returned its id) -> LEAVING (on_disconnect ran)
 * -> GONE (a callback posted from on_disconnect to the same worker ran,
 * so on_disconnect has returned and the handle is stale). */
enum state { ST_FREE, ST_OPEN, ST_LEAVING, ST_GONE };

struct rec {
  _Atomic int state;
  _Atomic intptr_t handle;
  /* Written in on_connect before 'state' is published, never again. */
  int id, role, worker;
  atomic_int in_event;     /* an event of this connection is running */
  atomic_int disconnected; /* on_disconnect ran */
  atomic_int ready;        /* the client sent a message: its upgrade is done */
  /* Per sender: the seq of the last message accepted with return 0.
   * Written by that sender's thread only. */
  atomic_uint seq[MAX_SENDERS];
  atomic_long sent_ok;  /* addressed messages accepted (hello included) */
  atomic_long reported; /* their on_message_sent with status 0 */
};

static struct rec recs[MAX_RECORDS + 1];
static atomic_int last_id;
static atomic_int keep_ids[MAX_KEEP];
static atomic_int keep_count;

static struct core_api api;
static int workers; /* workerCount(), read in application_initialize */
static char report_path[1024];
static GCT_INT ops_counter = -1;
static GCT_INTPTR lock;
static long locked_count; /* only under 'lock' */

static atomic_int quiesced; /* the worker threads send no more */
static atomic_int active;   /* worker events that may send, running now */
static atomic_int stop;     /* the adapter's threads end */
static pthread_t threads[STRESS_THREADS];
static int threads_started;

static struct {
  atomic_long connects, disconnects, refused;
  atomic_long misdelivered, concurrent, wrong_worker, after_disconnect,
      double_disconnect;
  atomic_long stale_einval, stale_accepted;
  atomic_long sends_ok, sends_failed, keep_failed, cross_sends, bcasts_ok;
  atomic_long closes_ok, closes_failed, timers_set, timers_fired;
  atomic_long thread_ops, api_wrong, counted_ops, posts, posts_ran;
  atomic_long messages_in;
  atomic_uint workers_seen; /* bit per worker that served a connection */
} st;

#define INC(x) atomic_fetch_add_explicit(&st.x, 1, memory_order_relaxed)
#define GET(x) atomic_load(&st.x)

/* ---- helpers ------------------------------------------------------------- */

static uint64_t rnd(uint64_t *s) { /* xorshift64* */
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return (x * 0x2545F4914F6CDD1DULL) >> 11;
}

static void say(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int level, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  api.logMessage(level, buf);
}

/* A violation worth a line (the first few of each kind). */
static void violation(atomic_long *counter, const char *what, int id) {
  long n = atomic_fetch_add(counter, 1);
  if (n < 3)
    say(GCL_WARN, "stress: %s (connection %d)", what, id);
}

static struct rec *rec_of(GCT_INTPTR user) { return (struct rec *)user; }

/* Every event of a connection starts and ends with these. */
static void enter(struct rec *r) {
  if (atomic_exchange(&r->in_event, 1))
    violation(&st.concurrent, "two events of one connection at once", r->id);
  if (api.workerId() != r->worker)
    violation(&st.wrong_worker, "an event on another worker than the connection's", r->id);
  if (atomic_load(&r->disconnected))
    violation(&st.after_disconnect, "an event after on_disconnect", r->id);
  /* Now and then, let another thread run while the flag is up: an event of
   * this connection that ran elsewhere would then see it. */
  static _Thread_local unsigned n;
  if ((++n & 7) == 0)
    sched_yield();
}

static void leave(struct rec *r) { atomic_store(&r->in_event, 0); }

/* A worker event that may send: 0 once "quiesce" was asked. Dekker's
 * pattern with seq_cst atomics: quiesce sets 'quiesced' then waits for
 * 'active' to be 0, an event raises 'active' then reads 'quiesced'. */
static int worker_send_begin(void) {
  atomic_fetch_add(&active, 1);
  if (atomic_load(&quiesced)) {
    atomic_fetch_sub(&active, 1);
    return 0;
  }
  return 1;
}

static void worker_send_end(void) { atomic_fetch_sub(&active, 1); }

static int sender_worker(int sender) { return sender < workers ? sender : -1; }

/* Sends the next "d" message of 'sender' to 'r' (seen OPEN or LEAVING). */
static void send_seq(int sender, struct rec *r) {
  unsigned n = atomic_load_explicit(&r->seq[sender], memory_order_relaxed) + 1;
  char buf[64];
  int len = snprintf(buf, sizeof buf, "d %d %d %u", r->id, sender, n);
  int rc = api.connectionAddMessage(atomic_load(&r->handle), buf, (GCT_SIZE)len,
                                    (GCT_INTPTR)r->id);
  if (rc == 0) {
    atomic_store_explicit(&r->seq[sender], n, memory_order_relaxed);
    atomic_fetch_add(&r->sent_ok, 1);
    INC(sends_ok);
    if (sender_worker(sender) != r->worker)
      INC(cross_sends);
  } else {
    INC(sends_failed);
    if (r->role == ROLE_KEEP && atomic_fetch_add(&st.keep_failed, 1) < 3)
      say(GCL_WARN, "stress: a send to durable connection %d returned %d", r->id, rc);
  }
}

/* A connection member on the handle of 'r', whose connection is gone:
 * must be EINVAL. */
static void stale_call(int sender, struct rec *r, uint64_t *rng) {
  intptr_t h = atomic_load(&r->handle);
  int rc;
  switch (rnd(rng) % 4) {
  case 0:
  case 1: {
    char buf[64];
    int len = snprintf(buf, sizeof buf, "d %d %d 0", r->id, sender);
    rc = api.connectionAddMessage(h, buf, (GCT_SIZE)len, (GCT_INTPTR)r->id);
    break;
  }
  case 2:
    rc = api.connectionClose(h, rnd(rng) % 2 ? GC_CLOSE_REASON_NORMAL
                                              : GC_CLOSE_REASON_DROP);
    break;
  default:
    rc = api.connectionSetTimer(h, 1);
    break;
  }
  if (rc == EINVAL)
    INC(stale_einval);
  else
    violation(&st.stale_accepted, "a call on a stale handle did not return EINVAL", r->id);
}

/* A random record that is not the ctl's and has an id: a durable one, a
 * recent one (mostly open victims), or any (mostly gone). NULL if none. */
static struct rec *pick(uint64_t *rng) {
  int last = atomic_load(&last_id);
  if (last <= 0)
    return NULL;
  if (last > MAX_RECORDS)
    last = MAX_RECORDS;
  int kc = atomic_load(&keep_count);
  unsigned k = (unsigned)(rnd(rng) % 10);
  struct rec *r = NULL;
  if (k < 4 && kc > 0) {
    int id = atomic_load(&keep_ids[rnd(rng) % (unsigned)(kc < MAX_KEEP ? kc : MAX_KEEP)]);
    r = id ? &recs[id] : NULL;
  } else if (k < 7) {
    int lo = last > 300 ? last - 300 : 1;
    for (int t = 0; t < 4; t++) {
      r = &recs[lo + (int)(rnd(rng) % (unsigned)(last - lo + 1))];
      if (atomic_load(&r->state) == ST_OPEN)
        break;
    }
  } else {
    r = &recs[1 + (int)(rnd(rng) % (unsigned)last)];
  }
  if (!r || atomic_load(&r->state) == ST_FREE || r->role == ROLE_CTL)
    return NULL;
  return r;
}

/* An open victim whose client has spoken, or NULL. */
static struct rec *pick_victim(uint64_t *rng) {
  int last = atomic_load(&last_id);
  if (last > MAX_RECORDS)
    last = MAX_RECORDS;
  if (last <= 0)
    return NULL;
  int lo = last > 300 ? last - 300 : 1;
  for (int t = 0; t < 8; t++) {
    struct rec *r = &recs[lo + (int)(rnd(rng) % (unsigned)(last - lo + 1))];
    if (atomic_load(&r->state) == ST_OPEN && r->role == ROLE_VICTIM &&
        atomic_load(&r->ready))
      return r;
  }
  return NULL;
}

/* One step of a sender (a worker in an event, or an own thread). */
static void act(int sender, uint64_t *rng, int sends) {
  for (int i = 0; i < sends; i++) {
    struct rec *r = pick(rng);
    if (!r)
      continue;
    int s = atomic_load(&r->state);
    if (s == ST_GONE)
      stale_call(sender, r, rng);
    else if (s == ST_OPEN || s == ST_LEAVING)
      send_seq(sender, r);
  }
  unsigned k = (unsigned)(rnd(rng) % 16);
  if (k < 2) {
    struct rec *v = pick_victim(rng);
    if (v) {
      int rc = api.connectionClose(atomic_load(&v->handle),
                                   k ? GC_CLOSE_REASON_NORMAL : GC_CLOSE_REASON_DROP);
      if (rc == 0)
        INC(closes_ok);
      else
        INC(closes_failed);
    }
  } else if (k < 4) {
    struct rec *r = pick(rng);
    if (r && atomic_load(&r->state) == ST_OPEN &&
        api.connectionSetTimer(atomic_load(&r->handle), 1 + (int)(rnd(rng) % 20)) == 0)
      INC(timers_set);
  }
  if (api.counterIncrement(ops_counter) == 0)
    INC(counted_ops);
}

/* ---- the adapter's own threads ------------------------------------------- */

static void posted(GCT_INTPTR worker) {
  INC(posts_ran);
  if (api.workerId() != (GCT_INT)worker)
    violation(&st.api_wrong, "workerPost ran on another worker", (int)worker);
}

static void broadcast(int sender, uint64_t *rng) {
  GCT_INTPTR handles[BCAST_TARGETS];
  char buf[256];
  int len = snprintf(buf, sizeof buf, "b %d ", sender);
  size_t n = 0;
  for (int i = 0; i < BCAST_TARGETS; i++) {
    struct rec *r = pick(rng);
    if (!r)
      continue;
    handles[n++] = atomic_load(&r->handle);
    len += snprintf(buf + len, sizeof buf - (size_t)len, "%s%d", n > 1 ? "," : "", r->id);
  }
  GCT_SIZE queued = 0;
  if (n && api.connectionsBroadcast(handles, n, buf, (GCT_SIZE)len, COOKIE_BCAST,
                                    &queued) == 0)
    INC(bcasts_ok);
}

/* The other members, from a thread that is no worker's. */
static void other_members(uint64_t *rng, int64_t *last_now) {
  if (api.workerId() != -1)
    violation(&st.api_wrong, "workerId() on an own thread is not -1", 0);
  if (api.workerCount() != workers)
    violation(&st.api_wrong, "workerCount() changed", 0);
  uint64_t drain = 0;
  if (api.getOpt("close_drain_ms", GC_OPT_TYPE_UINT64, &drain) != 0)
    violation(&st.api_wrong, "getOpt from an own thread failed", 0);
  int64_t now = api.nowMs();
  if (now < *last_now)
    violation(&st.api_wrong, "nowMs went back", 0);
  *last_now = now;
  GCT_COUNTER_VALUE v;
  if (api.counterGet(ops_counter, &v) != 0)
    violation(&st.api_wrong, "counterGet from an own thread failed", 0);
  if (api.smartLock(lock) == 0) {
    locked_count++; /* ThreadSanitizer sees it if the lock is none */
    api.smartUnlock(lock);
  }
  GCT_INTPTR t = api.timerStart(0, 10, 0, posted, 0);
  if (t) { /* no worker's thread: documented to fail */
    violation(&st.api_wrong, "timerStart on an own thread returned a timer", 0);
    api.timerStop(t);
  }
  int w = (int)(rnd(rng) % (unsigned)workers);
  if (api.workerPost(w, posted, w) == 0)
    INC(posts);
}

static void *thread_main(void *arg) {
  int t = (int)(intptr_t)arg;
  int sender = workers + t;
  uint64_t rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(t + 1);
  int64_t last_now = 0;
  struct timespec pause = {0, 1000000}; /* 1 ms: bounded work on 2 cores */
  while (!atomic_load(&stop)) {
    act(sender, &rng, 2);
    unsigned k = (unsigned)(rnd(&rng) % 8);
    if (k == 0)
      broadcast(sender, &rng);
    else if (k == 1)
      other_members(&rng, &last_now);
    INC(thread_ops);
    nanosleep(&pause, NULL);
  }
  return NULL;
}

/* ---- events -------------------------------------------------------------- */

GC_ADAPTER_DECLARE_API_VERSION;

GC_ADAPTER_EVENT GCT_INT adapter_initialize(GCT_INT adapter_id, struct core_api *core,
                                            GCT_CPTR load_path) {
  (void)adapter_id, (void)load_path;
  api = *core;
  if (!api.workerCount || !api.workerId || !api.workerPost) {
    fprintf(stderr, "stress: a host without the worker members (API 1.1)\n");
    return ENOSYS;
  }
  return 0;
}

GC_ADAPTER_EVENT GCT_INT application_initialize(GCT_INT app_id, GCT_CSTR name,
                                                GCT_CSTR type_name, GCT_CSTR file_name) {
  (void)app_id, (void)name, (void)type_name;
  workers = api.workerCount();
  if (workers < 1 || workers > MAX_WORKERS) {
    say(GCL_ERR, "stress: %d workers: at most %d", workers, MAX_WORKERS);
    return EINVAL;
  }
  if (!file_name || strlen(file_name) >= sizeof report_path) {
    say(GCL_ERR, "stress: the app's file_name names the report file");
    return EINVAL;
  }
  strcpy(report_path, file_name);
  ops_counter = api.counterCreate("stress.ops");
  lock = api.smartLockCreate();
  if (ops_counter < 0 || !lock)
    return ENOMEM;
  return 0;
}

GC_ADAPTER_EVENT void application_start(GCT_INT app_id) {
  (void)app_id;
  for (int t = 0; t < STRESS_THREADS; t++) {
    if (pthread_create(&threads[t], NULL, thread_main, (void *)(intptr_t)t) != 0) {
      say(GCL_ERR, "stress: cannot start thread %d", t);
      break;
    }
    threads_started++;
  }
  say(GCL_NOTICE, "stress: %d workers, %d threads of its own", workers, threads_started);
}

GC_ADAPTER_EVENT void application_stop(GCT_INT app_id) {
  (void)app_id;
  atomic_store(&stop, 1);
  for (int t = 0; t < threads_started; t++)
    pthread_join(threads[t], NULL);
  threads_started = 0;
}

static void write_report(const char *summary) {
  FILE *f = fopen(report_path, "w");
  if (!f) {
    say(GCL_ERR, "stress: cannot write %s", report_path);
    return;
  }
  fprintf(f, "{\"summary\": \"%s\",\n \"workers\": %d, \"senders\": %d,\n \"keep\": {", summary,
          workers, workers + STRESS_THREADS);
  int kc = atomic_load(&keep_count);
  for (int i = 0; i < kc && i < MAX_KEEP; i++) {
    struct rec *r = &recs[atomic_load(&keep_ids[i])];
    fprintf(f, "%s\n  \"%d\": [", i ? "," : "", r->id);
    for (int s = 0; s < workers + STRESS_THREADS; s++)
      fprintf(f, "%s%u", s ? ", " : "", atomic_load(&r->seq[s]));
    fprintf(f, "]");
  }
  fprintf(f, "\n }}\n");
  fclose(f);
}

GC_ADAPTER_EVENT void application_shutdown(GCT_INT app_id) {
  (void)app_id;
  long keep_sent = 0, keep_reported = 0;
  int kc = atomic_load(&keep_count);
  for (int i = 0; i < kc && i < MAX_KEEP; i++) {
    struct rec *r = &recs[atomic_load(&keep_ids[i])];
    keep_sent += atomic_load(&r->sent_ok);
    keep_reported += atomic_load(&r->reported);
  }
  GCT_COUNTER_VALUE ops = -1;
  (void)api.counterGet(ops_counter, &ops);
  unsigned seen = atomic_load(&st.workers_seen);
  int nseen = 0;
  for (int w = 0; w < MAX_WORKERS; w++)
    nseen += (int)((seen >> w) & 1u);
  char summary[1024];
  snprintf(summary, sizeof summary,
           "connects=%ld disconnects=%ld stale_einval=%ld misdelivered=%ld "
           "events_concurrent_same_conn=%ld stale_accepted=%ld wrong_worker=%ld "
           "after_disconnect=%ld double_disconnect=%ld refused=%ld api_wrong=%ld "
           "keep_sent=%ld keep_reported=%ld keep_failed=%ld counter=%lld counted=%ld "
           "sends_ok=%ld sends_failed=%ld cross_sends=%ld bcasts=%ld closes=%ld "
           "timers_set=%ld timers_fired=%ld thread_ops=%ld posts=%ld posts_ran=%ld "
           "messages_in=%ld workers_seen=%d locked=%ld",
           GET(connects), GET(disconnects), GET(stale_einval), GET(misdelivered),
           GET(concurrent), GET(stale_accepted), GET(wrong_worker), GET(after_disconnect),
           GET(double_disconnect), GET(refused), GET(api_wrong), keep_sent, keep_reported,
           GET(keep_failed), (long long)ops, GET(counted_ops), GET(sends_ok), GET(sends_failed),
           GET(cross_sends), GET(bcasts_ok), GET(closes_ok), GET(timers_set),
           GET(timers_fired), GET(thread_ops), GET(posts), GET(posts_ran),
           GET(messages_in), nseen, locked_count);
  say(GCL_NOTICE, "stress: %s", summary);
  write_report(summary);
}

GC_ADAPTER_EVENT void adapter_finalize(GCT_INT adapter_id) {
  (void)adapter_id;
  if (lock)
    api.smartLockDestroy(lock);
  lock = 0;
}

GC_ADAPTER_EVENT GCT_INTPTR on_connect(GCT_INT app_id, GCT_INTPTR handle, GCT_INT pid,
                                       GCT_CSTR rip, GCT_INT rport, GCT_CSTR lip,
                                       GCT_INT lport, GCT_CSTR udata) {
  (void)app_id, (void)pid, (void)rip, (void)rport, (void)lip, (void)lport;
  int id = atomic_fetch_add(&last_id, 1) + 1;
  if (id > MAX_RECORDS) {
    INC(refused);
    return GC_DROP_CONNECTION;
  }
  struct rec *r = &recs[id];
  r->id = id;
  r->role = strstr(udata, "role=keep") ? ROLE_KEEP
            : strstr(udata, "role=ctl") ? ROLE_CTL
                                        : ROLE_VICTIM;
  r->worker = api.workerId();
  atomic_store(&r->handle, handle);
  enter(r);
  INC(connects);
  if (r->worker >= 0 && r->worker < MAX_WORKERS)
    atomic_fetch_or(&st.workers_seen, 1u << r->worker);
  char buf[64];
  int len = snprintf(buf, sizeof buf, "hello %d %d", id, r->worker);
  if (api.connectionAddMessage(handle, buf, (GCT_SIZE)len, (GCT_INTPTR)id) == 0)
    atomic_fetch_add(&r->sent_ok, 1);
  if (r->role == ROLE_KEEP) {
    int k = atomic_fetch_add(&keep_count, 1);
    if (k < MAX_KEEP)
      atomic_store(&keep_ids[k], id);
  }
  atomic_store(&r->state, ST_OPEN);
  leave(r);
  return (GCT_INTPTR)r;
}

/* On the connection's worker, after its on_disconnect returned. */
static void gone(GCT_INTPTR user) { atomic_store(&rec_of(user)->state, ST_GONE); }

GC_ADAPTER_EVENT void on_disconnect(GCT_INTPTR user) {
  struct rec *r = rec_of(user);
  enter(r);
  if (atomic_exchange(&r->disconnected, 1))
    violation(&st.double_disconnect, "a second on_disconnect", r->id);
  INC(disconnects);
  atomic_store(&r->state, ST_LEAVING);
  /* Its handle is released once this returns: a callback posted to this
   * worker runs later, and only then may the others count on EINVAL. */
  (void)api.workerPost(api.workerId(), gone, user);
  leave(r);
}

static void quiesce(struct rec *r) {
  atomic_store(&quiesced, 1);
  long spins = 0;
  while (atomic_load(&active) > 0 && spins < 20000000)
    spins++, sched_yield();
  const char *answer = atomic_load(&active) > 0 ? "quiesce-timeout" : "quiesced";
  api.connectionAddMessage(atomic_load(&r->handle), (GCT_PTR)answer, strlen(answer),
                           (GCT_INTPTR)r->id);
  atomic_fetch_add(&r->sent_ok, 1);
}

GC_ADAPTER_EVENT void on_message(GCT_INTPTR user, GCT_PTR data, GCT_SIZE len) {
  struct rec *r = rec_of(user);
  enter(r);
  INC(messages_in);
  char text[64];
  size_t n = len < sizeof text - 1 ? len : sizeof text - 1;
  memcpy(text, data, n);
  text[n] = '\0';
  if (r->role == ROLE_CTL) {
    if (strcmp(text, "quiesce") == 0)
      quiesce(r);
    leave(r);
    return;
  }
  int id = 0, k = 0;
  if (sscanf(text, "p %d %d", &id, &k) != 2 || id != r->id)
    violation(&st.misdelivered, "a client's message reached another connection", r->id);
  atomic_store(&r->ready, 1);
  if (worker_send_begin()) {
    static _Thread_local uint64_t rng;
    if (!rng)
      rng = 0xD1B54A32D192ED03ULL * (uint64_t)(api.workerId() + 11);
    act(r->worker, &rng, 3);
    worker_send_end();
  }
  leave(r);
}

GC_ADAPTER_EVENT void on_message_sent(GCT_INTPTR user, GCT_INTPTR cookie, GCT_SIZE len,
                                      GCT_INT status) {
  (void)len;
  struct rec *r = rec_of(user);
  enter(r);
  if (cookie != COOKIE_BCAST) {
    if (cookie != (GCT_INTPTR)r->id)
      violation(&st.misdelivered, "on_message_sent of another connection's message", r->id);
    else if (status == 0)
      atomic_fetch_add(&r->reported, 1);
  }
  leave(r);
}

GC_ADAPTER_EVENT void on_timer(GCT_INTPTR user) {
  struct rec *r = rec_of(user);
  enter(r);
  INC(timers_fired);
  if (worker_send_begin()) {
    send_seq(r->worker, r);
    worker_send_end();
  }
  leave(r);
}
