/* Tests host/config.c: what a valid config yields, and that every bad one
 * fails with a message naming the key path, line and column. Error strings
 * are compared whole, so a drift in format or position fails here. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <game-carrier/server.h>

#include "alloc.h"
#include "config.h"
#include "conn_limits.h"
#include "log.h"

/* One native adapter serving "echo", one vhost on it: the smallest config. */
#define ADAPTERS                                                               \
  "\"adapters\": [{\"type\": \"native\", \"dir\": \"/x\", \"name\": \"echo\", " \
  "\"apps\": [{\"name\": \"echo\"}]}]"
#define VHOSTS                                                                 \
  "\"vhosts\": [{\"ip\": \"127.0.0.1\", \"port\": 7681, \"app\": \"echo\"}]"

static struct gc_config *load_ok(const char *json) {
  struct gc_config *cfg = NULL;
  char err[1024] = "";
  int rc = gc_config_load_string(json, "t.json", &cfg, err, sizeof err);
  if (rc != 0)
    fail_msg("load failed (%d): %s", rc, err);
  assert_non_null(cfg);
  assert_string_equal(err, "");
  return cfg;
}

/* Loading 'json' fails with EINVAL and exactly the message 'want'. */
static void expect_error(const char *json, const char *want) {
  struct gc_config *cfg = (struct gc_config *)&cfg; /* must be reset */
  char err[1024] = "";
  int rc = gc_config_load_string(json, "t.json", &cfg, err, sizeof err);
  if (rc != EINVAL || strcmp(err, want) != 0)
    fail_msg("rc %d, error\n  '%s'\nwanted\n  '%s'", rc, err, want);
  assert_null(cfg);
}

/* ---- valid configs ------------------------------------------------------- */

static void test_minimal_and_defaults(void **state) {
  (void)state;
  struct gc_config *cfg = load_ok("{" ADAPTERS "," VHOSTS "}");
  assert_non_null(cfg->root);
  assert_int_equal(cfg->adapter_count, 1);
  struct gc_adapter_conf *a = &cfg->adapters[0];
  assert_string_equal(a->type, "native");
  assert_string_equal(a->dir, "/x");
  assert_string_equal(a->name, "echo");
  assert_int_equal(a->id, 0);
  assert_int_equal(a->app_count, 1);
  assert_string_equal(a->apps[0].name, "echo");
  assert_null(a->apps[0].type_name);
  assert_null(a->apps[0].file_name);
  assert_int_equal(a->apps[0].id, 0);
  /* The app entry is borrowed from the root, not copied. */
  assert_ptr_equal(a->apps[0].json,
                   json_array_get(json_object_get(json_array_get(json_object_get(
                                                      cfg->root, "adapters"),
                                                  0),
                                                  "apps"),
                                  0));
  assert_int_equal(cfg->vhost_count, 1);
  assert_string_equal(cfg->vhosts[0].ip, "127.0.0.1");
  assert_int_equal(cfg->vhosts[0].port, 7681);
  assert_int_equal(cfg->vhosts[0].protocol, GC_PROTOCOL_WS);
  assert_string_equal(cfg->vhosts[0].app, "echo");
  assert_null(cfg->log_file);
  assert_int_equal(cfg->log_level, GCL_NORMAL);
  assert_int_equal(cfg->max_connections, 0);
  assert_int_equal(cfg->close_drain_ms, 5000);
  assert_int_equal(cfg->worker_count, 0); /* "auto" */
  assert_int_equal(a->apps[0].route, GC_ROUTE_NONE);
  assert_null(a->apps[0].route_param);
  assert_null(cfg->working_dir);
  gc_config_free(cfg);
}

static void test_full_game_carrier_example(void **state) {
  (void)state;
  /* Game Carrier's minimal C example config, plus every other known key. */
  const char *json =
      "{\"server_name\": \"eu-1\", \"ssl_keys_path\": \"/k/server\",\n"
      " \"auth_file\": \"authentication.dat\", \"working_dir\": \"/srv/gc\",\n"
      " \"extra_adapters\": \"/opt/gc\", \"max_connections\": 5000000000,\n"
      " \"max_client_connections\": 99,\n"
      " \"adapters\": [{\"type\": \"native\", \"dir\": \"/b\", \"name\": \"minimal_app\",\n"
      "   \"apps\": [{\"name\": \"minimal_app\", \"type_name\": \"t\", \"file_name\": \"f\",\n"
      "              \"conn_notice\": {\"msg_per_second\": 100},\n"
      "              \"conn_critical\": {\"kbytes_per_second\": 64},\n"
      "              \"lua\": {\"memory_limit\": 1048576}},\n"
      "             {\"name\": \"second\"}]},\n"
      "  {\"type\": \"lua\", \"apps\": [{\"name\": \"chat\", \"file_name\": \"chat.lua\"}]}],\n"
      " \"vhosts\": [{\"ip\": \"0.0.0.0\", \"port\": 7681, \"protocol\": \"wss\", \"app\": \"minimal_app\"},\n"
      "            {\"ip\": \"::1\", \"port\": 7682, \"protocol\": \"ws\", \"app\": \"chat\"}],\n"
      " \"logging\": {\"log_file\": \"/tmp/gcs.%p.log\", \"level\": \"VERBOSE\"},\n"
      " \"keep_alive\": {\"timeout\": 0, \"retries\": 5, \"interval\": 100},\n"
      " \"threading\": {\"worker_count\": 12, \"use_libuv\": true},\n"
      " \"counters\": {\"per_second_window\": 10, \"update_interval\": 10},\n"
      " \"group_max_size\": 42, \"max_groups\": 1000,\n"
      " \"conn_notice\": {\"msg_per_second\": 50, \"kbytes_per_second\": 8,\n"
      "                   \"max_msg_size\": 4096, \"output_queue_size\": 10},\n"
      " \"conn_critical\": {\"max_msg_size\": 65536, \"output_queue_size\": 100},\n"
      " \"close_drain_ms\": 250, \"handshake_timeout_ms\": 3000,\n"
      " \"lua\": {\"instruction_budget\": 1000000, \"time_limit_ms\": 250, \"memory_limit\": 0, \"path\": \"lib/?.lua\"}}";
  struct gc_config *cfg = load_ok(json);
  assert_int_equal(cfg->adapter_count, 2);
  /* App ids run over all adapters in config order. */
  assert_int_equal(cfg->adapters[0].app_count, 2);
  assert_int_equal(cfg->adapters[0].apps[0].id, 0);
  assert_int_equal(cfg->adapters[0].apps[1].id, 1);
  assert_int_equal(cfg->adapters[1].id, 1);
  assert_int_equal(cfg->adapters[1].apps[0].id, 2);
  assert_string_equal(cfg->adapters[0].apps[0].type_name, "t");
  assert_string_equal(cfg->adapters[0].apps[0].file_name, "f");
  assert_string_equal(cfg->adapters[1].type, "lua");
  assert_null(cfg->adapters[1].dir);
  assert_null(cfg->adapters[1].name);
  assert_string_equal(cfg->adapters[1].apps[0].file_name, "chat.lua");
  assert_int_equal(cfg->vhost_count, 2);
  assert_int_equal(cfg->vhosts[0].protocol, GC_PROTOCOL_WSS);
  assert_int_equal(cfg->vhosts[1].protocol, GC_PROTOCOL_WS);
  assert_string_equal(cfg->vhosts[1].ip, "::1");
  assert_int_equal(cfg->log_level, GCL_VERBOSE);
  char want[64];
  snprintf(want, sizeof want, "/tmp/gcs.%ld.log", (long)getpid());
  assert_string_equal(cfg->log_file, want);
  assert_true(cfg->max_connections == 5000000000ull);
  assert_int_equal(cfg->close_drain_ms, 250);
  assert_int_equal(cfg->worker_count, 12);
  assert_string_equal(cfg->working_dir, "/srv/gc");
  gc_config_free(cfg);
}

