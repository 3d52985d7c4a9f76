/* Tests host/loop.c start-up and tear-down: every allocation of a start-up
 * (config load, the loops, adapter load, listen) is failed in turn, the
 * host's and libuv's alike; each failure must be a clean error return, with
 * nothing left behind (LeakSanitizer checks at exit) and no crash. */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "alloc.h"
#include "internal.h"
#include "mailbox.h"

/* Allocations left before the next one fails; <0 = never fail. Shared by
 * the host's allocator and libuv's (installed once, before libuv runs),
 * so uv_loop_init's own failure is covered too. */
static long alloc_budget = -1;
static long alloc_count;

static int alloc_fails(void) {
  alloc_count++;
  if (alloc_budget == 0)
    return 1;
  if (alloc_budget > 0)
    alloc_budget--;
  return 0;
}

static void *host_realloc(void *p, size_t n) {
  return alloc_fails() ? NULL : realloc(p, n);
}
static void *uv_test_malloc(size_t n) { return alloc_fails() ? NULL : malloc(n); }
/* Not failed: libuv aborts when growing its watcher array fails. */
static void *uv_test_realloc(void *p, size_t n) { return realloc(p, n); }
static void *uv_test_calloc(size_t c, size_t n) {
  return alloc_fails() ? NULL : calloc(c, n);
}

static int free_port(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(s >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
  close(s);
  return ntohs(a.sin_port);
}

/* What gcs's main does up to serving (two worker loops, not run), then its
 * stop and tear-down; 0 when every step worked, else the failing step's
 * error. The stop's mails are run here as the loops would. */
static int start_and_stop(const char *json) {
  char err[512] = "";
  struct gc_server server;
  memset(&server, 0, sizeof server);
  int rc = gc_config_load_string(json, "t.json", &server.cfg, err, sizeof err);
  if (rc)
    return rc;
  if ((rc = gc_server_loops_create(&server, 2, 1)) == 0) {
    if ((rc = gc_server_load(&server, err, sizeof err)) == 0 &&
        (rc = gc_server_listen(&server, 1, err, sizeof err)) == 0) {
      gc_server_start_apps(&server);
      gc_server_stop(&server);
      /* No client: both loops drain at once and are told to exit. */
      for (int i = 0; i < 10 && !gc_server_finished(&server); i++)
        for (size_t k = 0; k < server.loop_count; k++)
          (void)gc__mailbox_run(server.loops[k]);
      if (alloc_budget < 0)
        assert_true(gc_server_finished(&server));
    }
  }
  /* After a failed start too, as main does: must be harmless. */
  gc_server_loops_quiesce(&server);
  gc_server_unload(&server);
  (void)gc_server_loops_close(&server);
  gc_config_free(server.cfg);
  return rc;
}

static void test_startup_allocation_failures(void **state) {
  (void)state;
  char json[512];
  snprintf(json, sizeof json,
           "{\"adapters\": [{\"type\": \"native\", \"dir\": \"%s\", \"name\": "
           "\"echo\", \"apps\": [{\"name\": \"e\"}]}],"
           " \"vhosts\": [{\"ip\": \"127.0.0.1\", \"port\": %d, \"app\": \"e\"}],"
           " \"logging\": {\"level\": \"ERR\"}}",
           GC_BUILD_DIR, free_port());
  gc_log_set_level(0); /* thousands of expected errors */
  alloc_count = 0;
  gc_alloc_set(host_realloc, NULL);
  assert_int_equal(start_and_stop(json), 0);
  gc_alloc_set(NULL, NULL);
  long total = alloc_count;
  assert_true(total > 5);
  long failures = 0;
  for (long n = 0; n < total; n++) {
    alloc_budget = n;
    gc_alloc_set(host_realloc, NULL);
    int rc = start_and_stop(json);
    gc_alloc_set(NULL, NULL);
    alloc_budget = -1;
    failures += rc != 0;
  }
  /* Each allocation was failed once; most stop the start-up (a few are
   * optional), and afterwards it works again. */
  assert_true(failures > 0);
  assert_int_equal(start_and_stop(json), 0);
}

int main(void) {
  /* libuv's allocations fail too; only possible before libuv allocates. */
  if (uv_replace_allocator(uv_test_malloc, uv_test_realloc, uv_test_calloc,
                           free) != 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_startup_allocation_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
