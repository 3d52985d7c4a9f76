/* main.c - the gcs command line.
 *
 *   gcs [-C FILE]                  serve a Game Carrier JSON config
 *   gcs SCRIPT.lua [-p PORT] [-a ADDR]   serve one Lua script, no config
 *
 * Exit status: 0 after a clean shutdown, 1 on a start-up error, 2 on a
 * bad command line, 3 (GC_EXIT_FORCED) when the shutdown dropped
 * connections (a second signal, or clients that did not close within
 * close_drain_ms), 4 (GC_EXIT_STUCK) when a second signal found the loop
 * stuck and gcs ended at once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <malloc.h>
#include <netdb.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "fd_limit.h"
#include "http_client.h"
#include "internal.h"
#include "log.h"
#include "new_project.h"
#include "paths.h"
#include "tls.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: gcs [-C config.json] [-w N] [--watch]\n"
          "       gcs SCRIPT.lua [-p PORT] [-a ADDRESS] [-w N] [--route ROUTE] [--wss PREFIX] [--watch]\n"
          "       gcs --new NAME\n"
          "\n"
          "  -C FILE     Game Carrier JSON config (default: gcs.json)\n"
          "  -c N        accepted for Game Carrier compatibility, ignored\n"
          "  -p PORT     port for a script (default 7681; 0: any free one, logged)\n"
          "  -a ADDRESS  address for a script (default 0.0.0.0)\n"
          "  -l LEVEL    log level, over the config's logging.level: err, warn,\n"
          "              notice, info or debug (that level and the more severe;\n"
          "              default notice), or a mask as in the config (ERR|WARN)\n"
          "  -w N        worker loops, 1..64 (default: threading.worker_count,\n"
          "              \"auto\": one per CPU)\n"
          "  --route R   a script's route: query.NAME or path (players with the\n"
          "              same key share a worker's Lua state)\n"
          "  --wss PREFIX  a script served over TLS (wss://) with PREFIX.key,\n"
          "              PREFIX.cert and PREFIX.cacert (optional chain)\n"
          "  --watch     reload the Lua scripts when a .lua file next to one\n"
          "              changes (development); SIGHUP reloads them too\n"
          "  --new NAME  write NAME/, a game to start from: script, spec, config\n"
          "  --help      this text\n"
          "  --version   print the version\n");
}

/* The address of '-a NAME' into 'out': a numeric IPv4 or IPv6 address as it
 * is (the listener's rule: a ':' means IPv6), else a host name resolved
 * once, here, to its first IPv4 address (its first IPv6 one if it has
 * none): "localhost" is 127.0.0.1. 0, or 2 (a bad command line) after one
 * line naming -a. */
static int resolve_address(const char *name, char *out, size_t outlen) {
  unsigned char bin[sizeof(struct in6_addr)];
  if (inet_pton(strchr(name, ':') ? AF_INET6 : AF_INET, name, bin) == 1) {
    snprintf(out, outlen, "%s", name);
    return 0;
  }
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
  int rc = *name ? getaddrinfo(name, NULL, &hints, &res) : EAI_NONAME;
  const struct addrinfo *pick = NULL;
  for (int pass = 0; rc == 0 && pass < 2 && !pick; pass++)
    for (const struct addrinfo *p = res; p && !pick; p = p->ai_next)
      if (p->ai_family == (pass ? AF_INET6 : AF_INET))
        pick = p;
  if (pick) {
    const void *addr =
        pick->ai_family == AF_INET
            ? (const void *)&((const struct sockaddr_in *)pick->ai_addr)->sin_addr
            : (const void *)&((const struct sockaddr_in6 *)pick->ai_addr)->sin6_addr;
    if (!inet_ntop(pick->ai_family, addr, out, (socklen_t)outlen))
      pick = NULL;
  }
  if (res)
    freeaddrinfo(res);
  if (pick)
    return 0;
  fprintf(stderr,
          "gcs: -a %s: expected a numeric IPv4 or IPv6 address or a host "
          "name (%s)\n",
          name, rc ? gai_strerror(rc) : "no IPv4 or IPv6 address");
  return 2;
}