static void test_comments_ignored_everywhere(void **state) {
  (void)state;
  struct gc_config *cfg = load_ok(
      "{\"comment\": \"root\",\n"
      " \"adapters\": [{\"comment\": \"adapter\", \"type\": \"native\", \"dir\": \"/x\",\n"
      "   \"name\": \"echo\", \"apps\": [{\"comment\": \"app\", \"name\": \"echo\",\n"
      "   \"conn_notice\": {\"comment\": \"limits\", \"max_msg_size\": 1}}]}],\n"
      " \"vhosts\": [{\"comment\": \"vhost\", \"ip\": \"127.0.0.1\", \"port\": 1, \"app\": \"echo\"}],\n"
      " \"logging\": {\"comment\": \"\", \"level\": 0},\n"
      " \"threading\": {\"comment\": \"t\"}, \"keep_alive\": {\"comment\": \"k\"},\n"
      " \"counters\": {\"comment\": \"c\"}, \"lua\": {\"comment\": \"l\"}}");
  assert_int_equal(cfg->log_level, 0);
  assert_string_equal(cfg->adapters[0].apps[0].name, "echo");
  gc_config_free(cfg);
  /* But a comment is a string. */
  expect_error("{" ADAPTERS "," VHOSTS ",\n \"comment\": 5}",
               "t.json:2:13: comment: expected a string, got 5");
  expect_error("{" ADAPTERS "," VHOSTS ",\n \"logging\": {\"comment\": [\"a\"]}}",
               "t.json:2:25: logging.comment: expected a string, got an array");
}

static void test_log_file_and_level(void **state) {
  (void)state;
  char pid[32], want[128];
  snprintf(pid, sizeof pid, "%ld", (long)getpid());
  struct gc_config *cfg = load_ok(
      "{" ADAPTERS "," VHOSTS
      ", \"logging\": {\"log_file\": \"%p/a%pb.%%p\", \"level\": \"err|Warn\"}}");
  /* Every "%p" becomes the PID; nothing else is touched. */
  snprintf(want, sizeof want, "%s/a%sb.%%%s", pid, pid, pid);
  assert_string_equal(cfg->log_file, want);
  assert_int_equal(cfg->log_level, GCL_ERR | GCL_WARN);
  gc_config_free(cfg);

  cfg = load_ok("{" ADAPTERS "," VHOSTS
                ", \"logging\": {\"log_file\": \"plain.log\", \"level\": 1031}}");
  assert_string_equal(cfg->log_file, "plain.log");
  assert_int_equal(cfg->log_level, 1031);
  gc_config_free(cfg);

  /* An empty file name means stderr only. */
  cfg = load_ok("{" ADAPTERS "," VHOSTS ", \"logging\": {\"log_file\": \"\"}}");
  assert_null(cfg->log_file);
  assert_int_equal(cfg->log_level, GCL_NORMAL);
  gc_config_free(cfg);

  expect_error("{" ADAPTERS "," VHOSTS ",\n \"logging\": {\"level\": \"LOUD\"}}",
               "t.json:2:23: logging.level: expected a log level (ERR, WARN, "
               "NOTICE, INFO, DEBUG, USER, NORMAL or VERBOSE, several joined "
               "with '|') or a number 0..65535, got \"LOUD\"");
  expect_error("{" ADAPTERS "," VHOSTS ",\n \"logging\": {\"level\": 70000}}",
               "t.json:2:23: logging.level: expected a log level (ERR, WARN, "
               "NOTICE, INFO, DEBUG, USER, NORMAL or VERBOSE, several joined "
               "with '|') or a number 0..65535, got 70000");
  expect_error("{" ADAPTERS "," VHOSTS ",\n \"logging\": {\"log_file\": 1}}",
               "t.json:2:26: logging.log_file: expected a string, got 1");
}

/* logging.format: "text" (the default) or "json". */
static void test_log_format(void **state) {
  (void)state;
  struct gc_config *cfg = load_ok("{" ADAPTERS "," VHOSTS "}");
  assert_int_equal(cfg->log_format, GC_LOG_FORMAT_TEXT);
  gc_config_free(cfg);
  cfg = load_ok("{" ADAPTERS "," VHOSTS ", \"logging\": {\"format\": \"json\"}}");
  assert_int_equal(cfg->log_format, GC_LOG_FORMAT_JSON);
  gc_config_free(cfg);
  cfg = load_ok("{" ADAPTERS "," VHOSTS ", \"logging\": {\"format\": \"text\"}}");
  assert_int_equal(cfg->log_format, GC_LOG_FORMAT_TEXT);
  gc_config_free(cfg);
  expect_error("{" ADAPTERS "," VHOSTS ",\n \"logging\": {\"format\": \"xml\"}}",
               "t.json:2:24: logging.format: expected \"text\" or \"json\", "
               "got \"xml\"");
}

/* ---- unknown keys -------------------------------------------------------- */

static void test_unknown_key_root(void **state) {
  (void)state;
  expect_error("{" ADAPTERS "," VHOSTS ",\n  \"bogus\": 1}",
               "t.json:2:3: unknown key \"bogus\"");
  /* A near miss gets a suggestion. */
  expect_error("{\n  \"adaptors\": []\n}",
               "t.json:2:3: unknown key \"adaptors\" (did you mean \"adapters\"?)");
  expect_error("{" ADAPTERS "," VHOSTS ", \"Max_Connection\": 1}",
               "t.json:1:154: unknown key \"Max_Connection\" (did you mean "
               "\"max_connections\"?)");
}

static void test_unknown_key_nested(void **state) {
  (void)state;
  expect_error("{" ADAPTERS "," VHOSTS ",\n \"logging\": {\"lvl\": 1}}",
               "t.json:2:14: logging: unknown key \"lvl\" (did you mean \"level\"?)");
  expect_error("{\"adapters\": [{\"type\": \"native\", \"dir\": \"/x\", \"name\": \"e\",\n"
               "  \"apps\": [{\"name\": \"echo\",\n"
               "            \"typename\": \"x\"}]}]," VHOSTS "}",
               "t.json:3:13: adapters[0].apps[0]: unknown key \"typename\" "
               "(did you mean \"type_name\"?)");
  expect_error("{\"adapters\": [{\"type\": \"native\", \"dir\": \"/x\", \"name\": \"e\",\n"
               "  \"apps\": [{\"name\": \"echo\", \"conn_notice\": {\"msgs\": 1}}]}]," VHOSTS "}",
               "t.json:2:45: adapters[0].apps[0].conn_notice: unknown key \"msgs\"");
  expect_error("{" ADAPTERS ",\n \"vhosts\": [{\"ip\": \"::\", \"port\": 1, \"app\": \"echo\",\n"
               "  \"path\": \"/\"}]}",
               "t.json:3:3: vhosts[0]: unknown key \"path\"");
  /* "comment" is the one key every object accepts; others are not shared. */
  expect_error("{" ADAPTERS "," VHOSTS ", \"threading\": {\"level\": 1}}",
               "t.json:1:168: threading: unknown key \"level\"");
}

/* ---- bad values ---------------------------------------------------------- */

static void test_bad_port(void **state) {
  (void)state;
  expect_error("{" ADAPTERS ",\n \"vhosts\": [{\"ip\": \"0.0.0.0\", \"port\": \"abc\", \"app\": \"echo\"}]}",
               "t.json:2:39: vhosts[0].port: expected an integer 0..65535, got \"abc\"");
  expect_error("{" ADAPTERS ",\n \"vhosts\": [{\"ip\": \"0.0.0.0\", \"port\": 70000, \"app\": \"echo\"}]}",
               "t.json:2:39: vhosts[0].port: expected an integer 0..65535, got 70000");
  expect_error("{" ADAPTERS ",\n \"vhosts\": [{\"ip\": \"0.0.0.0\", \"port\": -1, \"app\": \"echo\"}]}",
               "t.json:2:39: vhosts[0].port: expected an integer 0..65535, got -1");
  expect_error("{" ADAPTERS ",\n \"vhosts\": [{\"ip\": \"0.0.0.0\", \"port\": 80.5, \"app\": \"echo\"}]}",
               "t.json:2:39: vhosts[0].port: expected an integer 0..65535, got 80.5");
}

