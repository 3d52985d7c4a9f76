/* listen.c - a loop's listening sockets: one per vhost address (shared
 * by the loops with SO_REUSEPORT when there are several), accepting, and
 * refusing clients near the open-file limit. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"
#include "tls.h"


/* Descriptors kept free for the host (a log file reopened, an adapter's
 * files, libuv): a client that would leave fewer is refused. */
#define GC_FD_RESERVE 8

/* The lowest free descriptor, as the next open() or accept() would get
 * it (found by duplicating 'open_fd'); -1 when there is none (EMFILE),
 * INT_MAX when it cannot be told. */
static int lowest_free_fd(int open_fd) {
  int fd = fcntl(open_fd, F_DUPFD_CLOEXEC, 0);
  if (fd >= 0)
    close(fd);
  return fd >= 0 ? fd : errno == EMFILE ? -1 : INT_MAX;
}

/* At the open-file limit libuv accepts and closes clients itself (its
 * uv__emfile_trick, a spare descriptor freed for the purpose), without a
 * word to us, so gcs refuses them first, while it still has a few
 * descriptors left, and says so. Checked only near the limit: one fcntl
 * per accept there, nothing on the usual path. */
static bool fd_limit_near(struct gc_listener *l) {
  struct gc_loop *loop = l->loop;
  uv_os_fd_t lfd;
  if (!loop->fd_limit ||
      (uint64_t)atomic_load_explicit(&loop->server->conn_total, memory_order_relaxed) +
              (uint64_t)loop->fd_base + 64 < loop->fd_limit ||
      uv_fileno((uv_handle_t *)&l->tcp, &lfd) != 0)
    return false;
  int fd = lowest_free_fd(lfd);
  return fd < 0 || (fd != INT_MAX && (uint64_t)fd + GC_FD_RESERVE >= loop->fd_limit);
}

/* Takes the client off the backlog and closes it (or accept spins). */
static void refuse_client(struct gc_listener *l) {
  struct gc_loop *loop = l->loop;
  gc__conn_refuse_pending(l);
  if (gc__loop_conn_log_take(loop, GCL_WARN))
    gc_log(GCL_WARN,
           "refused a client on %s:%d: the open-file limit (%llu) is reached "
           "with %zu connections; raise it (ulimit -n, systemd LimitNOFILE=)",
           l->ip, l->port, (unsigned long long)loop->fd_limit,
           (size_t)atomic_load(&loop->server->conn_total));
}

static void on_connection(uv_stream_t *server, int status) {
  struct gc_listener *l = server->data;
  if (status < 0) {
    /* EMFILE without libuv's spare descriptor, ENOBUFS, ...: one line per
     * attempt otherwise. */
    if (gc__loop_conn_log_take(l->loop, GCL_WARN))
      gc_log(GCL_WARN, "accept on %s:%d: %s", l->ip, l->port,
             uv_strerror(status));
    return;
  }
  if (fd_limit_near(l)) {
    refuse_client(l);
    return;
  }
  gc__conn_accept(l);
}

static struct gc_listener *listener_find(struct gc_loop *loop, const char *ip,
                                         int port) {
  for (size_t i = 0; i < loop->listener_count; i++)
    if (loop->listeners[i]->port == port && strcmp(loop->listeners[i]->ip, ip) == 0)
      return loop->listeners[i];
  return NULL;
}

/* The port a bound listener got (vhost port 0: the kernel's choice), or 0. */
static int bound_port(uv_tcp_t *t) {
  struct sockaddr_storage ss;
  int sl = sizeof ss;
  if (uv_tcp_getsockname(t, (struct sockaddr *)&ss, &sl) != 0)
    return 0;
  return ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                  : ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* A listening socket on 'addr'. With several workers every loop has its
 * own, bound with SO_REUSEPORT so the kernel spreads clients over them
 * (libuv 1.44 has no UV_TCP_REUSEPORT); a probe without it first, so that
 * a port another process holds is refused as with one worker. 0, or a
 * negative errno. */
static int open_listener(struct gc_loop *loop, struct gc_listener *l,
                         const struct sockaddr *addr) {
  socklen_t len = addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
  int shared = loop->server->loop_count > 1;
  int one = 1;
  if (shared && loop->id == 0 && ((const struct sockaddr_in *)addr)->sin_port) {
    int probe = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0)
      return -errno;
    (void)setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = bind(probe, addr, len) == 0 ? 0 : -errno;
    close(probe);
    if (rc)
      return rc;
  }
  int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  int rc = 0;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      (shared && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
      bind(fd, addr, len) != 0)
    rc = -errno;
  if (rc) {
    close(fd);
    return rc;
  }
  if ((rc = uv_tcp_init(&loop->uv, &l->tcp)) != 0) {
    close(fd);
    return rc;
  }
  l->tcp.data = l;
  if ((rc = uv_tcp_open(&l->tcp, fd)) != 0) {
    close(fd);
    return rc;
  }
  return uv_listen((uv_stream_t *)&l->tcp, 511, on_connection);
}

