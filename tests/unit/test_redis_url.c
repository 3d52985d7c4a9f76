/* Tests host/redis_url.c: the "redis.url" of the config, what it yields
 * and what each bad one says; and the config's "redis" object (the URL's
 * message placed at its line:col, the keys, the defaults). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "redis_url.h"

static struct gc_redis_url parse_ok(const char *s) {
  struct gc_redis_url u;
  char why[256] = "x";
  int rc = gc_redis_url_parse(s, &u, why, sizeof why);
  if (rc != 0)
    fail_msg("%s: %s", s, why);
  assert_string_equal(why, "");
  return u;
}

static void bad(const char *s, const char *want) {
  struct gc_redis_url u;
  char why[256] = "";
  int rc = gc_redis_url_parse(s, &u, why, sizeof why);
  if (rc != EINVAL || strcmp(why, want) != 0)
    fail_msg("%s: rc %d, '%s', wanted '%s'", s, rc, why, want);
}

static void test_valid(void **state) {
  (void)state;
  struct gc_redis_url u = parse_ok("redis://127.0.0.1:6379/0");
  assert_string_equal(u.host, "127.0.0.1");
  assert_int_equal(u.port, 6379);
  assert_int_equal(u.db, 0);
  assert_false(u.has_password);
  assert_false(u.ipv6);

  u = parse_ok("redis://localhost"); /* port and db by default */
  assert_string_equal(u.host, "localhost");
  assert_int_equal(u.port, GC_REDIS_DEFAULT_PORT);
  assert_int_equal(u.db, 0);

  u = parse_ok("redis://redis-1.internal.example:7000/15");
  assert_string_equal(u.host, "redis-1.internal.example");
  assert_int_equal(u.port, 7000);
  assert_int_equal(u.db, 15);

  u = parse_ok("redis://[::1]:6380/3");
  assert_string_equal(u.host, "::1");
  assert_true(u.ipv6);
  assert_int_equal(u.port, 6380);
  assert_int_equal(u.db, 3);

  u = parse_ok("redis://[::1]");
  assert_int_equal(u.port, 6379);

  u = parse_ok("redis://h:1/"); /* an empty database is 0 */
  assert_int_equal(u.port, 1);
  assert_int_equal(u.db, 0);

  u = parse_ok("redis://h:65535/2147483647");
  assert_int_equal(u.port, 65535);
  assert_int_equal(u.db, 2147483647);
}

static void test_credentials(void **state) {
  (void)state;
  struct gc_redis_url u = parse_ok("redis://:s3cret@10.0.0.1:6380/2");
  assert_true(u.has_password);
  assert_string_equal(u.user, "");
  assert_string_equal(u.password, "s3cret");
  assert_string_equal(u.host, "10.0.0.1");

  u = parse_ok("redis://game:p%40ss%3a1@h/1"); /* %XX decoded */
  assert_string_equal(u.user, "game");
  assert_string_equal(u.password, "p@ss:1");

  u = parse_ok("redis://a:b@c@h:2"); /* the last '@' ends them */
  assert_string_equal(u.user, "a");
  assert_string_equal(u.password, "b@c");
  assert_string_equal(u.host, "h");

  u = parse_ok("redis://:@h"); /* an empty password is still AUTH */
  assert_true(u.has_password);
  assert_string_equal(u.password, "");
}

static void test_invalid(void **state) {
  (void)state;
  bad("http://127.0.0.1:6379",
      "expected a URL redis://HOST[:PORT][/DB], e.g. \"redis://127.0.0.1:6379/0\"");
  bad("127.0.0.1:6379",
      "expected a URL redis://HOST[:PORT][/DB], e.g. \"redis://127.0.0.1:6379/0\"");
  bad("rediss://h:6379", "rediss:// (TLS) is not supported: use "
                         "redis://HOST[:PORT][/DB] (through a TLS tunnel to a "
                         "remote Redis)");
  bad("redis://", "missing HOST: expected redis://HOST[:PORT][/DB]");
  bad("redis://:6379", "missing HOST: expected redis://HOST[:PORT][/DB]");
  bad("redis:///0", "missing HOST: expected redis://HOST[:PORT][/DB]");
  bad("redis://h:0", "bad port \"0\" (1..65535)");
  bad("redis://h:65536", "bad port \"65536\" (1..65535)");
  bad("redis://h:", "bad port \"\" (1..65535)");
  bad("redis://h:63x79/0", "bad port \"63x79\" (1..65535)");
  bad("redis://h:-1", "bad port \"-1\" (1..65535)");
  bad("redis://h:6379/x", "bad database \"x\" (a number 0..2147483647 after '/')");
  bad("redis://h:6379/2147483648",
      "bad database \"2147483648\" (a number 0..2147483647 after '/')");
  bad("redis://h:6379/0/1", "bad database \"0/1\" (a number 0..2147483647 after '/')");
  bad("redis://h:6379/0?timeout=1",
      "unexpected '?' in the URL: expected redis://HOST[:PORT][/DB]");
  bad("redis://h#x", "unexpected '#' in the URL: expected redis://HOST[:PORT][/DB]");
  bad("redis://my host", "unexpected ' ' in the URL: expected redis://HOST[:PORT][/DB]");
  bad("redis://h!st:1", "bad HOST \"h!st\" (a name, an IPv4 address or [IPv6])");
  bad("redis://[::1:6379", "missing ']' after the IPv6 address");
  bad("redis://[nope]:1", "bad IPv6 address \"nope\"");
  bad("redis://[]:1", "bad IPv6 address");
  bad("redis://[::1]x", "expected ':PORT' after the IPv6 address");
  bad("redis://user@h", "expected USER:PASSWORD@ or :PASSWORD@ before the host");
  bad("redis://:%zz@h", "bad user or password (at most 255 bytes; %XX escapes)");
  bad("redis://:%00@h", "bad user or password (at most 255 bytes; %XX escapes)");
  bad(NULL, "expected a URL redis://HOST[:PORT][/DB]");
  char longhost[400] = "redis://";
  memset(longhost + 8, 'a', 300);
  bad(longhost, "HOST longer than 255 bytes");
}