static void test_bad_types(void **state) {
  (void)state;
  expect_error("{" ADAPTERS "," VHOSTS ",\n \"server_name\": 5}",
               "t.json:2:17: server_name: expected a string, got 5");
  expect_error("{" ADAPTERS "," VHOSTS ",\n \"threading\": {\"use_libuv\": \"yes\"}}",
               "t.json:2:29: threading.use_libuv: expected true or false, got \"yes\"");
  expect_error("{" ADAPTERS "," VHOSTS ",\n \"threading\": {\"worker_count\": 0}}",
               "t.json:2:32: threading.worker_count: expected an integer 1..64 "
               "or \"auto\", got 0");
  expect_error("{" ADAPTERS "," VHOSTS ",\n \"threading\": {\"worker_count\": 65}}",
               "t.json:2:32: threading.worker_count: expected an integer 1..64 "
               "or \"auto\", got 65");
  expect_error("{" ADAPTERS "," VHOSTS ",\n \"max_connections\": -1}",
               "t.json:2:21: max_connections: expected a non-negative integer, got -1");
  expect_error("{" ADAPTERS "," VHOSTS ",\n \"max_groups\": true}",
               "t.json:2:16: max_groups: expected a non-negative integer, got true");
  expect_error("{" ADAPTERS "," VHOSTS ",\n \"close_drain_ms\": 4294967296}",
               "t.json:2:20: close_drain_ms: expected an integer 0..4294967295, "
               "got 4294967296");
  expect_error("{" ADAPTERS "," VHOSTS ",\n \"keep_alive\": {\"timeout\": null}}",
               "t.json:2:28: keep_alive.timeout: expected an integer "
               "0..4294967295, got null");
  expect_error("{" ADAPTERS "," VHOSTS ",\n \"conn_critical\": [1]}",
               "t.json:2:19: conn_critical: expected an object, got an array");
  expect_error("{\"adapters\": {}," VHOSTS "}",
               "t.json:1:14: adapters: expected a non-empty array, got {}");
  expect_error("{\"adapters\": []," VHOSTS "}",
               "t.json:1:14: adapters: expected a non-empty array, got []");
  expect_error("{\"adapters\": [\"echo\"]," VHOSTS "}",
               "t.json:1:15: adapters[0]: expected an object, got \"echo\"");
  expect_error("{" ADAPTERS ",\n \"vhosts\": [{\"ip\": \"localhost\", \"port\": 1, \"app\": \"echo\"}]}",
               "t.json:2:20: vhosts[0].ip: expected a numeric IPv4 or IPv6 "
               "address, got \"localhost\"");
  expect_error("{" ADAPTERS ",\n \"vhosts\": [{\"ip\": \"1.2.3.4\", \"port\": 1, \"app\": \"echo\",\n"
               "   \"protocol\": \"http\"}]}",
               "t.json:3:16: vhosts[0].protocol: expected \"ws\" or \"wss\", got \"http\"");
  /* A long value is quoted in part. */
  expect_error("{" ADAPTERS "," VHOSTS ",\n \"max_groups\": "
               "\"0123456789012345678901234567890123456789012345678901234567890123456789\"}",
               "t.json:2:16: max_groups: expected a non-negative integer, got "
               "\"01234567890123456789012345678901234567890123...");
  /* The top level is an object. */
  expect_error("  [1, 2]", "t.json:1:3: expected an object at the top, got an array");
}

static void test_adapter_rules(void **state) {
  (void)state;
  expect_error("{\"adapters\": [{\"type\": \"dotnet\", \"apps\": [{\"name\": \"echo\"}]}]," VHOSTS "}",
               "t.json:1:24: adapters[0].type: expected \"native\" or \"lua\", got \"dotnet\"");
  expect_error("{\"adapters\": [{\"apps\": [{\"name\": \"echo\"}]}]," VHOSTS "}",
               "t.json:1:15: adapters[0]: missing required key \"type\"");
  expect_error("{\"adapters\": [{\"type\": \"lua\"}]," VHOSTS "}",
               "t.json:1:15: adapters[0]: missing required key \"apps\"");
  expect_error("{\"adapters\": [{\"type\": \"native\", \"name\": \"e\",\n"
               "  \"apps\": [{\"name\": \"echo\"}]}]," VHOSTS "}",
               "t.json:1:15: adapters[0]: missing required key \"dir\" (a native "
               "adapter loads <dir>/lib<name>.so)");
  expect_error("{\"adapters\": [{\"type\": \"native\", \"dir\": \"/x\",\n"
               "  \"apps\": [{\"name\": \"echo\"}]}]," VHOSTS "}",
               "t.json:1:15: adapters[0]: missing required key \"name\" (a native "
               "adapter loads <dir>/lib<name>.so)");
  expect_error("{\"adapters\": [{\"type\": \"native\", \"dir\": \"/x\", \"name\": \"\",\n"
               "  \"apps\": [{\"name\": \"echo\"}]}]," VHOSTS "}",
               "t.json:1:55: adapters[0].name: expected a non-empty string, got \"\"");
  /* A lua app needs its script; a native one does not. */
  expect_error("{\"adapters\": [{\"type\": \"lua\",\n  \"apps\": [{\"name\": \"echo\"}]}]," VHOSTS "}",
               "t.json:2:12: adapters[0].apps[0]: missing required key \"file_name\" "
               "(the script of a lua app)");
  expect_error("{\"adapters\": [{\"type\": \"lua\",\n  \"apps\": [{\"file_name\": \"a.lua\"}]}]," VHOSTS "}",
               "t.json:2:12: adapters[0].apps[0]: missing required key \"name\"");
  expect_error("{\"adapters\": [{\"type\": \"lua\",\n  \"apps\": [{\"name\": \"\", \"file_name\": \"a\"}]}]," VHOSTS "}",
               "t.json:2:21: adapters[0].apps[0].name: expected a non-empty string, got \"\"");
  /* Missing at the top: the position is the root object. */
  expect_error("\n {" VHOSTS "}", "t.json:2:2: missing required key \"adapters\"");
  expect_error("{" ADAPTERS "}", "t.json:1:1: missing required key \"vhosts\"");
}

static void test_duplicate_app(void **state) {
  (void)state;
  /* Unique across the whole config, not just one adapter; both named. */
  expect_error("{\"adapters\": [\n"
               "  {\"type\": \"native\", \"dir\": \"/x\", \"name\": \"a\",\n"
               "   \"apps\": [{\"name\": \"one\"}, {\"name\": \"echo\"}]},\n"
               "  {\"type\": \"lua\",\n"
               "   \"apps\": [{\"name\": \"two\", \"file_name\": \"t.lua\"},\n"
               "            {\"name\": \"echo\", \"file_name\": \"e.lua\"}]}],\n" VHOSTS "}",
               "t.json:6:22: adapters[1].apps[1].name: duplicate app name \"echo\" "
               "(first used by adapters[0].apps[1].name at 3:39)");
  expect_error("{\"adapters\": [{\"type\": \"native\", \"dir\": \"/x\", \"name\": \"a\", \"apps\": "
               "[{\"name\": \"x\"}, {\"name\": \"x\"}]}]," VHOSTS "}",
               "t.json:1:93: adapters[0].apps[1].name: duplicate app name \"x\" "
               "(first used by adapters[0].apps[0].name at 1:78)");
}

static void test_vhost_rules(void **state) {
  (void)state;
  expect_error("{\"adapters\": [{\"type\": \"lua\", \"apps\": [{\"name\": \"chat\", \"file_name\": \"c\"},\n"
               "  {\"name\": \"arena\", \"file_name\": \"a\"}]}],\n"
               " \"vhosts\": [{\"ip\": \"::\", \"port\": 1, \"app\": \"chat\"},\n"
               "            {\"ip\": \"::\", \"port\": 2, \"app\": \"nope\"}]}",
               "t.json:4:44: vhosts[1].app: no app is named \"nope\" (configured: "
               "chat, arena)");
  expect_error("{" ADAPTERS ", \"vhosts\": [{\"ip\": \"::\", \"port\": 1}]}",
               "t.json:1:104: vhosts[0]: missing required key \"app\"");
  expect_error("{" ADAPTERS ", \"vhosts\": [{\"port\": 1, \"app\": \"echo\"}]}",
               "t.json:1:104: vhosts[0]: missing required key \"ip\"");
  expect_error("{" ADAPTERS ", \"vhosts\": [{\"ip\": \"::\", \"app\": \"echo\"}]}",
               "t.json:1:104: vhosts[0]: missing required key \"port\"");
  expect_error("{" ADAPTERS ", \"vhosts\": []}",
               "t.json:1:103: vhosts: expected a non-empty array, got []");
}

