/* http_fetch.c - a test adapter that makes HTTP requests through
 * api->httpRequest (API 1.4) from on_message and answers with what came
 * back. Only <game-carrier/server.h> and libc, as a third party's would.
 *
 * Commands (text messages from the client):
 *   "GET <url>"           -> "<status> <x-test header or -> <body>"
 *   "POST <url> <body>"   -> the same
 *   "CANCEL <url>"        a GET cancelled at once
 *   "XCANCEL <url>"       a GET cancelled from a thread of the adapter's
 *                         own ("xcancel <rc>" when that call fails)
 *   "TIMEOUT <ms> <url>"  a GET with that timeout
 *   "FOLLOW <url>"        a GET following up to 3 redirects
 * A failure answers "err <errno> <err_text>", a refused call
 * "refused <errno>". An answer on another worker than the request's, or
 * inside httpRequest, is "wrong thread" / "inside". application_shutdown
 * writes to stderr how many requests the shutdown cancelled. */
#include <errno.h>
#include <game-carrier/server.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct core_api api;
static _Thread_local int in_request;
static atomic_int stopping, cancelled_by_stop, late;

struct conn {
  GCT_INTPTR handle;
  GCT_INT app_id;
};

/* What a request carries to its callback (the connection may be gone by
 * then: its handle is then stale and the answer is refused, harmlessly). */
struct pending {
  GCT_INTPTR handle;
  GCT_INT worker;
};

static void send_text(GCT_INTPTR h, const char *text) {
  api.connectionAddMessageEx(h, text, strlen(text), 0, GC_MESSAGE_TEXT);
}

static void on_answer(GCT_INTPTR user, GCT_INT err, GCT_CSTR err_text,
                      const struct gc_http_response *res) {
  struct pending *p = (struct pending *)user;
  char buf[4200];
  if (atomic_load(&late))
    atomic_fetch_add(&late, 1); /* after application_shutdown: a bug */
  if (err == ECANCELED && atomic_load(&stopping))
    atomic_fetch_add(&cancelled_by_stop, 1);
  if (in_request)
    snprintf(buf, sizeof buf, "inside");
  else if (api.workerId() != p->worker)
    snprintf(buf, sizeof buf, "wrong thread");
  else if (err)
    snprintf(buf, sizeof buf, "err %d %s", (int)err, err_text);
  else {
    const char *xt = "-";
    for (GCT_SIZE i = 0; i < res->header_count; i++)
      if (strcmp(res->headers[i].name, "x-test") == 0)
        xt = res->headers[i].value;
    snprintf(buf, sizeof buf, "%d %s %.*s", (int)res->status, xt,
             (int)(res->body_len < 4000 ? res->body_len : 4000),
             (const char *)res->body);
  }
  send_text(p->handle, buf);
  free(p);
}

GC_ADAPTER_EVENT GCT_INT adapter_initialize(GCT_INT adapter_id, struct core_api *core,
                                            GCT_CPTR load_path) {
  (void)adapter_id, (void)load_path;
  api = *core;
  return api.httpRequest && api.httpCancel ? 0 : 1; /* needs API 1.4 */
}
GC_ADAPTER_EVENT GCT_INT application_initialize(GCT_INT app_id, GCT_CSTR name,
                                                GCT_CSTR type_name, GCT_CSTR file_name) {
  (void)app_id, (void)name, (void)type_name, (void)file_name;
  return 0;
}
GC_ADAPTER_EVENT void application_start(GCT_INT app_id) { (void)app_id; }
GC_ADAPTER_EVENT void application_stop(GCT_INT app_id) {
  (void)app_id;
  atomic_store(&stopping, 1);
}
/* The shutdown's requests ended before this (ECANCELED): says how many. */
GC_ADAPTER_EVENT void application_shutdown(GCT_INT app_id) {
  (void)app_id;
  if (atomic_load(&cancelled_by_stop))
    fprintf(stderr, "http_fetch: %d request(s) cancelled by the shutdown\n",
            atomic_load(&cancelled_by_stop));
  atomic_store(&late, 1);
}
GC_ADAPTER_EVENT void adapter_finalize(GCT_INT adapter_id) {
  (void)adapter_id;
  if (atomic_load(&late) > 1)
    fprintf(stderr, "http_fetch: %d callback(s) after application_shutdown\n",
            atomic_load(&late) - 1);
}

