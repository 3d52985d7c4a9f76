/* s2s.c - a test adapter for links (s2sCreate and friends). Only
 * <game-carrier/server.h>, libc and pthreads, as a third party's would.
 *
 * Apps of type "controller": a test client drives one link per connection
 * with text commands, and hears the link's events as text messages:
 *   "open PORT APP"   s2sCreate(WS, 127.0.0.1, PORT, APP): "create RC"
 *   "wss PORT APP"    the same with GC_PROTOCOL_WSS: "create RC"
 *   "send X"          s2sAddMessage(X, cookie 7)
 *   "burst N"         N messages "m<K>" (K counts from 0 on each link;
 *                     cookies 100 + K)
 *   "burstclose N"    the same, then s2sDestroy: "destroy RC"
 *   "xthread N"       the N messages from a thread of the adapter's own
 *   "fill N SIZE"     N messages of SIZE bytes (cookies 100..)
 *   "close"           s2sDestroy: "destroy RC"
 *   "timer MS"        s2sSetTimer: "settimer RC"
 *   "stale"           on the handle of the previous link: "stale D T"
 *                     (s2sDestroy's and s2sSetTimer's results)
 *   "stats"           "stats MSGS ORDER_ERRORS" of this process's peers
 * application_shutdown logs how many links had no final event yet.
 * Events: "connect", "error REASON", "msg DATA", "sent 7 STATUS",
 * "timer", "disconnect OK FAILED" (on_client_message_sent counts of the
 * burst cookies), each exactly as often as the host calls them.
 *
 * Apps of type "peer": send "hello" to each client, echo "echo:X" for
 * every message X, count "m<K>" messages and check that K runs 0, 1, 2...
 * per connection; "push N" answers "p0".."p<N-1>"; "bye" closes NORMAL. */
#include <errno.h>
#include <game-carrier/server.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct core_api api;
static GCT_INT adapter;
static int is_peer[64];
static atomic_long peer_msgs, order_errors;
static atomic_long live_links; /* attempts without their final event */

struct ctl {
  GCT_INTPTR handle;
  GCT_INTPTR link, old_link;
  int links;  /* link attempts without their final event yet */
  int gone;   /* the controller disconnected */
  long ok, failed;
  long seq; /* the next "m<K>" of this link */
};

struct peer {
  GCT_INTPTR handle;
  long expected;
};

static void say(struct ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void say(struct ctl *c, const char *fmt, ...) {
  if (c->gone)
    return;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof buf - 1)
    n = (int)sizeof buf - 1;
  api.connectionAddMessage(c->handle, buf, (GCT_SIZE)n, 0);
}

static void ctl_release(struct ctl *c) {
  if (c->gone && !c->links)
    free(c);
}

/* ---- link events ------------------------------------------------------------ */

static void ev_connect(GCT_INTPTR user, GCT_INTPTR handle) {
  struct ctl *c = (struct ctl *)user;
  c->link = handle;
  say(c, "connect");
}

static void ev_error(GCT_INTPTR user, GCT_CSTR reason) {
  struct ctl *c = (struct ctl *)user;
  c->links--;
  live_links--;
  say(c, "error %s", reason);
  ctl_release(c);
}

static void ev_disconnect(GCT_INTPTR user) {
  struct ctl *c = (struct ctl *)user;
  c->links--;
  live_links--;
  c->old_link = c->link;
  c->link = 0;
  say(c, "disconnect %ld %ld", c->ok, c->failed);
  ctl_release(c);
}

static void ev_message(GCT_INTPTR user, GCT_PTR data, GCT_SIZE len) {
  say((struct ctl *)user, "msg %.*s", (int)len, (const char *)data);
}

static void ev_sent(GCT_INTPTR user, GCT_INTPTR cookie, GCT_SIZE len, int status) {
  struct ctl *c = (struct ctl *)user;
  (void)len;
  if (cookie == 7)
    say(c, "sent 7 %d", status);
  else if (status == 0)
    c->ok++;
  else
    c->failed++;
}

static void ev_timer(GCT_INTPTR user) { say((struct ctl *)user, "timer"); }

static struct client_events events = {ev_connect, ev_disconnect, ev_error,
                                      ev_message, ev_sent, ev_timer};

/* ---- adapter and app events ---------------------------------------------------- */

GC_ADAPTER_EVENT GCT_INT adapter_initialize(GCT_INT adapter_id, struct core_api *core,
                                            GCT_CPTR load_path) {
  (void)load_path;
  api = *core;
  adapter = adapter_id;
  return 0;
}

GC_ADAPTER_EVENT GCT_INT application_initialize(GCT_INT app_id, GCT_CSTR name,
                                                GCT_CSTR type_name, GCT_CSTR file_name) {
  (void)name, (void)file_name;
  if (app_id < 0 || app_id >= 64)
    return EINVAL;
  is_peer[app_id] = type_name && strcmp(type_name, "peer") == 0;
  return 0;
}

GC_ADAPTER_EVENT GCT_INTPTR on_connect(GCT_INT app_id, GCT_INTPTR handle, GCT_INT pid,
                                       GCT_CSTR rip, GCT_INT rport, GCT_CSTR lip,
                                       GCT_INT lport, GCT_CSTR udata) {
  (void)pid, (void)rip, (void)rport, (void)lip, (void)lport, (void)udata;
  if (is_peer[app_id]) {
    struct peer *p = calloc(1, sizeof *p);
    if (!p)
      return GC_DROP_CONNECTION;
    p->handle = handle;
    api.connectionAddMessage(handle, (GCT_PTR) "hello", 5, 0);
    return (GCT_INTPTR)p | 1; /* low bit: a peer */
  }
  struct ctl *c = calloc(1, sizeof *c);
  if (!c)
    return GC_DROP_CONNECTION;
  c->handle = handle;
  return (GCT_INTPTR)c;
}

