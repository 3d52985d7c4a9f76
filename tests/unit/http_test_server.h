/* http_test_server.h - test_http_client.c's HTTP/1.1 server on 127.0.0.1:
 * a thread per connection, plain blocking sockets, each answer chosen by
 * the request's path so a test controls exactly what the server does
 * (keep the connection, close it unanswered, never answer, send too much).
 * Included once, by that test. */
#ifndef GC_HTTP_TEST_SERVER_H
#define GC_HTTP_TEST_SERVER_H

static int srv_fd = -1, srv_port;
static atomic_int srv_conns, srv_stop;
static pthread_t srv_thread;
static pthread_t handlers[256];
static atomic_int nhandlers;
static char srv_last_head[4096]; /* the last request's head, for /reqheaders */
static pthread_mutex_t srv_mu = PTHREAD_MUTEX_INITIALIZER;

static void put(int fd, const char *s, size_t n) {
  while (n) {
    ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
    if (k <= 0)
      return;
    s += k;
    n -= (size_t)k;
  }
}
static void puts_(int fd, const char *s) { put(fd, s, strlen(s)); }

static void answer(int fd, const char *status, const char *extra, const char *body) {
  char head[1024];
  snprintf(head, sizeof head, "HTTP/1.1 %s\r\n%sContent-Length: %zu\r\n\r\n",
           status, extra, strlen(body));
  puts_(fd, head);
  puts_(fd, body);
}

/* One connection: requests in turn until the client leaves or the path
 * says otherwise. */
static void *handle(void *arg) {
  int fd = (int)(intptr_t)arg;
  char buf[8192];
  size_t have = 0;
  for (int nreq = 1;; nreq++) {
    char *end;
    while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
      ssize_t k = recv(fd, buf + have, sizeof buf - 1 - have, 0);
      if (k <= 0)
        goto out;
      have += (size_t)k;
      if (buf[0] == 0x16) { /* a TLS ClientHello: answered as HTTP */
        puts_(fd, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
        goto out;
      }
    }
    size_t hlen = (size_t)(end - buf) + 4;
    buf[have] = '\0';
    char method[16], path[256];
    if (sscanf(buf, "%15s %255s", method, path) != 2)
      goto out;
    size_t clen = 0;
    char *cl = strcasestr(buf, "\r\ncontent-length:");
    if (cl && cl < end)
      clen = strtoul(cl + 17, NULL, 10);
    while (have < hlen + clen) {
      ssize_t k = recv(fd, buf + have, sizeof buf - 1 - have, 0);
      if (k <= 0)
        goto out;
      have += (size_t)k;
    }
    char body[4096];
    snprintf(body, sizeof body, "%.*s", (int)clen, buf + hlen);
    pthread_mutex_lock(&srv_mu);
    snprintf(srv_last_head, sizeof srv_last_head, "%.*s", (int)hlen, buf);
    pthread_mutex_unlock(&srv_mu);
    memmove(buf, buf + hlen + clen, have - hlen - clen);
    have -= hlen + clen;
    char out[8300];
    if (strcmp(path, "/hello") == 0) {
      answer(fd, "200 OK", "X-Test: a\r\nContent-Type: text/plain\r\nX-Test: b\r\n",
             "hello");
    } else if (strcmp(path, "/echo") == 0) {
      snprintf(out, sizeof out, "%s:%s", method, body);
      answer(fd, "201 Created", "", out);
    } else if (strcmp(path, "/reqheaders") == 0) {
      pthread_mutex_lock(&srv_mu);
      snprintf(out, sizeof out, "%s", srv_last_head);
      pthread_mutex_unlock(&srv_mu);
      answer(fd, "200 OK", "", out);
    } else if (strcmp(path, "/chunked") == 0) {
      puts_(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    } else if (strcmp(path, "/bigchunked") == 0) {
      puts_(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
      char chunk[1100];
      memset(chunk, 'x', 1000);
      for (int i = 0; i < 3; i++) {
        puts_(fd, "3e8\r\n");
        put(fd, chunk, 1000);
        puts_(fd, "\r\n");
      }
      puts_(fd, "0\r\n\r\n");
    } else if (strcmp(path, "/big") == 0) {
      puts_(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
      static char x[100000];
      memset(x, 'x', sizeof x);
      put(fd, x, sizeof x);
    } else if (strcmp(path, "/flaky") == 0) {
      if (nreq > 1)
        goto out; /* a pooled connection the server closes unanswered */
      answer(fd, "200 OK", "", "ok");
    } else if (strcmp(path, "/slow") == 0) {
      while (recv(fd, buf, sizeof buf, 0) > 0) /* until the client leaves */
        ;
      goto out;
    } else if (strcmp(path, "/redirect") == 0) {
      answer(fd, "302 Found", "Location: hello\r\n", "");
    } else if (strcmp(path, "/redirect-post") == 0) {
      snprintf(out, sizeof out, "Location: http://127.0.0.1:%d/echo\r\n", srv_port);
      answer(fd, "303 See Other", out, "");
    } else if (strcmp(path, "/redirect-https") == 0) {
      answer(fd, "301 Moved", "Location: https://127.0.0.1:1/x\r\n", "");
    } else if (strcmp(path, "/close") == 0) {
      answer(fd, "200 OK", "Connection: close\r\n", "bye");
      goto out;
    } else {
      answer(fd, "404 Not Found", "", "none");
    }
  }
out:
  close(fd);
  return NULL;
}

static void *accept_loop(void *arg) {
  (void)arg;
  for (;;) {
    int fd = accept(srv_fd, NULL, NULL);
    if (fd < 0 || atomic_load(&srv_stop)) {
      if (fd >= 0)
        close(fd);
      return NULL;
    }
    atomic_fetch_add(&srv_conns, 1);
    int i = atomic_fetch_add(&nhandlers, 1);
    assert_true(i < 256);
    assert_int_equal(pthread_create(&handlers[i], NULL, handle, (void *)(intptr_t)fd), 0);
  }
}

static int server_start(void) {
  srv_fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(srv_fd >= 0);
  int one = 1;
  (void)setsockopt(srv_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(srv_fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(srv_fd, (struct sockaddr *)&a, &len), 0);
  assert_int_equal(listen(srv_fd, 64), 0);
  srv_port = ntohs(a.sin_port);
  atomic_store(&srv_conns, 0);
  atomic_store(&srv_stop, 0);
  atomic_store(&nhandlers, 0);
  assert_int_equal(pthread_create(&srv_thread, NULL, accept_loop, NULL), 0);
  return 0;
}

/* Handlers end when their client leaves: the loop is closed first. */
static void server_stop(void) {
  atomic_store(&srv_stop, 1);
  shutdown(srv_fd, SHUT_RDWR);
  pthread_join(srv_thread, NULL);
  close(srv_fd);
  for (int i = 0; i < atomic_load(&nhandlers); i++)
    pthread_join(handlers[i], NULL);
}

#endif
