/* lws_echo.c - a WebSocket echo server on libwebsockets (Debian's
 * libwebsockets-dev), written the way its minimal examples are: received
 * messages are queued per connection, lws_callback_on_writable() asks for a
 * WRITEABLE callback, and each one lws_write()s one message (lws's rule: one
 * lws_write per writeable callback). Default lws event loop (poll).
 *
 * usage: lws_echo PORT [ADDRESS [CERT KEY]]   SIGTERM / SIGINT stop it.
 * With CERT and KEY (PEM files) it serves wss: lws's own OpenSSL setup,
 * as its minimal-ws-server-tls example does. */
#include <libwebsockets.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define QUEUE_PAUSE 512 /* messages queued: stop reading until drained */

struct msg {
  struct msg *next;
  size_t len;
  int binary;
  unsigned char buf[]; /* LWS_PRE bytes of headroom, then the payload */
};

struct pss {
  struct msg *head, *tail;
  unsigned count;
  int paused;
  unsigned char *frag; /* a message arriving in several fragments */
  size_t frag_len, frag_cap;
};

static volatile sig_atomic_t interrupted;
static struct lws_context *context;

static int enqueue(struct pss *p, const void *data, size_t len, int binary) {
  struct msg *m = malloc(sizeof *m + LWS_PRE + len);
  if (!m)
    return -1;
  m->next = NULL;
  m->len = len;
  m->binary = binary;
  if (len)
    memcpy(m->buf + LWS_PRE, data, len);
  if (p->tail)
    p->tail->next = m;
  else
    p->head = m;
  p->tail = m;
  p->count++;
  return 0;
}

static int callback_echo(struct lws *wsi, enum lws_callback_reasons reason,
                         void *user, void *in, size_t len) {
  struct pss *p = user;
  switch (reason) {
  case LWS_CALLBACK_ESTABLISHED:
    memset(p, 0, sizeof *p);
    break;
  case LWS_CALLBACK_RECEIVE: {
    int binary = lws_frame_is_binary(wsi);
    int first = lws_is_first_fragment(wsi), final = lws_is_final_fragment(wsi);
    if (first && final) {
      if (enqueue(p, in, len, binary))
        return -1;
    } else {
      if (first)
        p->frag_len = 0;
      if (p->frag_len + len > p->frag_cap) {
        size_t cap = p->frag_cap ? p->frag_cap : 4096;
        while (cap < p->frag_len + len)
          cap *= 2;
        unsigned char *f = realloc(p->frag, cap);
        if (!f)
          return -1;
        p->frag = f;
        p->frag_cap = cap;
      }
      memcpy(p->frag + p->frag_len, in, len);
      p->frag_len += len;
      if (!final)
        break;
      if (enqueue(p, p->frag, p->frag_len, binary))
        return -1;
    }
    if (p->count >= QUEUE_PAUSE && !p->paused) {
      p->paused = 1;
      lws_rx_flow_control(wsi, 0);
    }
    lws_callback_on_writable(wsi);
    break;
  }
  case LWS_CALLBACK_SERVER_WRITEABLE: {
    struct msg *m = p->head;
    if (!m)
      break;
    int n = lws_write(wsi, m->buf + LWS_PRE, m->len,
                      m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
    if (n < (int)m->len)
      return -1;
    p->head = m->next;
    if (!p->head)
      p->tail = NULL;
    p->count--;
    free(m);
    if (p->paused && p->count < QUEUE_PAUSE / 2) {
      p->paused = 0;
      lws_rx_flow_control(wsi, 1);
    }
    if (p->head)
      lws_callback_on_writable(wsi);
    break;
  }
  case LWS_CALLBACK_CLOSED:
    while (p->head) {
      struct msg *m = p->head;
      p->head = m->next;
      free(m);
    }
    p->tail = NULL;
    free(p->frag);
    p->frag = NULL;
    break;
  default:
    return lws_callback_http_dummy(wsi, reason, user, in, len);
  }
  return 0;
}

/* protocols[0] also takes the upgrades that name no subprotocol. */
static const struct lws_protocols protocols[] = {
    {"echo", callback_echo, sizeof(struct pss), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0}};

static void on_signal(int sig) {
  (void)sig;
  interrupted = 1;
  if (context)
    lws_cancel_service(context);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: lws_echo PORT [ADDRESS [CERT KEY]]\n");
    return 1;
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  signal(SIGPIPE, SIG_IGN);
  lws_set_log_level(LLL_ERR, NULL);
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof info);
  info.port = atoi(argv[1]);
  info.iface = argc > 2 ? argv[2] : "127.0.0.1";
  info.protocols = protocols;
  if (argc > 4) {
    info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.ssl_cert_filepath = argv[3];
    info.ssl_private_key_filepath = argv[4];
  }
  context = lws_create_context(&info);
  if (!context) {
    fprintf(stderr, "lws_echo: lws_create_context failed\n");
    return 1;
  }
  while (!interrupted)
    if (lws_service(context, 0) < 0)
      break;
  lws_context_destroy(context);
  return 0;
}