/* ---- the config's "redis" ------------------------------------------------ */

#define ADAPTERS                                                               \
  "\"adapters\": [{\"type\": \"native\", \"dir\": \"/x\", \"name\": \"echo\", " \
  "\"apps\": [{\"name\": \"echo\"}]}]"
#define VHOSTS                                                                 \
  "\"vhosts\": [{\"ip\": \"127.0.0.1\", \"port\": 7681, \"app\": \"echo\"}]"

static void config_error(const char *json, const char *want) {
  struct gc_config *cfg = NULL;
  char err[1024] = "";
  int rc = gc_config_load_string(json, "t.json", &cfg, err, sizeof err);
  if (rc != EINVAL || strcmp(err, want) != 0)
    fail_msg("rc %d, error\n  '%s'\nwanted\n  '%s'", rc, err, want);
  assert_null(cfg);
}

static void test_config(void **state) {
  (void)state;
  struct gc_config *cfg = NULL;
  char err[1024] = "";
  assert_int_equal(gc_config_load_string("{" ADAPTERS "," VHOSTS "}", "t.json",
                                         &cfg, err, sizeof err),
                   0);
  assert_null(cfg->redis_url); /* none: channels stay in the process */
  gc_config_free(cfg);

  assert_int_equal(
      gc_config_load_string("{" ADAPTERS "," VHOSTS ",\n \"redis\": {\"url\": "
                            "\"redis://127.0.0.1:6379/0\"}}",
                            "t.json", &cfg, err, sizeof err),
      0);
  assert_string_equal(cfg->redis_url, "redis://127.0.0.1:6379/0");
  assert_int_equal(cfg->redis_timeout_ms, 2000); /* the default */
  gc_config_free(cfg);

  assert_int_equal(
      gc_config_load_string("{" ADAPTERS "," VHOSTS ",\n \"redis\": {\"url\": "
                            "\"redis://h\", \"timeout_ms\": 0, \"comment\": "
                            "\"no bound\"}}",
                            "t.json", &cfg, err, sizeof err),
      0);
  assert_int_equal(cfg->redis_timeout_ms, 0);
  gc_config_free(cfg);

  config_error("{" ADAPTERS "," VHOSTS ",\n \"redis\": {\"url\": \"redis://h:99999/0\"}}",
               "t.json:2:19: redis.url: bad port \"99999\" (1..65535)");
  config_error("{" ADAPTERS "," VHOSTS ",\n \"redis\": {\n  \"url\": \"tcp://h\"}}",
               "t.json:3:10: redis.url: expected a URL redis://HOST[:PORT][/DB], "
               "e.g. \"redis://127.0.0.1:6379/0\"");
  config_error("{" ADAPTERS "," VHOSTS ",\n \"redis\": {\"url\": 6379}}",
               "t.json:2:19: redis.url: expected a string, got 6379");
  config_error("{" ADAPTERS "," VHOSTS ",\n \"redis\": {\"timeout_ms\": 5}}",
               "t.json:2:11: redis: missing required key \"url\"");
  config_error("{" ADAPTERS "," VHOSTS ",\n \"redis\": {\"url\": \"redis://h\", "
               "\"timout_ms\": 5}}",
               "t.json:2:32: redis: unknown key \"timout_ms\" (did you mean "
               "\"timeout_ms\"?)");
  config_error("{" ADAPTERS "," VHOSTS ",\n \"redis\": {\"url\": \"redis://h\", "
               "\"timeout_ms\": -1}}",
               "t.json:2:46: redis.timeout_ms: expected an integer "
               "0..4294967295, got -1");
  config_error("{" ADAPTERS "," VHOSTS ",\n \"redis\": \"redis://h\"}",
               "t.json:2:11: redis: expected an object, got \"redis://h\"");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid),
      cmocka_unit_test(test_credentials),
      cmocka_unit_test(test_invalid),
      cmocka_unit_test(test_config),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