GC_ADAPTER_EVENT GCT_INTPTR on_connect(GCT_INT app_id, GCT_INTPTR h, GCT_INT pid,
                                       GCT_CSTR rip, GCT_INT rport, GCT_CSTR lip,
                                       GCT_INT lport, GCT_CSTR udata) {
  (void)pid, (void)rip, (void)rport, (void)lip, (void)lport, (void)udata;
  struct conn *c = malloc(sizeof *c);
  if (!c)
    return GC_DROP_CONNECTION;
  c->handle = h;
  c->app_id = app_id;
  return (GCT_INTPTR)c;
}

GC_ADAPTER_EVENT void on_disconnect(GCT_INTPTR user) { free((void *)user); }

struct xcancel {
  GCT_INTPTR id;
  GCT_INT rc;
};

static void *cancel_thread(void *arg) {
  struct xcancel *x = arg;
  x->rc = api.httpCancel(x->id);
  return NULL;
}

GC_ADAPTER_EVENT void on_message(GCT_INTPTR user, GCT_PTR data, GCT_SIZE len) {
  struct conn *c = (struct conn *)user;
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "%.*s", (int)(len < sizeof cmd ? len : sizeof cmd - 1),
           (const char *)data);
  char *sp = strchr(cmd, ' ');
  if (!sp) {
    send_text(c->handle, "?");
    return;
  }
  *sp = '\0';
  char *url = sp + 1;
  struct gc_http_request req = {.method = "GET"};
  if (strcmp(cmd, "POST") == 0) {
    req.method = "POST";
    char *b = strchr(url, ' ');
    if (b) {
      *b = '\0';
      req.body = b + 1;
      req.body_len = strlen(b + 1);
    }
  } else if (strcmp(cmd, "FOLLOW") == 0) {
    req.max_redirects = 3;
  } else if (strcmp(cmd, "TIMEOUT") == 0) {
    req.timeout_ms = atoi(url);
    url = strchr(url, ' ') ? strchr(url, ' ') + 1 : url;
  }
  req.url = url;
  struct pending *p = malloc(sizeof *p);
  if (!p)
    return;
  p->handle = c->handle;
  p->worker = api.workerId();
  GCT_INT err = 0;
  in_request = 1;
  GCT_INTPTR id = api.httpRequest(c->app_id, &req, on_answer, (GCT_INTPTR)p, &err);
  in_request = 0;
  if (!id) {
    char buf[64];
    snprintf(buf, sizeof buf, "refused %d", (int)err);
    send_text(c->handle, buf);
    free(p);
    return;
  }
  if (strcmp(cmd, "CANCEL") == 0 && api.httpCancel(id) != 0)
    send_text(c->handle, "cancel failed");
  if (strcmp(cmd, "XCANCEL") == 0) { /* handed to this worker as a mail */
    struct xcancel x = {id, -1};
    pthread_t t;
    if (pthread_create(&t, NULL, cancel_thread, &x) == 0)
      pthread_join(t, NULL);
    if (x.rc != 0) {
      char buf[32];
      snprintf(buf, sizeof buf, "xcancel %d", (int)x.rc);
      send_text(c->handle, buf);
    }
  }
}

GC_ADAPTER_EVENT void on_message_sent(GCT_INTPTR user, GCT_INTPTR cookie, GCT_SIZE len,
                                      GCT_INT status) {
  (void)user, (void)cookie, (void)len, (void)status;
}
GC_ADAPTER_EVENT void on_timer(GCT_INTPTR user) { (void)user; }
GC_ADAPTER_EVENT GCT_INT on_issue(GCT_INTPTR user, GCT_INT id, GCT_COUNTER_VALUE value) {
  (void)user, (void)id;
  (void)value;
  return 0;
}
