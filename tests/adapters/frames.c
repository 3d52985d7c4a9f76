/* frames.c - a test adapter for the members of API 1.2: frame types
 * (connectionAddMessageEx, connectionsBroadcastEx), close codes and
 * reasons (connectionCloseEx) and the HTTP answer of a refusal
 * (connectionRefuse), from a worker and from a thread of its own. Only
 * <game-carrier/server.h>, libc and pthreads, as a third party's would.
 * It serves any number of apps; tests/e2e/frames.test.js gives it one
 * with "message_type": "text" and one without, on two workers.
 *
 * on_connect, by the request target:
 *   "refuse401"     connectionRefuse(401, "bad token"), then refuses
 *   "refuse-check"  refuses with 400 and the body "rcs A B C D E": the rcs
 *                   of connectionRefuse with status 200, status 101, a body
 *                   with a CR LF, a body of 257 bytes, and a good one
 *   "refuse-plain"  refuses without connectionRefuse (403)
 *   "refuse-accept" connectionRefuse(401, ...), then accepts
 * Commands (messages from the client); every reply is a text frame:
 *   "ex"         queues "T" (TEXT), "B" (BINARY), "D" (DEFAULT), 0xff
 *                (BINARY), then replies "ex <rcs>": those four, then 0xff
 *                as TEXT and as DEFAULT, and flags 3
 *   "bc"         connectionsBroadcastEx to every connection: "all-text"
 *                (TEXT), "all-bin" (BINARY), "all-def" (DEFAULT), 0xfe
 *                (TEXT: refused), 0xfd (DEFAULT: skipped by text apps);
 *                replies "bc <rc>/<queued> ..." for the five
 *   "close C T"  connectionCloseEx(NORMAL, C, T) (T "-": NULL)
 *   "drop C T"   the same with DROP
 *   "closebad"   replies "closebad <rcs>" of connectionCloseEx with code
 *                999, 1001, 2999, 5000, a text of 124 bytes, a text not
 *                UTF-8, reason 7, then connectionRefuse outside on_connect
 *   "thread"     a thread of the adapter's own sends "from-thread" (TEXT),
 *                0xff (TEXT: EILSEQ before it leaves), 0xfc (DEFAULT:
 *                dropped there by a text app), flags 9, then "thread
 *                <rcs>" (TEXT), then closes NORMAL with 4001 "from thread"
 */
#include <errno.h>
#include <game-carrier/server.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct core_api api;

#define MAX_CONNS 64
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static GCT_INTPTR conns[MAX_CONNS]; /* open connections, for "bc" */

struct conn {
  GCT_INTPTR handle;
};

static void conns_add(GCT_INTPTR h) {
  pthread_mutex_lock(&lock);
  for (int i = 0; i < MAX_CONNS; i++)
    if (!conns[i]) {
      conns[i] = h;
      break;
    }
  pthread_mutex_unlock(&lock);
}

static void conns_remove(GCT_INTPTR h) {
  pthread_mutex_lock(&lock);
  for (int i = 0; i < MAX_CONNS; i++)
    if (conns[i] == h)
      conns[i] = 0;
  pthread_mutex_unlock(&lock);
}

static int send_text(GCT_INTPTR h, const char *s) {
  return api.connectionAddMessageEx(h, (GCT_PTR)s, strlen(s), 0, GC_MESSAGE_TEXT);
}

GC_ADAPTER_EVENT GCT_INT adapter_initialize(GCT_INT adapter_id, struct core_api *core,
                                            GCT_CPTR load_path) {
  (void)adapter_id, (void)load_path;
  api = *core;
  return 0;
}

GC_ADAPTER_EVENT GCT_INTPTR on_connect(GCT_INT app_id, GCT_INTPTR handle, GCT_INT pid,
                                       GCT_CSTR rip, GCT_INT rport, GCT_CSTR lip,
                                       GCT_INT lport, GCT_CSTR udata) {
  (void)app_id, (void)pid, (void)rip, (void)rport, (void)lip, (void)lport;
  if (strstr(udata, "refuse401")) {
    api.connectionRefuse(handle, 401, "bad token");
    return GC_DROP_CONNECTION;
  }
  if (strstr(udata, "refuse-check")) {
    char long_text[258];
    memset(long_text, 'x', 257);
    long_text[257] = '\0';
    char body[64];
    snprintf(body, sizeof body, "rcs %d %d %d %d %d",
             (int)api.connectionRefuse(handle, 200, "x"),
             (int)api.connectionRefuse(handle, 101, "x"),
             (int)api.connectionRefuse(handle, 401, "a\r\nb"),
             (int)api.connectionRefuse(handle, 401, long_text),
             (int)api.connectionRefuse(handle, 401, "first"));
    api.connectionRefuse(handle, 400, body); /* replaces "first" */
    return GC_DROP_CONNECTION;
  }
  if (strstr(udata, "refuse-plain"))
    return GC_DROP_CONNECTION;
  if (strstr(udata, "refuse-accept"))
    api.connectionRefuse(handle, 401, "forgotten");
  struct conn *c = malloc(sizeof *c);
  if (!c)
    return GC_DROP_CONNECTION;
  c->handle = handle;
  conns_add(handle);
  return (GCT_INTPTR)c;
}