/* The port loop 0 got for ('ip', port 0), which every loop shares. */
static int first_loop_port(struct gc_loop *loop, const char *ip) {
  struct gc_loop *first = loop->server->loops[0];
  for (size_t i = 0; first != loop && i < first->listener_count; i++)
    if (first->listeners[i]->conf_port == 0 && strcmp(first->listeners[i]->ip, ip) == 0)
      return first->listeners[i]->port;
  return 0;
}

int gc__loop_listeners_open(struct gc_loop *loop, int bind_sockets, char *err,
                            size_t errlen) {
  struct gc_config *cfg = loop->server->cfg;
  for (size_t i = 0; i < cfg->vhost_count; i++) {
    const struct gc_vhost_conf *v = &cfg->vhosts[i];
    struct gc_app *app = gc_server_app_by_name(loop->server, v->app);
    if (!app) {
      snprintf(err, errlen, "vhosts[%zu]: unknown app \"%s\"", i, v->app);
      return EINVAL;
    }
    struct gc_listener *l = listener_find(loop, v->ip, v->port);
    if (!l) {
      struct gc_listener **ls = gc_realloc(
          loop->listeners, (loop->listener_count + 1) * sizeof *ls);
      if (!ls)
        return ENOMEM;
      loop->listeners = ls;
      l = gc_calloc(1, sizeof *l);
      if (!l)
        return ENOMEM;
      ls[loop->listener_count++] = l;
      l->loop = loop;
      l->port = l->conf_port = v->port;
      l->protocol = v->protocol;
      if (v->protocol == GC_PROTOCOL_WSS && bind_sockets &&
          !(l->tls = gc_tls_keys_find(loop->server, v->ssl_keys_path))) {
        snprintf(err, errlen, "vhosts[%zu]: its TLS keys are not loaded", i);
        return EINVAL;
      }
      snprintf(l->ip, sizeof l->ip, "%s", v->ip);
      if (!bind_sockets)
        goto add_app;
      struct sockaddr_storage addr;
      int port = v->port ? v->port : first_loop_port(loop, v->ip);
      int rc = strchr(v->ip, ':')
                   ? uv_ip6_addr(v->ip, port, (struct sockaddr_in6 *)&addr)
                   : uv_ip4_addr(v->ip, port, (struct sockaddr_in *)&addr);
      if (rc) {
        snprintf(err, errlen, "vhosts[%zu]: bad ip \"%s\"", i, v->ip);
        return EINVAL;
      }
      if ((rc = open_listener(loop, l, (struct sockaddr *)&addr)) != 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", v->ip, v->port,
                 uv_strerror(rc));
        return EADDRINUSE;
      }
      if (loop->id != 0) {
        /* loop 0 said where the server listens */
      } else if (v->port || gc_log_enabled(GCL_NOTICE)) {
        gc_log(GCL_NOTICE, "listening on %s://%s:%d", l->tls ? "wss" : "ws",
               v->ip, v->port ? v->port : bound_port(&l->tcp));
      } else {
        /* Port 0: this line is the only way to learn the port, whatever
         * the level mask says. */
        char line[128];
        snprintf(line, sizeof line, "listening on %s://%s:%d",
                 l->tls ? "wss" : "ws", v->ip, bound_port(&l->tcp));
        gc_log_urgent(GCL_NOTICE, line);
      }
    }
  add_app:
    for (size_t k = 0; k < l->app_count; k++)
      if (l->apps[k] == app) {
        app = NULL;
        break;
      }
    if (!app)
      continue;
    struct gc_app **apps =
        gc_realloc(l->apps, (l->app_count + 1) * sizeof *apps);
    if (!apps)
      return ENOMEM;
    l->apps = apps;
    apps[l->app_count++] = app;
  }
  /* Port 0: the kernel chose one per ip, which every port-0 vhost on that
   * ip shares (as vhosts naming one port do); from now on the listener goes
   * by the port it got. */
  for (size_t i = 0; bind_sockets && i < loop->listener_count; i++)
    if (loop->listeners[i]->port == 0)
      loop->listeners[i]->port = bound_port(&loop->listeners[i]->tcp);
  /* What the descriptor check on accept needs (real sockets only). */
  struct rlimit rl;
  uv_os_fd_t lfd;
  if (loop->listener_count && loop->listeners[0]->tcp.loop &&
      uv_fileno((uv_handle_t *)&loop->listeners[0]->tcp, &lfd) == 0 &&
      getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    int fd = lowest_free_fd(lfd);
    if (fd != INT_MAX) {
      loop->fd_limit = (uint64_t)rl.rlim_cur;
      loop->fd_base = fd < 0 ? (int)rl.rlim_cur : fd;
    }
  }
  return 0;
}

