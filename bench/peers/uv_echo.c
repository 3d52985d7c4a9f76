/* uv_echo.c - a bare libuv TCP echo (no WebSocket): the ceiling of this
 * machine's loop for `make bench`. Every byte read is written back, with
 * uv_try_write first and a uv_write (reading paused) for what the kernel did
 * not take. One 64 KiB read buffer for the whole loop: an idle connection
 * owns nothing but its uv_tcp_t.
 *
 * usage: uv_echo PORT [ADDRESS]        SIGTERM / SIGINT stop it. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

struct conn {
  uv_tcp_t tcp;
  uv_write_t wreq;
  char *pend; /* what uv_write still holds */
};

static uv_loop_t *loop;
static char rbuf[65536];

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h, (void)suggested;
  *buf = uv_buf_init(rbuf, sizeof rbuf);
}

static void on_closed(uv_handle_t *h) {
  struct conn *c = h->data;
  free(c->pend);
  free(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_written(uv_write_t *req, int status) {
  struct conn *c = req->data;
  free(c->pend);
  c->pend = NULL;
  if (status < 0) {
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
      uv_close((uv_handle_t *)&c->tcp, on_closed);
    return;
  }
  if (!uv_is_closing((uv_handle_t *)&c->tcp))
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct conn *c = s->data;
  if (nread == 0)
    return;
  if (nread < 0) {
    uv_close((uv_handle_t *)s, on_closed);
    return;
  }
  uv_buf_t b = uv_buf_init(buf->base, (unsigned)nread);
  int n = uv_try_write(s, &b, 1);
  if (n == UV_EAGAIN)
    n = 0;
  if (n < 0) {
    uv_close((uv_handle_t *)s, on_closed);
    return;
  }
  if (n == nread)
    return;
  size_t rest = (size_t)nread - (size_t)n;
  c->pend = malloc(rest);
  if (!c->pend) {
    uv_close((uv_handle_t *)s, on_closed);
    return;
  }
  memcpy(c->pend, buf->base + n, rest);
  b = uv_buf_init(c->pend, (unsigned)rest);
  c->wreq.data = c;
  uv_read_stop(s);
  if (uv_write(&c->wreq, s, &b, 1, on_written) != 0)
    uv_close((uv_handle_t *)s, on_closed);
}

static void on_connection(uv_stream_t *server, int status) {
  if (status < 0)
    return;
  struct conn *c = calloc(1, sizeof *c);
  if (!c)
    return;
  uv_tcp_init(loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    uv_close((uv_handle_t *)&c->tcp, on_closed);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_signal(uv_signal_t *h, int sig) {
  (void)sig;
  uv_stop(h->loop);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: uv_echo PORT [ADDRESS]\n");
    return 1;
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  loop = uv_default_loop();
  uv_tcp_t server;
  struct sockaddr_in addr;
  uv_ip4_addr(argc > 2 ? argv[2] : "127.0.0.1", atoi(argv[1]), &addr);
  uv_tcp_init(loop, &server);
  int rc = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
  if (!rc)
    rc = uv_listen((uv_stream_t *)&server, 511, on_connection);
  if (rc) {
    fprintf(stderr, "uv_echo: %s\n", uv_strerror(rc));
    return 1;
  }
  uv_signal_t sigterm, sigint;
  uv_signal_init(loop, &sigterm);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_signal_init(loop, &sigint);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}