/* A one-app config for 'gcs script.lua': the app is named after the file. */
static int script_config(const char *script, const char *addr, int port,
                         const char *route, const char *wss,
                         struct gc_config **cfg, char *err, size_t errlen) {
  const char *base = strrchr(script, '/');
  base = base ? base + 1 : script;
  char name[128];
  snprintf(name, sizeof name, "%s", base);
  char *dot = strrchr(name, '.');
  if (dot && dot != name)
    *dot = '\0';
  json_t *root = json_pack(
      "{s:[{s:s, s:[{s:s, s:s, s:s}]}], s:[{s:s, s:i, s:s, s:s}]}",
      "adapters", "type", "lua", "apps", "name", name, "type_name", "lua",
      "file_name", script, "vhosts", "ip", addr, "port", port, "protocol",
      wss ? "wss" : "ws", "app", name);
  if (!root) {
    snprintf(err, errlen, "out of memory");
    return ENOMEM;
  }
  if (wss)
    (void)json_object_set_new(root, "ssl_keys_path", json_string(wss));
  if (route)
    (void)json_object_set_new(
        json_array_get(json_object_get(json_array_get(json_object_get(root, "adapters"), 0),
                                       "apps"),
                       0),
        "route", json_string(route));
  char *text = json_dumps(root, JSON_INDENT(2));
  json_decref(root);
  if (!text) {
    snprintf(err, errlen, "out of memory");
    return ENOMEM;
  }
  int rc = gc_config_load_string(text, script, cfg, err, errlen);
  free(text);
  return rc;
}

/* Raises the open-file limit and says when max_connections cannot be
 * reached under it (each client is one descriptor; a few are the host's). */
static void fd_limit_check(uint64_t max_connections) {
  uint64_t before, after;
  int rc = gc_fd_limit_raise(&before, &after);
  if (rc != 0)
    gc_log(GCL_WARN, "cannot raise the open-file limit: %s", strerror(rc));
  else if (after != before)
    gc_log(GCL_INFO, "open-file limit raised from %llu to %llu",
           (unsigned long long)before, (unsigned long long)after);
  if (after && max_connections && after != UINT64_MAX &&
      max_connections > after - (after > 64 ? 64 : after))
    gc_log(GCL_WARN,
           "max_connections is %llu but the open-file limit is %llu: clients "
           "past the limit are refused; raise the hard limit (ulimit -Hn, "
           "systemd LimitNOFILE=)",
           (unsigned long long)max_connections, (unsigned long long)after);
  else if (after && !max_connections && after < 4096)
    gc_log(GCL_NOTICE,
           "the open-file limit is %llu, so at most about %llu clients can "
           "connect; raise the hard limit (ulimit -Hn) for more",
           (unsigned long long)after,
           (unsigned long long)(after > 64 ? after - 64 : 0));
}

