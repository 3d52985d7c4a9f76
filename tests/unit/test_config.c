/* Tests host/config.c: validation errors name the key, line and column. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <game-carrier/server.h>

#include "config.h"

#define ADAPTERS                                                               \
  "\"adapters\": [{\"type\": \"native\", \"dir\": \"/x\", \"name\": \"echo\", " \
  "\"apps\": [{\"name\": \"echo\"}]}]"
#define VHOSTS "\"vhosts\": [{\"ip\": \"127.0.0.1\", \"port\": 7681, \"app\": \"echo\"}]"

static void expect_error(const char *json, const char *want) {
  struct gc_config *cfg = (struct gc_config *)1;
  char err[512] = "";
  int rc = gc_config_load_string(json, "t.json", &cfg, err, sizeof err);
  assert_int_not_equal(rc, 0);
  assert_null(cfg);
  if (!strstr(err, want))
    fail_msg("error '%s' does not contain '%s'", err, want);
}

static void test_minimal_and_defaults(void **state) {
  (void)state;
  struct gc_config *cfg;
  char err[512] = "";
  assert_int_equal(gc_config_load_string("{" ADAPTERS "," VHOSTS "}", "t.json",
                                         &cfg, err, sizeof err),
                   0);
  assert_int_equal(cfg->adapter_count, 1);
  assert_string_equal(cfg->adapters[0].type, "native");
  assert_string_equal(cfg->adapters[0].dir, "/x");
  assert_string_equal(cfg->adapters[0].apps[0].name, "echo");
  assert_int_equal(cfg->adapters[0].apps[0].id, 0);
  assert_null(cfg->adapters[0].apps[0].file_name);
  assert_int_equal(cfg->vhosts[0].port, 7681);
  assert_int_equal(cfg->vhosts[0].protocol, GC_PROTOCOL_WS);
  assert_int_equal(cfg->log_level, GCL_NORMAL);
  assert_null(cfg->log_file);
  assert_int_equal(cfg->close_drain_ms, 5000);
  assert_int_equal(cfg->max_connections, 0);
  assert_int_equal(cfg->worker_count, 1);
  gc_config_free(cfg);
}

static void test_full_game_carrier_example(void **state) {
  (void)state;
  /* The shape of Game Carrier's minimal C example config, comments added. */
  const char *json =
      "{\"comment\": \"top\",\n"
      " \"adapters\": [{\"type\": \"native\", \"dir\": \"/b\", \"name\": \"minimal_app\",\n"
      "   \"comment\": \"a comment in an adapter\",\n"
      "   \"apps\": [{\"name\": \"minimal_app\", \"type_name\": \"t\", \"file_name\": \"f\",\n"
      "              \"conn_notice\": {\"msg_per_second\": 100}}]},\n"
      "  {\"type\": \"lua\", \"apps\": [{\"name\": \"chat\", \"file_name\": \"chat.lua\"}]}],\n"
      " \"vhosts\": [{\"ip\": \"0.0.0.0\", \"port\": 7681, \"protocol\": \"wss\", \"app\": \"minimal_app\"}],\n"
      " \"logging\": {\"log_file\": \"/tmp/gcs.%p.log\", \"level\": \"VERBOSE\"},\n"
      " \"keep_alive\": {\"timeout\": 0, \"retries\": 5, \"interval\": 100},\n"
      " \"threading\": {\"worker_count\": 12, \"use_libuv\": true},\n"
      " \"counters\": {\"per_second_window\": 10, \"update_interval\": 10},\n"
      " \"group_max_size\": 42, \"max_groups\": 1000, \"max_client_connections\": 99,\n"
      " \"conn_critical\": {\"max_msg_size\": 65536, \"output_queue_size\": 100}}";
  struct gc_config *cfg;
  char err[512] = "";
  int rc = gc_config_load_string(json, "gc.json", &cfg, err, sizeof err);
  if (rc)
    fail_msg("%s", err);
  assert_int_equal(cfg->adapter_count, 2);
  assert_int_equal(cfg->adapters[1].apps[0].id, 1);
  assert_string_equal(cfg->adapters[1].apps[0].file_name, "chat.lua");
  assert_int_equal(cfg->vhosts[0].protocol, GC_PROTOCOL_WSS);
  assert_int_equal(cfg->log_level, GCL_VERBOSE);
  char want[64];
  snprintf(want, sizeof want, "/tmp/gcs.%ld.log", (long)getpid());
  assert_string_equal(cfg->log_file, want);
  assert_int_equal(cfg->worker_count, 12);
  gc_config_free(cfg);
}

