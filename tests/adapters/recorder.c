/* recorder.c - a test adapter that writes every event it gets, one line
 * each, to the file named by its app's "file_name", and drives the API on
 * command. Only <game-carrier/server.h> and libc, as a third party's would.
 *
 * Commands (text messages from the client); anything else is echoed:
 *   "queue N normal"  queue N messages "0".."N-1" (cookies 1..N), then
 *                     connectionClose(NORMAL); log "close_rc <a> <b>" for
 *                     that close and a second one
 *   "queue N drop"    the same with DROP
 *   "badreason"       reply "rc <connectionClose(h, 7)>"
 *   "stale"           reply "stale <add> <close> <timer>": the rcs of those
 *                     calls on the handle of the last disconnected client
 *   "timer MS"        connectionSetTimer(h, MS); on_timer replies "timer"
 *   "timer-close MS"  arm a timer, then close NORMAL (on_timer must not come)
 *   "big N"           queue one message of N bytes; log "big_rc <id> <rc>"
 * An echo the host refuses is logged as "echo_rc <id> <rc>".
 * A client whose request target contains "refuse" is refused.
 *
 * Events come on several worker threads (Game Carrier's rules): the ids and
 * the last closed handle are atomics, and each line is written whole. */
#define _POSIX_C_SOURCE 200809L /* flockfile */
#include <errno.h>
#include <game-carrier/server.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct core_api api;
static FILE *out;
static atomic_int next_id;
static _Atomic GCT_INTPTR last_closed_handle;

struct conn {
  GCT_INTPTR handle;
  int id;
};