int main(int argc, char **argv) {
  /* A write to a socket or to stderr whose reader is gone must be an EPIPE
   * error, not death by signal 13 (log.c then stops writing to stderr).
   * Here, not in the host: gc.testing leaves its embedding's disposition. */
  signal(SIGPIPE, SIG_IGN);
  /* The heap goes back to the OS from the loops' housekeeping (malloc_trim,
   * host/loop.c), not from free() whenever its top passes 128 KiB: echoing
   * messages of tens of KiB moved brk up and down at every burst. */
  (void)mallopt(M_TRIM_THRESHOLD, 64 << 20);
  /* Until the loop's SIGHUP handler is in place (at listen): a SIGHUP while
   * scripts load must not end the process either. */
  signal(SIGHUP, SIG_IGN);
  /* Nor a logrotate's SIGUSR1 (loop 0 reopens the log file on it). */
  signal(SIGUSR1, SIG_IGN);
  const char *config_path = NULL, *script = NULL, *addr = "0.0.0.0";
  const char *route = NULL, *wss = NULL;
  int port = 7681;
  long workers_opt = 0;
  int watch = 0;
  int log_mask = -1; /* -l: over the config's logging.level */
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "--version") || !strcmp(a, "-v")) {
      printf("gcs %s (Game Carrier server API %d.%d.%d)\n", GC_VERSION,
             GC_SERVER_API_VERSION_MAJOR, GC_SERVER_API_VERSION_MINOR,
             GC_SERVER_API_VERSION_PATCH);
      return 0;
    } else if (!strcmp(a, "--new")) {
      return gc_new_project(i + 1 < argc ? argv[i + 1] : NULL);
    } else if (!strcmp(a, "--watch")) {
      watch = 1;
    } else if (!strcmp(a, "-l") || !strcmp(a, "--log-level") ||
               !strncmp(a, "--log-level=", 12)) {
      const char *v = a[1] == '-' && a[11] == '=' ? a + 12
                      : i + 1 < argc              ? argv[++i]
                                                  : NULL;
      if (!v) {
        fprintf(stderr, "gcs: %s needs a value\n", a);
        usage(stderr);
        return 2;
      }
      if (gc_log_level_parse_cli(v, &log_mask) != 0) {
        fprintf(stderr,
                "gcs: %s: bad log level \"%s\": use err, warn, notice, info or "
                "debug (that level and the more severe ones), or a mask as "
                "the config's logging.level takes: ERR, WARN, NOTICE, INFO, "
                "DEBUG, USER, NORMAL, VERBOSE joined with '|', or a number "
                "0..65535\n",
                a, v);
        return 2;
      }
    } else if (!strncmp(a, "-c", 2)) {
      if (!a[2] && i + 1 < argc)
        i++; /* "-c 1": Game Carrier's examples pass it; meaning unknown */
    } else if ((!strcmp(a, "-C") || !strcmp(a, "-p") || !strcmp(a, "-a") ||
                !strcmp(a, "-w") || !strcmp(a, "--route") || !strcmp(a, "--wss"))) {
      if (i + 1 >= argc) {
        fprintf(stderr, "gcs: %s needs a value\n", a);
        usage(stderr);
        return 2;
      }
      const char *v = argv[++i];
      if (!strcmp(a, "--wss")) {
        wss = v;
      } else if (a[1] == '-') {
        route = v;
      } else if (a[1] == 'w') {
        char *end;
        workers_opt = strtol(v, &end, 10);
        if (*end || !*v || workers_opt < 1 || workers_opt > GC_WORKERS_MAX) {
          fprintf(stderr, "gcs: -w: bad number of workers \"%s\" (1..%d)\n", v,
                  GC_WORKERS_MAX);
          return 2;
        }
      } else if (a[1] == 'C')
        config_path = v;
      else if (a[1] == 'a')
        addr = v;
      else {
        char *end;
        long p = strtol(v, &end, 10);
        if (*end || !*v || p < 0 || p > 65535) {
          fprintf(stderr, "gcs: -p: bad port \"%s\" (0..65535)\n", v);
          return 2;
        }
        port = (int)p;
      }
    } else if (a[0] == '-') {
      fprintf(stderr, "gcs: unknown option %s\n", a);
      usage(stderr);
      return 2;
    } else if (!script) {
      script = a;
    } else {
      fprintf(stderr, "gcs: only one script may be given (%s, %s)\n", script, a);
      return 2;
    }
  }
  if (wss && !script) {
    fprintf(stderr, "gcs: --wss is for a script; in a config, set the vhost's "
            "\"protocol\": \"wss\" and \"ssl_keys_path\"\n");
    return 2;
  }
  if (route && !script) {
    fprintf(stderr, "gcs: --route is for a script; in a config, set the app's \"route\"\n");
    return 2;
  }
  if (script && config_path) {
    fprintf(stderr, "gcs: give either a config (-C) or a script, not both\n");
    return 2;
  }
  /* The config built for a script must be valid: -a is checked here, so its
   * error names -a, not a place in a config the user never wrote. */
  char address[INET6_ADDRSTRLEN];
  if (script && resolve_address(addr, address, sizeof address) != 0)
    return 2;

  char err[1024] = "";
  struct gc_server server;
  memset(&server, 0, sizeof server);
  int rc = script ? script_config(script, address, port, route, wss, &server.cfg, err,
                                  sizeof err)
                  : gc_config_load_file(config_path ? config_path : "gcs.json",
                                        &server.cfg, err, sizeof err);
  if (rc) {
    fprintf(stderr, "gcs: %s\n", err);
    return 1;
  }
  if (log_mask >= 0)
    server.cfg->log_level = log_mask;
  gc_log_set_format(server.cfg->log_format);
  if ((rc = gc_log_open(server.cfg->log_file, server.cfg->log_level)) != 0) {
    fprintf(stderr, "gcs: cannot open log file %s: %s\n", server.cfg->log_file,
            strerror(rc));
    gc_config_free(server.cfg);
    return 1;
  }
  /* What a config holds but this host cannot serve is refused before any
   * adapter is loaded, so no application code runs for a failed start. */
  if ((rc = gc_config_check_serve(server.cfg, err, sizeof err)) != 0) {
    gc_log(GCL_ERR, "%s", err);
    gc_config_free(server.cfg);
    gc_log_close();
    return 1;
  }
  /* wss keys, and the CA file of wss links: missing or mismatched files
   * stop the start here too. */
  if ((rc = gc_tls_start(&server, err, sizeof err)) != 0 ||
      (rc = gc_tls_s2s_start(&server, err, sizeof err)) != 0) {
    gc_log(GCL_ERR, "%s", err);
    gc_tls_stop(&server);
    gc_config_free(server.cfg);
    gc_log_close();
    return 1;
  }
  /* "http": a CA file that cannot be read stops the start too. */
  if ((rc = gc_http_tls_start(&server, err, sizeof err)) != 0) {
    gc_log(GCL_ERR, "%s", err);
    gc_tls_stop(&server);
    gc_config_free(server.cfg);
    gc_log_close();
    return 1;
  }
  server.lua_adapter_path = gc_paths_lua_adapter(); /* paths.c */
  fd_limit_check(server.cfg->max_connections);
  size_t workers = server.cfg->worker_count;
  if (workers_opt > 0)
    workers = (size_t)workers_opt;
  if (workers == 0) { /* "auto": the CPUs this process may run on */
    unsigned cpus = uv_available_parallelism(); /* the affinity mask (taskset) */
    workers = cpus < 1 ? 1 : cpus > GC_WORKERS_MAX ? GC_WORKERS_MAX : (size_t)cpus;
  }

  int status = 0;
  /* From here an adapter's own threads find the server (core_api.c). */
  atomic_store(&gc__server_process, &server);
  if ((rc = gc_server_loops_create(&server, workers, 1)) != 0) {
    gc_log(GCL_ERR, "cannot create the event loops: %s", strerror(rc));
    status = 1;
  } else if ((rc = gc_server_load(&server, err, sizeof err)) != 0) {
    if (rc != ECANCELED) /* ECANCELED: the loader logged the failure */
      gc_log(GCL_ERR, "%s", err);
    status = 1;
  } else if (gc_server_listen(&server, 1, err, sizeof err) != 0) {
    gc_log(GCL_ERR, "%s", err);
    status = 1;
  } else {
    if (watch && (rc = gc__watch_start(server.loops[0])) != 0)
      gc_log(GCL_WARN, "--watch: %s: scripts are reloaded on SIGHUP only",
             strerror(rc));
    gc_server_start_apps(&server);
    status = gc_server_run(&server);
  }
  /* On a failed start, apps that initialised still get their shutdown. */
  gc_server_loops_quiesce(&server);
  gc_server_unload(&server);
  atomic_store(&gc__server_process, NULL);
  int lrc = gc_server_loops_close(&server);
  if (lrc != 0) {
    gc_log(GCL_WARN, "event loop closed with handles still open (%s)",
           uv_strerror(lrc));
  }
  if (status == GC_EXIT_FORCED)
    gc_log(GCL_NOTICE, "gcs stopped (shutdown forced: connections were "
           "dropped; exit status %d)", status);
  else
    gc_log(GCL_NOTICE, "gcs stopped");
  gc_free(server.lua_adapter_path);
  gc_tls_stop(&server);
  gc_tls_s2s_stop(&server);
  gc_config_free(server.cfg);
  gc_log_close();
  return status;
}