static void test_errors_name_key_line_column(void **state) {
  (void)state;
  expect_error("{\n  \"adaptors\": []\n}", "t.json:2:3: adaptors: unknown key \"adaptors\"");
  expect_error("{" ADAPTERS ",\n \"vhosts\": [{\"ip\": \"x\", \"port\": \"abc\", \"app\": \"echo\"}]}",
               "t.json:2:33: vhosts[0].port: expected an integer 1..65535");
  expect_error("{" ADAPTERS ",\n \"vhosts\": [{\"ip\": \"x\", \"port\": 70000, \"app\": \"echo\"}]}",
               "vhosts[0].port: expected an integer 1..65535");
  expect_error("{" ADAPTERS "," VHOSTS ",\n \"logging\": {\"level\": \"LOUD\"}}",
               "t.json:2:23: logging.level: expected a level");
  expect_error("{" ADAPTERS "," VHOSTS ",\n \"logging\": {\"lvl\": 1}}",
               "t.json:2:14: logging.lvl: unknown key \"lvl\"");
  expect_error("{" ADAPTERS ",\n \"vhosts\": [{\"ip\": \"x\", \"port\": 1, \"app\": \"nope\"}]}",
               "vhosts[0].app: no app is named \"nope\"");
  expect_error("{\"adapters\": [{\"type\": \"native\", \"name\": \"a\", \"apps\": "
               "[{\"name\": \"x\"}, {\"name\": \"x\"}]}]," VHOSTS "}",
               "adapters[0].apps[1].name: duplicate app name \"x\"");
  expect_error("{\"adapters\": [{\"type\": \"dotnet\", \"apps\": [{\"name\": \"echo\"}]}]," VHOSTS "}",
               "adapters[0].type: adapter type \"dotnet\" is not supported");
  expect_error("{\"adapters\": [{\"type\": \"lua\", \"apps\": [{\"name\": \"echo\"}]}]," VHOSTS "}",
               "adapters[0].apps[0]: a lua app needs \"file_name\"");
  expect_error("{" VHOSTS "}", "missing required key \"adapters\"");
  expect_error("{\"adapters\": []," VHOSTS "}", "adapters: must not be empty");
  expect_error("{" ADAPTERS "," VHOSTS ", \"comment\": 5}", "comment: a comment must be a string");
  expect_error("{" ADAPTERS "," VHOSTS ", \"max_connections\": -1}",
               "max_connections: expected a non-negative integer");
  expect_error("{" ADAPTERS ",\n\n   \"vhosts\": [ }", "t.json:3:16: unexpected token near '}'");
  expect_error("[1, 2]", "the config must be a JSON object");
  expect_error("{" ADAPTERS "," VHOSTS ", \"vhosts\": []}", "t.json:1:");
}

static void test_load_file(void **state) {
  (void)state;
  struct gc_config *cfg;
  char err[512] = "";
  assert_int_equal(gc_config_load_file("/nonexistent/gcs.json", &cfg, err, sizeof err),
                   ENOENT);
  assert_string_equal(err, "cannot read /nonexistent/gcs.json: No such file or directory");
  char path[] = "/tmp/gc_test_config_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char *text = "{" ADAPTERS ",\n" VHOSTS ",\n  \"bogus\": 1}";
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  assert_int_equal(gc_config_load_file(path, &cfg, err, sizeof err), EINVAL);
  char want[128];
  snprintf(want, sizeof want, "%s:3:3: bogus: unknown key \"bogus\"", path);
  assert_string_equal(err, want);
  unlink(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_minimal_and_defaults),
      cmocka_unit_test(test_full_game_carrier_example),
      cmocka_unit_test(test_errors_name_key_line_column),
      cmocka_unit_test(test_load_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