GC_ADAPTER_EVENT void on_disconnect(GCT_INTPTR user) {
  if (user & 1) {
    free((struct peer *)(user & ~(GCT_INTPTR)1));
    return;
  }
  struct ctl *c = (struct ctl *)user;
  c->gone = 1;
  if (c->link)
    (void)api.s2sDestroy(c->link);
  ctl_release(c);
}

static void peer_message(struct peer *p, const char *data, size_t len) {
  char buf[600], d[520]; /* 'data' is not NUL-terminated */
  if (len > 500)
    len = 500;
  memcpy(d, data, len);
  d[len] = 0;
  if (len > 1 && d[0] == 'm') {
    long k = strtol(d + 1, NULL, 10);
    if (k != p->expected)
      order_errors++;
    p->expected = k + 1;
    peer_msgs++;
  }
  if (len == 3 && memcmp(d, "bye", 3) == 0) {
    api.connectionClose(p->handle, GC_CLOSE_REASON_NORMAL);
    return;
  }
  if (len > 5 && memcmp(d, "push ", 5) == 0) {
    long n = strtol(d + 5, NULL, 10);
    for (long i = 0; i < n; i++) {
      int k = snprintf(buf, sizeof buf, "p%ld", i);
      api.connectionAddMessage(p->handle, buf, (GCT_SIZE)k, 0);
    }
    return;
  }
  int k = snprintf(buf, sizeof buf, "echo:%s", d);
  api.connectionAddMessage(p->handle, buf, (GCT_SIZE)k, 0);
}

static void burst(GCT_INTPTR link, long from, long n) {
  char buf[32];
  for (long i = from; i < from + n; i++) {
    int k = snprintf(buf, sizeof buf, "m%ld", i);
    api.s2sAddMessage(link, buf, (GCT_SIZE)k, 100 + i);
  }
}

struct xthread {
  GCT_INTPTR link;
  long from, n;
};

static void *xthread_main(void *arg) {
  struct xthread *x = arg;
  burst(x->link, x->from, x->n);
  return NULL;
}

GC_ADAPTER_EVENT void on_message(GCT_INTPTR user, GCT_PTR data, GCT_SIZE len) {
  char cmd[256];
  if (user & 1) {
    peer_message((struct peer *)(user & ~(GCT_INTPTR)1), data, len);
    return;
  }
  struct ctl *c = (struct ctl *)user;
  size_t n = len < sizeof cmd - 1 ? len : sizeof cmd - 1;
  memcpy(cmd, data, n);
  cmd[n] = 0;
  char app[128];
  int port;
  long count;
  if (sscanf(cmd, "open %d %127s", &port, app) == 2 ||
      sscanf(cmd, "wss %d %127s", &port, app) == 2) {
    int proto = cmd[0] == 'w' ? GC_PROTOCOL_WSS : GC_PROTOCOL_WS;
    c->ok = c->failed = c->seq = 0;
    int rc = api.s2sCreate(adapter, (GCT_INTPTR)c, proto, (GCT_PTR) "127.0.0.1", port, app, &events);
    if (rc == 0) {
      c->links++;
      live_links++;
    }
    say(c, "create %d", rc);
  } else if (strncmp(cmd, "send ", 5) == 0) {
    api.s2sAddMessage(c->link, cmd + 5, strlen(cmd + 5), 7);
  } else if (sscanf(cmd, "burstclose %ld", &count) == 1) {
    burst(c->link, c->seq, count);
    c->seq += count;
    say(c, "destroy %d", api.s2sDestroy(c->link));
  } else if (sscanf(cmd, "fill %ld %d", &count, &port) == 2 && port > 0) {
    char *big = malloc((size_t)port);
    if (big) {
      memset(big, 'x', (size_t)port);
      for (long i = 0; i < count; i++)
        api.s2sAddMessage(c->link, big, (GCT_SIZE)port, 100 + i);
      free(big);
    }
  } else if (sscanf(cmd, "burst %ld", &count) == 1) {
    burst(c->link, c->seq, count);
    c->seq += count;
  } else if (sscanf(cmd, "xthread %ld", &count) == 1) {
    struct xthread x = {c->link, c->seq, count};
    c->seq += count;
    pthread_t t;
    if (pthread_create(&t, NULL, xthread_main, &x) == 0)
      pthread_join(t, NULL);
  } else if (strcmp(cmd, "close") == 0) {
    say(c, "destroy %d", api.s2sDestroy(c->link));
  } else if (sscanf(cmd, "timer %ld", &count) == 1) {
    say(c, "settimer %d", api.s2sSetTimer(c->link, (GCT_INT)count));
  } else if (strcmp(cmd, "stale") == 0) {
    int d = api.s2sDestroy(c->old_link);
    int t = api.s2sSetTimer(c->old_link, 10);
    say(c, "stale %d %d", d, t);
  } else if (strcmp(cmd, "stats") == 0) {
    say(c, "stats %ld %ld", (long)peer_msgs, (long)order_errors);
  }
}

GC_ADAPTER_EVENT void on_message_sent(GCT_INTPTR user, GCT_INTPTR cookie, GCT_SIZE len,
                                      GCT_INT status) {
  (void)user, (void)cookie, (void)len, (void)status;
}

GC_ADAPTER_EVENT void on_timer(GCT_INTPTR user) { (void)user; }

/* Links end before this (server.h): the test reads the line. */
GC_ADAPTER_EVENT void application_shutdown(GCT_INT app_id) {
  if (is_peer[app_id])
    return;
  char line[64];
  snprintf(line, sizeof line, "s2s: %ld link(s) open at application_shutdown",
           (long)live_links);
  api.logMessage(GCL_NOTICE, line);
}