/* "settings" (root, adapter, app) hold anything: the game's own keys. */
static void test_settings_free_form(void **state) {
  (void)state;
  struct gc_config *cfg = load_ok(
      "{\"settings\": {\"x\": null, \"deep\": {\"a\": [1, {\"b\": 2.5}]}},\n"
      " \"adapters\": [{\"type\": \"native\", \"dir\": \"/x\", \"name\": \"echo\",\n"
      "   \"settings\": {\"bogus\": true, \"x\": \"ad\"},\n"
      "   \"apps\": [{\"name\": \"echo\", \"settings\": {\"port\": \"not a port\"}}]}],\n"
      VHOSTS "}");
  const json_t *st = cfg->adapters[0].apps[0].settings;
  assert_string_equal(json_string_value(json_object_get(st, "x")), "ad");
  assert_string_equal(json_string_value(json_object_get(st, "port")), "not a port");
  assert_true(json_is_true(json_object_get(st, "bogus")));
  assert_true(json_is_object(json_object_get(st, "deep")));
  gc_config_free(cfg);
  /* Without any: an empty object. */
  cfg = load_ok("{" ADAPTERS "," VHOSTS "}");
  assert_int_equal(json_object_size(cfg->adapters[0].apps[0].settings), 0);
  gc_config_free(cfg);
  /* It must be an object. */
  expect_error("{" ADAPTERS "," VHOSTS ",\n \"settings\": [1]}",
               "t.json:2:14: settings: expected an object, got an array");
}

/* ---- positions ----------------------------------------------------------- */

static void test_positions_survive_tricky_text(void **state) {
  (void)state;
  /* Before the bad key: strings holding brackets, quotes and escapes, a
   * nested comment-free structure to skip, multi-byte characters (a column
   * counts characters, as jansson's do) and CRLF line ends. */
  expect_error("{\"server_name\": \"a]}\\\"{[,:\", \"auth_file\": \"\\u00e9\\\\\",\r\n"
               "  \"adapters\": [{\"type\": \"native\", \"dir\": \"/x\", \"name\": \"echo\",\r\n"
               "    \"apps\": [{\"name\": \"echo\", \"conn_notice\": {\"max_msg_size\": 1},\r\n"
               "              \"lua\": {\"path\": \"[{\"}}]}],\r\n"
               "  \"working_dir\": \"\xc3\xa9\xc3\xa9\xe2\x82\xac\", \"vhosts\": [{\"ip\": \"::\", \"port\": 1, \"app\": \"echo\"},\r\n"
               "    {\"ip\": \"::\", \"port\": 99999, \"app\": \"echo\"}]}",
               "t.json:6:26: vhosts[1].port: expected an integer 0..65535, got 99999");
  /* A key written with escapes is found by what it decodes to. */
  expect_error("{" ADAPTERS "," VHOSTS ",\n   \"\\u0062ogus\": 1}",
               "t.json:2:4: unknown key \"bogus\"");
  expect_error("{" ADAPTERS "," VHOSTS ",\n \"logging\": {\"le\\u0076el\": \"LOUD\"}}",
               "t.json:2:28: logging.level: expected a log level (ERR, WARN, "
               "NOTICE, INFO, DEBUG, USER, NORMAL or VERBOSE, several joined "
               "with '|') or a number 0..65535, got \"LOUD\"");
  /* A non-ASCII key (UTF-8 and \u surrogate pair forms). */
  expect_error("{" ADAPTERS "," VHOSTS ",\n \"\xf0\x9f\x98\x80\": 1}",
               "t.json:2:2: unknown key \"\xf0\x9f\x98\x80\"");
  expect_error("{" ADAPTERS "," VHOSTS ",\n\t\"x\": 1, \"\\ud83d\\ude00\": 1}",
               "t.json:2:2: unknown key \"x\"");
}

static void test_syntax_errors(void **state) {
  (void)state;
  expect_error("{" ADAPTERS ",\n\n   \"vhosts\": [ }",
               "t.json:3:16: unexpected token near '}'");
  /* jansson refuses a repeated key, with its position (jansson's column
   * is that of the token's last character). */
  expect_error("{" ADAPTERS ",\n \"adapters\": []}",
               "t.json:2:11: duplicate object key near '\"adapters\"'");
  expect_error("", "t.json:1:0: '[' or '{' expected near end of file");
  expect_error("{} x", "t.json:1:4: end of file expected near 'x'");
}

/* ---- files and arguments ------------------------------------------------- */