static void rec(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void rec(const char *fmt, ...) {
  if (!out)
    return;
  va_list ap;
  va_start(ap, fmt);
  flockfile(out); /* one line at a time from every worker */
  vfprintf(out, fmt, ap);
  va_end(ap);
  fputc('\n', out);
  fflush(out);
  funlockfile(out);
}

static void reply(struct conn *c, const char *text) {
  api.connectionAddMessage(c->handle, (GCT_PTR)text, strlen(text), 0);
}

GC_ADAPTER_EVENT GCT_INT adapter_initialize(GCT_INT adapter_id, struct core_api *core,
                                            GCT_CPTR load_path) {
  (void)load_path;
  api = *core;
  const char *level = NULL;
  api.getOpt("logging.level", GC_OPT_TYPE_STRING, &level);
  fprintf(stderr, "recorder: adapter_initialize %d\n", (int)adapter_id);
  return 0;
}

GC_ADAPTER_EVENT GCT_INT application_initialize(GCT_INT app_id, GCT_CSTR name,
                                                GCT_CSTR type_name, GCT_CSTR file_name) {
  out = fopen(file_name, "a");
  if (!out)
    return errno;
  rec("adapter_initialize");
  rec("application_initialize %d %s %s", (int)app_id, name, type_name);
  return 0;
}

GC_ADAPTER_EVENT void application_start(GCT_INT app_id) { rec("application_start %d", (int)app_id); }
GC_ADAPTER_EVENT void application_stop(GCT_INT app_id) { rec("application_stop %d", (int)app_id); }
GC_ADAPTER_EVENT void application_shutdown(GCT_INT app_id) {
  rec("application_shutdown %d", (int)app_id);
}

GC_ADAPTER_EVENT void adapter_finalize(GCT_INT adapter_id) {
  rec("adapter_finalize %d", (int)adapter_id);
  if (out)
    fclose(out);
  out = NULL;
}

GC_ADAPTER_EVENT GCT_INTPTR on_connect(GCT_INT app_id, GCT_INTPTR handle, GCT_INT pid,
                                       GCT_CSTR rip, GCT_INT rport, GCT_CSTR lip,
                                       GCT_INT lport, GCT_CSTR udata) {
  (void)app_id, (void)rport, (void)lport;
  int id = atomic_fetch_add(&next_id, 1) + 1;
  rec("connect %d %s %d %s %s", id, udata, (int)pid, rip, lip);
  if (strstr(udata, "refuse")) {
    rec("refused %d", id);
    return GC_DROP_CONNECTION;
  }
  struct conn *c = malloc(sizeof *c);
  if (!c)
    return GC_DROP_CONNECTION;
  c->handle = handle;
  c->id = id;
  return (GCT_INTPTR)c;
}

static void queue_and_close(struct conn *c, int n, int reason) {
  char buf[32];
  for (int i = 0; i < n; i++) {
    snprintf(buf, sizeof buf, "%d", i);
    api.connectionAddMessage(c->handle, buf, strlen(buf), i + 1);
  }
  int a = api.connectionClose(c->handle, reason);
  int b = api.connectionClose(c->handle, reason);
  rec("close_rc %d %d %d", c->id, a, b);
}

GC_ADAPTER_EVENT void on_message(GCT_INTPTR user, GCT_PTR data, GCT_SIZE len) {
  struct conn *c = (struct conn *)user;
  char cmd[128];
  size_t n = len < sizeof cmd - 1 ? len : sizeof cmd - 1;
  memcpy(cmd, data, n);
  cmd[n] = '\0';
  rec("message %d %zu", c->id, (size_t)len);
  int count, ms;
  long big;
  char mode[16];
  char buf[128];
  if (sscanf(cmd, "queue %d %15s", &count, mode) == 2) {
    queue_and_close(c, count, strcmp(mode, "drop") == 0 ? GC_CLOSE_REASON_DROP
                                                        : GC_CLOSE_REASON_NORMAL);
  } else if (strcmp(cmd, "badreason") == 0) {
    snprintf(buf, sizeof buf, "rc %d", (int)api.connectionClose(c->handle, 7));
    reply(c, buf);
  } else if (strcmp(cmd, "stale") == 0) {
    snprintf(buf, sizeof buf, "stale %d %d %d",
             (int)api.connectionAddMessage(last_closed_handle, (GCT_PTR) "x", 1, 0),
             (int)api.connectionClose(last_closed_handle, GC_CLOSE_REASON_NORMAL),
             (int)api.connectionSetTimer(last_closed_handle, 10));
    reply(c, buf);
  } else if (sscanf(cmd, "timer-close %d", &ms) == 1) {
    api.connectionSetTimer(c->handle, ms);
    api.connectionClose(c->handle, GC_CLOSE_REASON_NORMAL);
  } else if (sscanf(cmd, "timer %d", &ms) == 1) {
    snprintf(buf, sizeof buf, "timer-rc %d", (int)api.connectionSetTimer(c->handle, ms));
    reply(c, buf);
  } else if (sscanf(cmd, "big %ld", &big) == 1 && big >= 0) {
    char *p = calloc(1, (size_t)big + 1);
    rec("big_rc %d %d", c->id,
        p ? (int)api.connectionAddMessage(c->handle, p, (GCT_SIZE)big, 0) : ENOMEM);
    free(p);
  } else {
    int rc = api.connectionAddMessage(c->handle, data, len, 0);
    if (rc)
      rec("echo_rc %d %d", c->id, rc);
  }
}

GC_ADAPTER_EVENT void on_message_sent(GCT_INTPTR user, GCT_INTPTR cookie, GCT_SIZE len,
                                      GCT_INT status) {
  struct conn *c = (struct conn *)user;
  if (cookie)
    rec("sent %d %ld %zu %d", c->id, (long)cookie, (size_t)len, (int)status);
}

GC_ADAPTER_EVENT void on_timer(GCT_INTPTR user) {
  struct conn *c = (struct conn *)user;
  rec("timer %d", c->id);
  reply(c, "timer");
}

GC_ADAPTER_EVENT void on_disconnect(GCT_INTPTR user) {
  struct conn *c = (struct conn *)user;
  rec("disconnect %d", c->id);
  atomic_store(&last_closed_handle, c->handle);
  free(c);
}