static void cmd_ex(GCT_INTPTR h) {
  char buf[128];
  int a = api.connectionAddMessageEx(h, "T", 1, 0, GC_MESSAGE_TEXT);
  int b = api.connectionAddMessageEx(h, "B", 1, 0, GC_MESSAGE_BINARY);
  int d = api.connectionAddMessageEx(h, "D", 1, 0, GC_MESSAGE_DEFAULT);
  int e = api.connectionAddMessageEx(h, "\xff", 1, 0, GC_MESSAGE_BINARY);
  int f = api.connectionAddMessageEx(h, "\xff", 1, 0, GC_MESSAGE_TEXT);
  int g = api.connectionAddMessageEx(h, "\xff", 1, 0, GC_MESSAGE_DEFAULT);
  int k = api.connectionAddMessageEx(h, "x", 1, 0, 3);
  snprintf(buf, sizeof buf, "ex %d %d %d %d %d %d %d", a, b, d, e, f, g, k);
  send_text(h, buf);
}

static void cmd_bc(GCT_INTPTR h) {
  GCT_INTPTR to[MAX_CONNS];
  GCT_SIZE n = 0;
  pthread_mutex_lock(&lock);
  for (int i = 0; i < MAX_CONNS; i++)
    if (conns[i])
      to[n++] = conns[i];
  pthread_mutex_unlock(&lock);
  static const struct {
    const char *data;
    int flags;
  } msgs[] = {{"all-text", GC_MESSAGE_TEXT},
              {"all-bin", GC_MESSAGE_BINARY},
              {"all-def", GC_MESSAGE_DEFAULT},
              {"\xfe", GC_MESSAGE_TEXT},
              {"\xfd", GC_MESSAGE_DEFAULT}};
  char buf[256] = "bc";
  for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
    GCT_SIZE queued = 99;
    int rc = api.connectionsBroadcastEx(to, n, (GCT_PTR)msgs[i].data,
                                        strlen(msgs[i].data), 0, msgs[i].flags,
                                        &queued);
    size_t used = strlen(buf);
    snprintf(buf + used, sizeof buf - used, " %d/%zu", rc, (size_t)queued);
  }
  send_text(h, buf);
}

static void cmd_closebad(GCT_INTPTR h) {
  char long_text[125];
  memset(long_text, 'y', 124);
  long_text[124] = '\0';
  char buf[128];
  snprintf(buf, sizeof buf, "closebad %d %d %d %d %d %d %d %d",
           (int)api.connectionCloseEx(h, GC_CLOSE_REASON_NORMAL, 999, NULL),
           (int)api.connectionCloseEx(h, GC_CLOSE_REASON_NORMAL, 1001, NULL),
           (int)api.connectionCloseEx(h, GC_CLOSE_REASON_NORMAL, 2999, NULL),
           (int)api.connectionCloseEx(h, GC_CLOSE_REASON_NORMAL, 5000, NULL),
           (int)api.connectionCloseEx(h, GC_CLOSE_REASON_NORMAL, 4000, long_text),
           (int)api.connectionCloseEx(h, GC_CLOSE_REASON_NORMAL, 4000, "\xc3("),
           (int)api.connectionCloseEx(h, 7, 4000, "x"),
           (int)api.connectionRefuse(h, 401, "not now"));
  send_text(h, buf);
}

static void *thread_main(void *arg) {
  GCT_INTPTR h = (GCT_INTPTR)arg;
  char buf[128];
  int a = send_text(h, "from-thread");
  int b = api.connectionAddMessageEx(h, "\xff", 1, 0, GC_MESSAGE_TEXT);
  int c = api.connectionAddMessageEx(h, "\xfc", 1, 0, GC_MESSAGE_DEFAULT);
  int d = api.connectionAddMessageEx(h, "x", 1, 0, 9);
  snprintf(buf, sizeof buf, "thread %d %d %d %d", a, b, c, d);
  send_text(h, buf);
  api.connectionCloseEx(h, GC_CLOSE_REASON_NORMAL, 4001, "from thread");
  return NULL;
}

GC_ADAPTER_EVENT void on_message(GCT_INTPTR user, GCT_PTR data, GCT_SIZE len) {
  struct conn *c = (struct conn *)user;
  char cmd[160];
  size_t n = len < sizeof cmd - 1 ? len : sizeof cmd - 1;
  memcpy(cmd, data, n);
  cmd[n] = '\0';
  int code;
  char text[130];
  char buf[64];
  if (strcmp(cmd, "ex") == 0) {
    cmd_ex(c->handle);
  } else if (strcmp(cmd, "bc") == 0) {
    cmd_bc(c->handle);
  } else if (strcmp(cmd, "closebad") == 0) {
    cmd_closebad(c->handle);
  } else if (sscanf(cmd, "close %d %129[^\n]", &code, text) == 2 ||
             sscanf(cmd, "drop %d %129[^\n]", &code, text) == 2) {
    int reason = cmd[0] == 'd' ? GC_CLOSE_REASON_DROP : GC_CLOSE_REASON_NORMAL;
    send_text(c->handle, "bye");
    int rc = api.connectionCloseEx(c->handle, reason, code,
                                   strcmp(text, "-") == 0 ? NULL : text);
    if (rc) {
      snprintf(buf, sizeof buf, "close-rc %d", rc);
      send_text(c->handle, buf);
    }
  } else if (strcmp(cmd, "thread") == 0) {
    pthread_t t;
    if (pthread_create(&t, NULL, thread_main, (void *)c->handle) == 0)
      pthread_detach(t);
    else
      send_text(c->handle, "no thread");
  } else {
    send_text(c->handle, "unknown");
  }
}

GC_ADAPTER_EVENT void on_disconnect(GCT_INTPTR user) {
  struct conn *c = (struct conn *)user;
  conns_remove(c->handle);
  free(c);
}