static char *write_temp(const char *text) {
  static char path[64];
  snprintf(path, sizeof path, "/tmp/gc_test_config_XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  assert_int_equal(close(fd), 0);
  return path;
}

static void test_load_file(void **state) {
  (void)state;
  struct gc_config *cfg = (struct gc_config *)&cfg;
  char err[512] = "";
  assert_int_equal(gc_config_load_file("/nonexistent/gcs.json", &cfg, err, sizeof err),
                   ENOENT);
  assert_string_equal(err, "cannot read /nonexistent/gcs.json: No such file or directory");
  assert_null(cfg);
  assert_int_equal(gc_config_load_file("/tmp", &cfg, err, sizeof err), EISDIR);
  assert_string_equal(err, "cannot read /tmp: Is a directory");

  /* Errors in a file are named by its path. */
  char *path = write_temp("{" ADAPTERS ",\n" VHOSTS ",\n  \"bogus\": 1}");
  assert_int_equal(gc_config_load_file(path, &cfg, err, sizeof err), EINVAL);
  char want[256];
  snprintf(want, sizeof want, "%s:3:3: unknown key \"bogus\"", path);
  assert_string_equal(err, want);
  assert_null(cfg);
  unlink(path);

  /* A NUL byte in the file is a syntax error at its place, not the end. */
  path = write_temp("{\"a\": 1}");
  FILE *f = fopen(path, "r+");
  assert_non_null(f);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  assert_int_equal(fwrite("\0 ", 1, 2, f), 2);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(gc_config_load_file(path, &cfg, err, sizeof err), EINVAL);
  snprintf(want, sizeof want, "%s:1:", path);
  assert_memory_equal(err, want, strlen(want));
  unlink(path);

  /* A good file; the error buffer is cleared. */
  path = write_temp("{" ADAPTERS ",\n" VHOSTS "}");
  snprintf(err, sizeof err, "stale");
  assert_int_equal(gc_config_load_file(path, &cfg, err, sizeof err), 0);
  assert_string_equal(err, "");
  assert_string_equal(cfg->adapters[0].apps[0].name, "echo");
  gc_config_free(cfg);
  unlink(path);
}

static void test_arguments(void **state) {
  (void)state;
  struct gc_config *cfg = NULL;
  char err[256];
  assert_int_equal(gc_config_load_string("{}", "t.json", NULL, err, sizeof err), EINVAL);
  assert_int_equal(gc_config_load_string(NULL, "t.json", &cfg, err, sizeof err), EINVAL);
  assert_string_equal(err, "t.json: no text");
  assert_null(cfg);
  assert_int_equal(gc_config_load_file(NULL, &cfg, err, sizeof err), EINVAL);
  /* No error buffer and no source name are fine. */
  assert_int_equal(gc_config_load_string("{}", NULL, &cfg, NULL, 0), EINVAL);
  assert_int_equal(gc_config_load_string("{}", NULL, &cfg, err, sizeof err), EINVAL);
  assert_string_equal(err, "config:1:1: missing required key \"adapters\"");
  /* A small buffer truncates the message; it is still terminated. */
  char tiny[8];
  assert_int_equal(gc_config_load_string("{}", "t.json", &cfg, tiny, sizeof tiny), EINVAL);
  assert_string_equal(tiny, "t.json:");
  gc_config_free(NULL);
}


/* ---- one meaning for 0 (README "Config": 0 = no limit, or refused) ------- */

static void test_zero_is_no_limit(void **state) {
  (void)state;
  struct gc_config *cfg = load_ok("{" ADAPTERS "," VHOSTS "}");
  assert_int_equal(cfg->handshake_timeout_ms, 10000);
  assert_true(cfg->max_output_msg_size == GC_DEFAULT_MAX_MSG_SIZE);
  gc_config_free(cfg);
  cfg = load_ok("{" ADAPTERS "," VHOSTS ",\n"
                " \"close_drain_ms\": 0, \"handshake_timeout_ms\": 0,\n"
                " \"message_timeout_ms\": 0, \"send_timeout_ms\": 0,\n"
                " \"max_buffered_bytes\": 0, \"max_connections\": 0,\n"
                " \"max_output_msg_size\": 0,\n"
                " \"logging\": {\"conn_lines_per_second\": 0},\n"
                " \"keep_alive\": {\"timeout\": 0, \"interval\": 1, \"retries\": 1},\n"
                " \"lua\": {\"time_limit_ms\": 0, \"instruction_budget\": 0, \"memory_limit\": 0},\n"
                " \"conn_notice\": {\"msg_per_second\": 0, \"kbytes_per_second\": 0,\n"
                "                 \"max_msg_size\": 0, \"output_queue_size\": 0},\n"
                " \"conn_critical\": {\"msg_per_second\": 0, \"kbytes_per_second\": 0,\n"
                "                   \"max_msg_size\": 0, \"output_queue_size\": 0}}");
  /* A NORMAL close and the upgrade are waited for without a bound. */
  assert_int_equal(cfg->close_drain_ms, 0);
  assert_int_equal(cfg->handshake_timeout_ms, 0);
  assert_int_equal(cfg->message_timeout_ms, 0);
  assert_int_equal(cfg->send_timeout_ms, 0);
  assert_true(cfg->max_buffered_bytes == 0);
  assert_true(cfg->max_connections == 0);
  /* A message size without a limit of its own: the host's hard maximum. */
  assert_true(cfg->max_output_msg_size == GC_MSG_SIZE_HARD_MAX);
  struct gc_limits l;
  gc_limits_from_config(&l, cfg->root, NULL);
  for (int level = GC_STAT_STATUS_YELLOW; level <= GC_STAT_STATUS_RED; level++)
    for (int stat = 1; stat <= GC_STAT_MAX; stat++)
      assert_true(l.v[level][stat] == 0);
  assert_true(gc_msg_size_limit(0) == GC_MSG_SIZE_HARD_MAX);
  assert_true(gc_msg_size_limit(65536) == 65536);
  assert_true(gc_msg_size_limit(UINT64_MAX) == GC_MSG_SIZE_HARD_MAX);
  gc_config_free(cfg);
}

static void test_zero_refused_where_off_makes_no_sense(void **state) {
  (void)state;
  expect_error("{" ADAPTERS "," VHOSTS ",\n \"keep_alive\": {\"timeout\": 30, \"interval\": 0}}",
               "t.json:2:44: keep_alive.interval: expected an integer "
               "1..4294967295, got 0 (keep-alive is turned off with "
               "\"timeout\": 0)");
  expect_error("{" ADAPTERS "," VHOSTS ",\n \"keep_alive\": {\"retries\": 0}}",
               "t.json:2:28: keep_alive.retries: expected an integer "
               "1..4294967295, got 0 (keep-alive is turned off with "
               "\"timeout\": 0)");
  /* A message size has a hard maximum: the host holds a message whole and
   * hands its length to adapters that may keep it in an int. */
  expect_error("{" ADAPTERS "," VHOSTS ",\n \"max_output_msg_size\": 2147483648}",
               "t.json:2:25: max_output_msg_size: expected an integer "
               "0..2147483647, got 2147483648");
  expect_error("{" ADAPTERS "," VHOSTS ",\n \"conn_critical\": {\"max_msg_size\": 4294967296}}",
               "t.json:2:36: conn_critical.max_msg_size: expected an integer "
               "0..2147483647, got 4294967296");
}

/* kbytes_per_second keeps Game Carrier's name and unit (KiB) in the config;
 * the host and the API count bytes. */
static void test_kbytes_per_second_is_kib(void **state) {
  (void)state;
  struct gc_config *cfg = load_ok(
      "{\"adapters\": [{\"type\": \"native\", \"dir\": \"/x\", \"name\": \"echo\",\n"
      "   \"apps\": [{\"name\": \"echo\", \"conn_critical\": {\"kbytes_per_second\": 64}}]}],\n"
      " \"vhosts\": [{\"ip\": \"127.0.0.1\", \"port\": 7681, \"app\": \"echo\"}],\n"
      " \"conn_notice\": {\"kbytes_per_second\": 8},\n"
      " \"conn_critical\": {\"kbytes_per_second\": 9223372036854775807}}");
  struct gc_limits l;
  gc_limits_from_config(&l, cfg->root, NULL);
  assert_true(l.v[GC_STAT_STATUS_YELLOW][GC_CONN_STAT_BYTES_PER_SECOND] == 8192);
  assert_true(l.v[GC_STAT_STATUS_RED][GC_CONN_STAT_BYTES_PER_SECOND] == UINT64_MAX);
  gc_limits_from_config(&l, cfg->root, cfg->adapters[0].apps[0].json);
  assert_true(l.v[GC_STAT_STATUS_YELLOW][GC_CONN_STAT_BYTES_PER_SECOND] == 8192);
  assert_true(l.v[GC_STAT_STATUS_RED][GC_CONN_STAT_BYTES_PER_SECOND] == 65536);
  /* Logs name the statistic as the API does, in its unit. */
  assert_string_equal(gc_stat_name(GC_CONN_STAT_BYTES_PER_SECOND), "bytes_per_second");
  gc_config_free(cfg);
}

/* What a config can hold but this host cannot serve, before any adapter
 * is loaded. */
static void test_check_serve(void **state) {
  (void)state;
  char err[512] = "";
  struct gc_config *cfg = load_ok(
      "{" ADAPTERS ",\n \"vhosts\": [{\"ip\": \"127.0.0.1\", \"port\": 7681, \"app\": \"echo\"},\n"
      "  {\"ip\": \"::\", \"port\": 7682, \"protocol\": \"wss\", \"app\": \"echo\"}]}");
  assert_int_equal(gc_config_check_serve(cfg, err, sizeof err), ENOTSUP);
  assert_string_equal(err, "vhosts[1] ([::]:7682): protocol \"wss\" needs an "
                           "\"ssl_keys_path\" (PREFIX of PREFIX.key and "
                           "PREFIX.cert), in the vhost or at the config's root");
  gc_config_free(cfg);
  /* The root's ssl_keys_path serves it; ws and wss cannot share a port. */
  cfg = load_ok(
      "{" ADAPTERS ",\n \"ssl_keys_path\": \"/k/srv\", \"vhosts\": [\n"
      "  {\"ip\": \"::\", \"port\": 7682, \"protocol\": \"wss\", \"app\": \"echo\"}]}");
  assert_int_equal(gc_config_check_serve(cfg, err, sizeof err), 0);
  assert_string_equal(cfg->vhosts[0].ssl_keys_path, "/k/srv");
  gc_config_free(cfg);
  cfg = load_ok(
      "{" ADAPTERS ",\n \"ssl_keys_path\": \"/k/srv\", \"vhosts\": [\n"
      "  {\"ip\": \"::\", \"port\": 7682, \"protocol\": \"wss\", \"app\": \"echo\",\n"
      "   \"ssl_keys_path\": \"/k/own\"},\n"
      "  {\"ip\": \"::\", \"port\": 7682, \"app\": \"echo\"}]}");
  assert_string_equal(cfg->vhosts[0].ssl_keys_path, "/k/own");
  assert_int_equal(gc_config_check_serve(cfg, err, sizeof err), ENOTSUP);
  assert_string_equal(err, "vhosts[1] ([::]:7682): vhosts[0] serves the same "
                           "address with another protocol or other keys");
  gc_config_free(cfg);
  cfg = load_ok("{" ADAPTERS "," VHOSTS "}");
  assert_int_equal(gc_config_check_serve(cfg, err, sizeof err), 0);
  gc_config_free(cfg);
}

/* ---- allocation failures ------------------------------------------------- */

static long alloc_budget; /* allocations left before failing; <0: no limit */
static void *failing_realloc(void *p, size_t n) {
  if (alloc_budget == 0)
    return NULL;
  if (alloc_budget > 0)
    alloc_budget--;
  return realloc(p, n);
}

/* Fails the 1st, 2nd, ... host allocation of one load until it succeeds:
 * each failure is a clean ENOMEM with a message, and LeakSanitizer checks
 * that nothing is left behind. Returns how many allocations a load takes. */
static long alloc_sweep(const char *json, const char *path) {
  int rc = ENOMEM;
  long n;
  for (n = 0; n < 1000 && rc == ENOMEM; n++) {
    struct gc_config *cfg = (struct gc_config *)&cfg;
    char err[256] = "";
    alloc_budget = n;
    gc_alloc_set(failing_realloc, NULL);
    rc = path ? gc_config_load_file(path, &cfg, err, sizeof err)
              : gc_config_load_string(json, "t.json", &cfg, err, sizeof err);
    gc_alloc_set(NULL, NULL);
    if (rc == ENOMEM) {
      assert_null(cfg);
      assert_non_null(strstr(err, ": out of memory"));
    } else {
      assert_int_equal(rc, 0);
      assert_int_equal(cfg->adapters[1].apps[0].id, 2);
      assert_non_null(cfg->log_file);
      gc_config_free(cfg);
    }
  }
  assert_int_equal(rc, 0);
  return n;
}

static void test_allocation_failures(void **state) {
  (void)state;
  const char *json =
      "{\"adapters\": [{\"type\": \"native\", \"dir\": \"/x\", \"name\": \"e\",\n"
      "  \"apps\": [{\"name\": \"echo\", \"type_name\": \"t\", \"file_name\": \"f\"},\n"
      "           {\"name\": \"two\", \"route\": \"query.room\"}]},\n"
      "  {\"type\": \"lua\", \"apps\": [{\"name\": \"chat\", \"file_name\": \"c.lua\"}]}],\n"
      " \"vhosts\": [{\"ip\": \"::\", \"port\": 1, \"app\": \"echo\"},\n"
      "            {\"ip\": \"::\", \"port\": 2, \"protocol\": \"wss\", \"app\": \"chat\"}],\n"
      " \"logging\": {\"log_file\": \"x%p.log\"}, \"working_dir\": \"/w\"}";
  long from_string = alloc_sweep(json, NULL);
  /* config, 2 adapters (3 strings + apps each), 4 app strings, a route's
   * parameter, vhosts (2 strings each), log file, working dir: every one
   * was failed once. */
  assert_true(from_string >= 20);
  char *path = write_temp(json);
  long from_file = alloc_sweep(NULL, path);
  assert_true(from_file > from_string); /* plus the text buffer */
  unlink(path);
}

/* ---- threading.worker_count ---------------------------------------------- */

#define THREADING(v) "{" ADAPTERS "," VHOSTS ",\n \"threading\": {\"worker_count\": " v "}}"

static uint32_t workers_of(const char *json) {
  struct gc_config *cfg = load_ok(json);
  uint32_t n = cfg->worker_count;
  gc_config_free(cfg);
  return n;
}

static void test_worker_count(void **state) {
  (void)state;
  /* Absent, or "auto": 0, left for gcs / gc.testing to resolve. */
  assert_int_equal(workers_of("{" ADAPTERS "," VHOSTS "}"), 0);
  assert_int_equal(workers_of("{" ADAPTERS "," VHOSTS ", \"threading\": {}}"), 0);
  assert_int_equal(workers_of(THREADING("\"auto\"")), 0);
  assert_int_equal(workers_of(THREADING("1")), 1);
  assert_int_equal(workers_of(THREADING("4")), 4);
  assert_int_equal(workers_of(THREADING("64")), 64);
  /* getOpt answers what the JSON holds: "auto" is a string, not a number. */
  struct gc_config *cfg = load_ok(THREADING("\"auto\""));
  const char *s = NULL;
  int32_t n = -7;
  assert_int_equal(gc_config_getopt(cfg, "threading.worker_count",
                                    GC_OPT_TYPE_STRING, &s), 0);
  assert_string_equal(s, "auto");
  assert_int_equal(gc_config_getopt(cfg, "threading.worker_count",
                                    GC_OPT_TYPE_INT, &n), EINVAL);
  assert_int_equal(n, -7);
  gc_config_free(cfg);
}

static void test_worker_count_refused(void **state) {
  (void)state;
#define WC_ERR(got)                                                            \
  "t.json:2:32: threading.worker_count: expected an integer 1..64 or "        \
  "\"auto\", got " got
  expect_error(THREADING("0"), WC_ERR("0"));
  expect_error(THREADING("65"), WC_ERR("65"));
  expect_error(THREADING("-1"), WC_ERR("-1"));
  expect_error(THREADING("\"many\""), WC_ERR("\"many\""));
  expect_error(THREADING("\"AUTO\""), WC_ERR("\"AUTO\""));
  expect_error(THREADING("\"4\""), WC_ERR("\"4\""));
  expect_error(THREADING("true"), WC_ERR("true"));
  expect_error(THREADING("4.0"), WC_ERR("4.0"));
  expect_error(THREADING("null"), WC_ERR("null"));
#undef WC_ERR
}

/* ---- an app's route ------------------------------------------------------- */

/* The route value 'r' of the one app; it stands at 2:38. */
#define ROUTE(r)                                                               \
  "{\"adapters\": [{\"type\": \"native\", \"dir\": \"/x\", \"name\": \"echo\",\n" \
  "  \"apps\": [{\"name\": \"echo\", \"route\": " r "}]}]," VHOSTS "}"

static void test_route(void **state) {
  (void)state;
  struct gc_config *cfg = load_ok(ROUTE("\"path\""));
  assert_int_equal(cfg->adapters[0].apps[0].route, GC_ROUTE_PATH);
  assert_null(cfg->adapters[0].apps[0].route_param);
  gc_config_free(cfg);

  cfg = load_ok(ROUTE("\"query.room\""));
  assert_int_equal(cfg->adapters[0].apps[0].route, GC_ROUTE_QUERY);
  assert_string_equal(cfg->adapters[0].apps[0].route_param, "room");
  gc_config_free(cfg);

  /* Every allowed character, and the longest name (64). */
  cfg = load_ok(ROUTE("\"query.AZaz09_.~-\""));
  assert_int_equal(cfg->adapters[0].apps[0].route, GC_ROUTE_QUERY);
  assert_string_equal(cfg->adapters[0].apps[0].route_param, "AZaz09_.~-");
  gc_config_free(cfg);
  cfg = load_ok(ROUTE("\"query.0123456789012345678901234567890123456789"
                      "012345678901234567890123\""));
  assert_int_equal(strlen(cfg->adapters[0].apps[0].route_param), 64);
  gc_config_free(cfg);

  /* Each app has its own; a lua app may have one too. */
  cfg = load_ok(
      "{\"adapters\": [{\"type\": \"native\", \"dir\": \"/x\", \"name\": \"e\",\n"
      "  \"apps\": [{\"name\": \"echo\"}, {\"name\": \"two\", \"route\": \"path\"}]},\n"
      "  {\"type\": \"lua\", \"apps\": [{\"name\": \"chat\", \"file_name\": \"c.lua\",\n"
      "                            \"route\": \"query.r\"}]}]," VHOSTS "}");
  assert_int_equal(cfg->adapters[0].apps[0].route, GC_ROUTE_NONE);
  assert_null(cfg->adapters[0].apps[0].route_param);
  assert_int_equal(cfg->adapters[0].apps[1].route, GC_ROUTE_PATH);
  assert_int_equal(cfg->adapters[1].apps[0].route, GC_ROUTE_QUERY);
  assert_string_equal(cfg->adapters[1].apps[0].route_param, "r");
  gc_config_free(cfg);
}

static void test_route_refused(void **state) {
  (void)state;
#define ROUTE_ERR(got)                                                         \
  "t.json:2:38: adapters[0].apps[0].route: " got " is not a route; use "      \
  "\"path\" or \"query.NAME\" (e.g. \"query.room\")"
#define ROUTE_NAME_ERR(got)                                                    \
  "t.json:2:38: adapters[0].apps[0].route: " got " is not a route; use "      \
  "\"path\" or \"query.NAME\" with NAME 1..64 of A-Z a-z 0-9 _ . ~ - (e.g. "   \
  "\"query.room\")"
  expect_error(ROUTE("\"room\""), ROUTE_ERR("\"room\""));
  expect_error(ROUTE("\"query\""), ROUTE_ERR("\"query\""));
  expect_error(ROUTE("\"Path\""), ROUTE_ERR("\"Path\""));
  expect_error(ROUTE("\"\""), ROUTE_ERR("\"\""));
  expect_error(ROUTE("3"), ROUTE_ERR("3"));
  expect_error(ROUTE("null"), ROUTE_ERR("null"));
  expect_error(ROUTE("[\"path\"]"), ROUTE_ERR("an array"));
  expect_error(ROUTE("\"query.\""), ROUTE_NAME_ERR("\"query.\""));
  expect_error(ROUTE("\"query.a b\""), ROUTE_NAME_ERR("\"query.a b\""));
  expect_error(ROUTE("\"query.a&b\""), ROUTE_NAME_ERR("\"query.a&b\""));
  expect_error(ROUTE("\"query.caf\\u00e9\""), ROUTE_NAME_ERR("\"query.café\""));
  /* 65 characters: one too many. */
  expect_error(ROUTE("\"query.01234567890123456789012345678901234567890123456789"
                     "012345678901234\""),
               ROUTE_NAME_ERR("\"query.01234567890123456789012345678901234567..."));
#undef ROUTE_ERR
#undef ROUTE_NAME_ERR
}

/* ---- settings the host reads at run time ---------------------------------- */

#define KEEP_ALIVE(obj) "{" ADAPTERS "," VHOSTS ", \"keep_alive\": " obj "}"

/* Loads 'json' and checks its keep-alive fields (milliseconds). */
static void expect_keep_alive(const char *json, uint64_t timeout_ms,
                              uint64_t interval_ms, uint32_t retries) {
  struct gc_config *cfg = load_ok(json);
  if (cfg->keep_alive_timeout_ms != timeout_ms ||
      cfg->keep_alive_interval_ms != interval_ms ||
      cfg->keep_alive_retries != retries)
    fail_msg("%s: got %llu/%llu/%u, wanted %llu/%llu/%u", json,
             (unsigned long long)cfg->keep_alive_timeout_ms,
             (unsigned long long)cfg->keep_alive_interval_ms,
             cfg->keep_alive_retries, (unsigned long long)timeout_ms,
             (unsigned long long)interval_ms, retries);
  gc_config_free(cfg);
}

static void test_keep_alive(void **state) {
  (void)state;
  /* No keep_alive object: 30 s, a ping every 10 s, 3 retries. */
  expect_keep_alive("{" ADAPTERS "," VHOSTS "}", 30000, 10000, 3);
  /* An object: a key left out keeps its default, but the interval is then
   * the timeout's. */
  expect_keep_alive(KEEP_ALIVE("{}"), 30000, 30000, 3);
  expect_keep_alive(KEEP_ALIVE("{\"comment\": \"c\"}"), 30000, 30000, 3);
  expect_keep_alive(KEEP_ALIVE("{\"timeout\": 60}"), 60000, 60000, 3);
  expect_keep_alive(KEEP_ALIVE("{\"interval\": 5}"), 30000, 5000, 3);
  expect_keep_alive(KEEP_ALIVE("{\"retries\": 7}"), 30000, 30000, 7);
  expect_keep_alive(KEEP_ALIVE("{\"timeout\": 20, \"interval\": 4, \"retries\": 2}"),
                    20000, 4000, 2);
  /* Retries are bounded; seconds are multiplied in 64 bits. */
  expect_keep_alive(KEEP_ALIVE("{\"retries\": 100}"), 30000, 30000, 100);
  expect_keep_alive(KEEP_ALIVE("{\"retries\": 101}"), 30000, 30000, 100);
  expect_keep_alive(KEEP_ALIVE("{\"retries\": 4294967295}"), 30000, 30000, 100);
  expect_keep_alive(KEEP_ALIVE("{\"timeout\": 4294967295, \"interval\": 4294967295}"),
                    4294967295000ull, 4294967295000ull, 3);
  /* "timeout": 0 turns it off, whatever else is there. */
  expect_keep_alive(KEEP_ALIVE("{\"timeout\": 0}"), 0, 0, 0);
  expect_keep_alive(KEEP_ALIVE("{\"timeout\": 0, \"interval\": 5, \"retries\": 2}"),
                    0, 0, 0);
}

static void test_conn_lines_per_second(void **state) {
  (void)state;
  struct gc_config *cfg = load_ok("{" ADAPTERS "," VHOSTS "}");
  assert_int_equal(cfg->conn_lines_per_second, 100);
  gc_config_free(cfg);
  cfg = load_ok("{" ADAPTERS "," VHOSTS ", \"logging\": {\"level\": \"ERR\"}}");
  assert_int_equal(cfg->conn_lines_per_second, 100);
  gc_config_free(cfg);
  cfg = load_ok("{" ADAPTERS "," VHOSTS ", \"logging\": {\"conn_lines_per_second\": 7}}");
  assert_int_equal(cfg->conn_lines_per_second, 7);
  gc_config_free(cfg);
  cfg = load_ok("{" ADAPTERS "," VHOSTS ",\n"
                " \"logging\": {\"conn_lines_per_second\": 4294967295}}");
  assert_true(cfg->conn_lines_per_second == UINT32_MAX);
  gc_config_free(cfg);
  cfg = load_ok("{" ADAPTERS "," VHOSTS ", \"logging\": {\"conn_lines_per_second\": 0}}");
  assert_int_equal(cfg->conn_lines_per_second, 0); /* no limit */
  gc_config_free(cfg);
}

/* "http": the CA file and the verification of httpRequest's https. */
static void test_http_tls(void **state) {
  (void)state;
  struct gc_config *cfg = load_ok("{" ADAPTERS "," VHOSTS "}");
  assert_null(cfg->http_ca_file);
  assert_int_equal(cfg->http_verify_off, 0);
  gc_config_free(cfg);
  cfg = load_ok("{" ADAPTERS "," VHOSTS ", \"http\": {}}");
  assert_null(cfg->http_ca_file);
  assert_int_equal(cfg->http_verify_off, 0);
  gc_config_free(cfg);
  cfg = load_ok("{" ADAPTERS "," VHOSTS
                ", \"http\": {\"ca_file\": \"/etc/ca.pem\", \"verify\": true}}");
  assert_string_equal(cfg->http_ca_file, "/etc/ca.pem");
  assert_int_equal(cfg->http_verify_off, 0);
  gc_config_free(cfg);
  cfg = load_ok("{" ADAPTERS "," VHOSTS ", \"http\": {\"verify\": false}}");
  assert_int_equal(cfg->http_verify_off, 1);
  gc_config_free(cfg);
  expect_error("{" ADAPTERS "," VHOSTS ",\n \"http\": {\"ca_file\": \"\"}}",
               "t.json:2:22: http.ca_file: expected a non-empty string, got \"\"");
  expect_error("{" ADAPTERS "," VHOSTS ",\n \"http\": {\"verify\": 1}}",
               "t.json:2:21: http.verify: expected true or false, got 1");
  expect_error("{" ADAPTERS "," VHOSTS ",\n \"http\": {\"cafile\": \"x\"}}",
               "t.json:2:11: http: unknown key \"cafile\" (did you mean \"ca_file\"?)");
}

/* "s2s": the CA file and the verification of wss links. */
#define S2S(obj) "{" ADAPTERS "," VHOSTS ",\n\"s2s\": " obj "}"

/* Loading 'json' fails with EINVAL and a message holding 'part'. */
static void expect_error_part(const char *json, const char *part) {
  struct gc_config *cfg = NULL;
  char err[1024] = "";
  int rc = gc_config_load_string(json, "t.json", &cfg, err, sizeof err);
  if (rc != EINVAL || !strstr(err, part))
    fail_msg("rc %d, error '%s', wanted one with '%s'", rc, err, part);
  assert_null(cfg);
}

static void test_s2s(void **state) {
  (void)state;
  /* Absent: the system's store, verified. */
  struct gc_config *cfg = load_ok("{" ADAPTERS "," VHOSTS "}");
  assert_null(cfg->s2s_ca_file);
  assert_int_equal(cfg->s2s_verify, 1);
  gc_config_free(cfg);
  cfg = load_ok(S2S("{}"));
  assert_null(cfg->s2s_ca_file);
  assert_int_equal(cfg->s2s_verify, 1);
  gc_config_free(cfg);
  cfg = load_ok(S2S("{\"ca_file\": \"/etc/gcs/ca.pem\", \"verify\": true}"));
  assert_string_equal(cfg->s2s_ca_file, "/etc/gcs/ca.pem");
  assert_int_equal(cfg->s2s_verify, 1);
  gc_config_free(cfg);
  cfg = load_ok(S2S("{\"verify\": false}"));
  assert_null(cfg->s2s_ca_file);
  assert_int_equal(cfg->s2s_verify, 0);
  gc_config_free(cfg);
  /* Refused: wrong types, an empty file name, unknown keys. */
  expect_error_part(S2S("{\"verify\": 1}"), "verify");
  expect_error_part(S2S("{\"verify\": \"no\"}"), "verify");
  expect_error_part(S2S("{\"ca_file\": 3}"), "ca_file");
  expect_error_part(S2S("{\"ca_file\": \"\"}"), "ca_file");
  expect_error_part(S2S("{\"cafile\": \"x\"}"), "unknown key \"cafile\"");
  expect_error_part(S2S("true"), "s2s");
}

/* Each app's limits: the defaults, the root's, then the app's own, as
 * gc_limits_from_config gives them. */
static void test_app_limits(void **state) {
  (void)state;
  struct gc_config *cfg = load_ok("{" ADAPTERS "," VHOSTS "}");
  const struct gc_limits *l = &cfg->adapters[0].apps[0].limits;
  for (int level = 0; level <= GC_STAT_STATUS_RED; level++)
    for (int stat = 0; stat <= GC_STAT_MAX; stat++) {
      uint64_t want = 0;
      if (level == GC_STAT_STATUS_RED && stat == GC_CONN_STAT_MAX_MSG_SIZE)
        want = GC_DEFAULT_MAX_MSG_SIZE;
      if (level == GC_STAT_STATUS_RED && stat == GC_CONN_STAT_OUTPUT_QUEUE_SIZE)
        want = GC_DEFAULT_OUTPUT_QUEUE;
      if (l->v[level][stat] != want)
        fail_msg("[%d][%d] = %llu, wanted %llu", level, stat,
                 (unsigned long long)l->v[level][stat], (unsigned long long)want);
    }
  gc_config_free(cfg);

  cfg = load_ok(
      "{\"adapters\": [{\"type\": \"native\", \"dir\": \"/x\", \"name\": \"echo\",\n"
      "   \"apps\": [{\"name\": \"echo\", \"conn_critical\": {\"kbytes_per_second\": 64,\n"
      "                                                 \"max_msg_size\": 0}},\n"
      "              {\"name\": \"two\", \"conn_notice\": {\"msg_per_second\": 5}}]}],\n"
      " \"vhosts\": [{\"ip\": \"127.0.0.1\", \"port\": 7681, \"app\": \"echo\"}],\n"
      " \"conn_notice\": {\"kbytes_per_second\": 8, \"msg_per_second\": 50},\n"
      " \"conn_critical\": {\"output_queue_size\": 10}}");
  const struct gc_limits *one = &cfg->adapters[0].apps[0].limits;
  const struct gc_limits *two = &cfg->adapters[0].apps[1].limits;
  assert_true(one->v[GC_STAT_STATUS_YELLOW][GC_CONN_STAT_MSG_PER_SECOND] == 50);
  assert_true(one->v[GC_STAT_STATUS_YELLOW][GC_CONN_STAT_BYTES_PER_SECOND] == 8192);
  assert_true(one->v[GC_STAT_STATUS_RED][GC_CONN_STAT_BYTES_PER_SECOND] == 65536);
  assert_true(one->v[GC_STAT_STATUS_RED][GC_CONN_STAT_MAX_MSG_SIZE] == 0);
  assert_true(one->v[GC_STAT_STATUS_RED][GC_CONN_STAT_OUTPUT_QUEUE_SIZE] == 10);
  assert_true(two->v[GC_STAT_STATUS_YELLOW][GC_CONN_STAT_MSG_PER_SECOND] == 5);
  assert_true(two->v[GC_STAT_STATUS_YELLOW][GC_CONN_STAT_BYTES_PER_SECOND] == 8192);
  assert_true(two->v[GC_STAT_STATUS_RED][GC_CONN_STAT_BYTES_PER_SECOND] == 0);
  assert_true(two->v[GC_STAT_STATUS_RED][GC_CONN_STAT_MAX_MSG_SIZE] ==
              GC_DEFAULT_MAX_MSG_SIZE);
  assert_true(two->v[GC_STAT_STATUS_RED][GC_CONN_STAT_OUTPUT_QUEUE_SIZE] == 10);
  /* The same as computing them from the JSON. */
  for (size_t k = 0; k < 2; k++) {
    struct gc_limits want;
    gc_limits_from_config(&want, cfg->root, cfg->adapters[0].apps[k].json);
    assert_memory_equal(&cfg->adapters[0].apps[k].limits, &want, sizeof want);
  }
  gc_config_free(cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_minimal_and_defaults),
      cmocka_unit_test(test_full_game_carrier_example),
      cmocka_unit_test(test_comments_ignored_everywhere),
      cmocka_unit_test(test_log_file_and_level),
      cmocka_unit_test(test_log_format),
      cmocka_unit_test(test_unknown_key_root),
      cmocka_unit_test(test_unknown_key_nested),
      cmocka_unit_test(test_bad_port),
      cmocka_unit_test(test_bad_types),
      cmocka_unit_test(test_adapter_rules),
      cmocka_unit_test(test_duplicate_app),
      cmocka_unit_test(test_vhost_rules),
      cmocka_unit_test(test_settings_free_form),
      cmocka_unit_test(test_positions_survive_tricky_text),
      cmocka_unit_test(test_syntax_errors),
      cmocka_unit_test(test_load_file),
      cmocka_unit_test(test_arguments),
      cmocka_unit_test(test_zero_is_no_limit),
      cmocka_unit_test(test_zero_refused_where_off_makes_no_sense),
      cmocka_unit_test(test_kbytes_per_second_is_kib),
      cmocka_unit_test(test_check_serve),
      cmocka_unit_test(test_allocation_failures),
      cmocka_unit_test(test_worker_count),
      cmocka_unit_test(test_worker_count_refused),
      cmocka_unit_test(test_route),
      cmocka_unit_test(test_route_refused),
      cmocka_unit_test(test_keep_alive),
      cmocka_unit_test(test_conn_lines_per_second),
      cmocka_unit_test(test_app_limits),
      cmocka_unit_test(test_http_tls),
      cmocka_unit_test(test_s2s),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
