/* Tests host/config_getopt.c: getOpt's paths, every type and every error,
 * over a loaded config and over raw JSON the validator would refuse. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <game-carrier/server.h>

#include "config.h"

static const char *JSON =
    "{\"server_name\": \"debug\",\n"
    " \"adapters\": [{\"type\": \"native\", \"dir\": \"/x\", \"name\": \"echo\",\n"
    "   \"apps\": [{\"name\": \"echo\", \"type_name\": \"E\"}, {\"name\": \"two\"}]},\n"
    "  {\"type\": \"lua\", \"apps\": [{\"name\": \"chat\", \"file_name\": \"chat.lua\",\n"
    "                               \"lua\": {\"memory_limit\": 2147483648}}]}],\n"
    " \"vhosts\": [{\"ip\": \"127.0.0.1\", \"port\": 7681, \"app\": \"echo\"},\n"
    "            {\"ip\": \"::\", \"port\": 7682, \"protocol\": \"wss\", \"app\": \"chat\"}],\n"
    " \"logging\": {\"level\": \"NORMAL\", \"comment\": \"c\"},\n"
    " \"threading\": {\"use_libuv\": true, \"worker_count\": 4},\n"
    " \"max_connections\": 5000000000, \"max_groups\": 2147483647,\n"
    " \"keep_alive\": {\"timeout\": 0, \"retries\": 3}}";

static int setup(void **state) {
  struct gc_config *cfg;
  char err[256];
  if (gc_config_load_string(JSON, "t.json", &cfg, err, sizeof err) != 0) {
    print_error("setup: %s\n", err);
    return -1;
  }
  *state = cfg;
  return 0;
}

static int teardown(void **state) {
  gc_config_free(*state);
  return 0;
}

/* getOpt only reads cfg->root: a hand-made config reaches values that
 * validation never lets through (negatives, reals, null, a "len" key). */
static int setup_raw(void **state) {
  static struct gc_config raw;
  json_error_t je;
  raw.root = json_loads(
      "{\"neg\": -5, \"min\": -2147483648, \"below\": -2147483649,\n"
      " \"max\": 2147483647, \"over\": 2147483648, \"real\": 1.5, \"nul\": null,\n"
      " \"f\": false, \"s16\": \"16\", \"obj\": {\"len\": 42, \"a\": 1},\n"
      " \"empty\": {}, \"arr\": [[1, 2, 3], []], \"a.b\": 1,\n"
      " \"logging\": {\"level\": \"LOUD\"}}",
      0, &je);
  if (!raw.root) {
    print_error("setup_raw: %s\n", je.text);
    return -1;
  }
  *state = &raw;
  return 0;
}

static int teardown_raw(void **state) {
  struct gc_config *raw = *state;
  json_decref(raw->root);
  raw->root = NULL;
  return 0;
}

static int32_t get_int(const struct gc_config *cfg, const char *name, int want_rc) {
  int32_t v = -777;
  assert_int_equal(gc_config_getopt(cfg, name, GC_OPT_TYPE_INT, &v), want_rc);
  if (want_rc)
    assert_int_equal(v, -777); /* a failed call writes nothing */
  return v;
}

static uint64_t get_u64(const struct gc_config *cfg, const char *name, int want_rc) {
  uint64_t v = 777;
  assert_int_equal(gc_config_getopt(cfg, name, GC_OPT_TYPE_UINT64, &v), want_rc);
  if (want_rc)
    assert_true(v == 777);
  return v;
}

static const char *get_str(const struct gc_config *cfg, const char *name, int want_rc) {
  static const char sentinel[] = "untouched";
  const char *s = sentinel;
  assert_int_equal(gc_config_getopt(cfg, name, GC_OPT_TYPE_STRING, &s), want_rc);
  if (want_rc)
    assert_ptr_equal(s, sentinel);
  return s;
}

/* ---- STRING --------------------------------------------------------------- */

static void test_string(void **state) {
  const struct gc_config *cfg = *state;
  assert_string_equal(get_str(cfg, "server_name", 0), "debug");
  assert_string_equal(get_str(cfg, "adapters[0].apps[0].name", 0), "echo");
  assert_string_equal(get_str(cfg, "adapters[0].apps[1].name", 0), "two");
  assert_string_equal(get_str(cfg, "adapters[0].apps[0].type_name", 0), "E");
  assert_string_equal(get_str(cfg, "adapters[1].apps[0].file_name", 0), "chat.lua");
  assert_string_equal(get_str(cfg, "adapters[1].type", 0), "lua");
  assert_string_equal(get_str(cfg, "vhosts[1].protocol", 0), "wss");
  assert_string_equal(get_str(cfg, "logging.comment", 0), "c");
  /* The pointer is into the config, the same on every call. */
  assert_ptr_equal(get_str(cfg, "server_name", 0), get_str(cfg, "server_name", 0));
  assert_ptr_equal(get_str(cfg, "adapters[0].apps[0].name", 0),
                   json_string_value(json_object_get(cfg->adapters[0].apps[0].json, "name")));
  /* Only a string is a string: numbers, booleans, containers, lengths. */
  get_str(cfg, "vhosts[0].port", EINVAL);
  get_str(cfg, "threading.use_libuv", EINVAL);
  get_str(cfg, "logging", EINVAL);
  get_str(cfg, "adapters", EINVAL);
  get_str(cfg, "adapters.len", EINVAL);
  get_str(cfg, "nope", ENOENT);
}

/* ---- UINT64 --------------------------------------------------------------- */

static void test_uint64(void **state) {
  const struct gc_config *cfg = *state;
  assert_true(get_u64(cfg, "max_connections", 0) == 5000000000ull);
  assert_true(get_u64(cfg, "vhosts[1].port", 0) == 7682);
  assert_true(get_u64(cfg, "adapters[1].apps[0].lua.memory_limit", 0) == 2147483648ull);
  assert_true(get_u64(cfg, "keep_alive.timeout", 0) == 0);
  assert_true(get_u64(cfg, "threading.use_libuv", 0) == 1);
  assert_true(get_u64(cfg, "adapters.len", 0) == 2);
  assert_true(get_u64(cfg, "logging.level", 0) == GCL_NORMAL);
  get_u64(cfg, "server_name", EINVAL);
  get_u64(cfg, "logging", EINVAL);
  get_u64(cfg, "keep_alive.interval", ENOENT);
}

static void test_uint64_raw(void **state) {
  const struct gc_config *raw = *state;
  get_u64(raw, "neg", EINVAL); /* does not fit */
  get_u64(raw, "real", EINVAL);
  get_u64(raw, "nul", EINVAL);
  assert_true(get_u64(raw, "f", 0) == 0);
  assert_true(get_u64(raw, "over", 0) == 2147483648ull);
}

/* ---- INT ------------------------------------------------------------------ */

static void test_int(void **state) {
  const struct gc_config *cfg = *state;
  assert_int_equal(get_int(cfg, "vhosts[0].port", 0), 7681);
  assert_int_equal(get_int(cfg, "threading.worker_count", 0), 4);
  assert_int_equal(get_int(cfg, "threading.use_libuv", 0), 1);
  assert_int_equal(get_int(cfg, "max_groups", 0), INT32_MAX);
  /* Too big for 32 bits. */
  get_int(cfg, "max_connections", EINVAL);
  get_int(cfg, "adapters[1].apps[0].lua.memory_limit", EINVAL);
  /* The level written as a name reads as its mask (Game Carrier's .NET
   * wrapper reads "logging.level" as a number). */
  assert_int_equal(get_int(cfg, "logging.level", 0), GCL_NORMAL);
  /* ...but only there: a string elsewhere is not a number, even one that
   * happens to be a level name. */
  get_int(cfg, "server_name", EINVAL);
  get_int(cfg, "vhosts[0].ip", EINVAL);
  get_int(cfg, "adapters[0]", EINVAL);
}

static void test_int_raw(void **state) {
  const struct gc_config *raw = *state;
  assert_int_equal(get_int(raw, "neg", 0), -5);
  assert_int_equal(get_int(raw, "min", 0), INT32_MIN);
  assert_int_equal(get_int(raw, "max", 0), INT32_MAX);
  get_int(raw, "below", EINVAL);
  get_int(raw, "over", EINVAL); /* 2^31 */
  get_int(raw, "real", EINVAL);
  get_int(raw, "nul", EINVAL);
  get_int(raw, "s16", EINVAL);
  assert_int_equal(get_int(raw, "f", 0), 0);
  /* A level that is not a level name stays an error. */
  get_int(raw, "logging.level", EINVAL);
}

static void test_level_forms(void **state) {
  (void)state;
  static const struct {
    const char *level;
    int32_t mask;
  } cases[] = {{"\"VERBOSE\"", GCL_VERBOSE},
               {"\"err|warn\"", GCL_ERR | GCL_WARN},
               {"\"user\"", GCL_USER},
               {"0", 0},
               {"1031", 1031}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char json[512];
    snprintf(json, sizeof json,
             "{\"adapters\": [{\"type\": \"lua\", \"apps\": [{\"name\": \"a\", "
             "\"file_name\": \"a.lua\"}]}], \"vhosts\": [{\"ip\": \"::\", "
             "\"port\": 1, \"app\": \"a\"}], \"logging\": {\"level\": %s}}",
             cases[i].level);
    struct gc_config *cfg;
    char err[256];
    assert_int_equal(gc_config_load_string(json, "t.json", &cfg, err, sizeof err), 0);
    assert_int_equal(get_int(cfg, "logging.level", 0), cases[i].mask);
    assert_true(get_u64(cfg, "logging.level", 0) == (uint64_t)cases[i].mask);
    assert_int_equal(cfg->log_level, cases[i].mask);
    gc_config_free(cfg);
  }
}

/* ---- NULL (existence) ----------------------------------------------------- */

static void test_null_type(void **state) {
  const struct gc_config *cfg = *state;
  assert_int_equal(gc_config_getopt(cfg, "logging", GC_OPT_TYPE_NULL, NULL), 0);
  assert_int_equal(gc_config_getopt(cfg, "adapters[1]", GC_OPT_TYPE_NULL, NULL), 0);
  assert_int_equal(gc_config_getopt(cfg, "adapters[0].apps[1].name", GC_OPT_TYPE_NULL, NULL), 0);
  assert_int_equal(gc_config_getopt(cfg, "vhosts.len", GC_OPT_TYPE_NULL, NULL), 0);
  /* A value pointer is allowed and left alone. */
  int32_t v = 5;
  assert_int_equal(gc_config_getopt(cfg, "vhosts[0].port", GC_OPT_TYPE_NULL, &v), 0);
  assert_int_equal(v, 5);
  assert_int_equal(gc_config_getopt(cfg, "nope", GC_OPT_TYPE_NULL, NULL), ENOENT);
  assert_int_equal(gc_config_getopt(cfg, "adapters[2]", GC_OPT_TYPE_NULL, NULL), ENOENT);
  assert_int_equal(gc_config_getopt(cfg, "adapters[0].apps[0].file_name", GC_OPT_TYPE_NULL, NULL),
                   ENOENT);
}

static void test_null_type_raw(void **state) {
  const struct gc_config *raw = *state;
  /* A JSON null exists. */
  assert_int_equal(gc_config_getopt(raw, "nul", GC_OPT_TYPE_NULL, NULL), 0);
  /* Keys holding a dot cannot be addressed: the dot always separates. */
  assert_int_equal(gc_config_getopt(raw, "a.b", GC_OPT_TYPE_NULL, NULL), ENOENT);
}

/* ---- len -------------------------------------------------------------------- */

static void test_len(void **state) {
  const struct gc_config *cfg = *state;
  assert_int_equal(get_int(cfg, "adapters.len", 0), 2);
  assert_int_equal(get_int(cfg, "adapters[0].apps.len", 0), 2);
  assert_int_equal(get_int(cfg, "adapters[1].apps.len", 0), 1);
  assert_int_equal(get_int(cfg, "vhosts.len", 0), 2);
  /* An object's size: its keys, comment included. */
  assert_int_equal(get_int(cfg, "logging.len", 0), 2);
  assert_int_equal(get_int(cfg, "adapters[0].len", 0), 4);
  /* Game Carrier's doc example reads "apps.len": every app of the config
   * (there is no top-level "apps"; apps[ID] is the app with that id). */
  assert_int_equal(get_int(cfg, "apps.len", 0), 3);
  /* No length of a scalar, and "len" is not a step in the middle. */
  get_int(cfg, "server_name.len", ENOENT);
  get_int(cfg, "vhosts[0].port.len", ENOENT);
  get_int(cfg, "adapters.len.x", ENOENT);
  get_int(cfg, "adapters.len[0]", ENOENT);
}

static void test_len_raw(void **state) {
  const struct gc_config *raw = *state;
  /* A real "len" key wins over the pseudo-property. */
  assert_int_equal(get_int(raw, "obj.len", 0), 42);
  assert_int_equal(get_int(raw, "empty.len", 0), 0);
  assert_int_equal(get_int(raw, "arr.len", 0), 2);
  assert_int_equal(get_int(raw, "arr[0].len", 0), 3);
  assert_int_equal(get_int(raw, "arr[1].len", 0), 0);
  assert_int_equal(get_int(raw, "arr[0][2]", 0), 3);
}

/* ---- errors ----------------------------------------------------------------- */

static void test_missing_paths(void **state) {
  const struct gc_config *cfg = *state;
  get_int(cfg, "nope", ENOENT);
  get_int(cfg, "logging.nope", ENOENT);
  get_int(cfg, "adapters[2].type", ENOENT);
  get_int(cfg, "vhosts[99999999999999999999999999].port", ENOENT);
  /* A key of a non-object, an index of a non-array. */
  get_int(cfg, "logging[0]", ENOENT);
  get_int(cfg, "adapters.type", ENOENT);
  get_int(cfg, "server_name.x", ENOENT);
  get_int(cfg, "server_name[0]", ENOENT);
  /* Keys are case-sensitive. */
  get_int(cfg, "Vhosts[0].port", ENOENT);
}

static void test_malformed_paths(void **state) {
  const struct gc_config *cfg = *state;
  static const char *const bad[] = {
      "",         ".",          "a..b",       ".adapters",  "adapters.",
      "vhosts[",  "vhosts[]",   "vhosts[x]",  "vhosts[-1]", "vhosts[0",
      "vhosts[1x]", "vhosts[0]port", "vhosts]", "[0]",      "adapters.[0]",
      "adapters[0]..name", "vhosts[0].port.", "vhosts[ 0]",
      /* malformed even though its first key does not exist: still EINVAL */
      "nope..x",  "nope["};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int32_t v = -777;
    int rc = gc_config_getopt(cfg, bad[i], GC_OPT_TYPE_INT, &v);
    if (rc != EINVAL)
      fail_msg("path '%s': rc %d, wanted EINVAL", bad[i], rc);
    assert_int_equal(v, -777);
    assert_int_equal(gc_config_getopt(cfg, bad[i], GC_OPT_TYPE_NULL, NULL), EINVAL);
  }
}

/* Values the loader reads into struct gc_config still read as the JSON
 * holds them: "auto" workers are a string, never a made-up number. */
static void test_extracted_values_read_raw(void **state) {
  (void)state;
  struct gc_config *cfg;
  char err[256];
  int rc = gc_config_load_string(
      "{\"adapters\": [{\"type\": \"native\", \"dir\": \"/x\", \"name\": \"e\",\n"
      "  \"apps\": [{\"name\": \"echo\", \"route\": \"query.room\"}]}],\n"
      " \"vhosts\": [{\"ip\": \"::\", \"port\": 1, \"app\": \"echo\"}],\n"
      " \"threading\": {\"worker_count\": \"auto\"}}",
      "t.json", &cfg, err, sizeof err);
  if (rc != 0)
    fail_msg("load: %s", err);
  assert_int_equal(cfg->worker_count, 0);
  assert_string_equal(get_str(cfg, "threading.worker_count", 0), "auto");
  get_int(cfg, "threading.worker_count", EINVAL);
  get_u64(cfg, "threading.worker_count", EINVAL);
  assert_int_equal(gc_config_getopt(cfg, "threading.worker_count",
                                    GC_OPT_TYPE_NULL, NULL), 0);
  assert_string_equal(get_str(cfg, "adapters[0].apps[0].route", 0), "query.room");
  get_int(cfg, "adapters[0].apps[0].route", EINVAL);
  gc_config_free(cfg);
}

static void test_bad_arguments(void **state) {
  const struct gc_config *cfg = *state;
  int32_t v = -777;
  assert_int_equal(gc_config_getopt(NULL, "server_name", GC_OPT_TYPE_NULL, NULL), EINVAL);
  assert_int_equal(gc_config_getopt(cfg, NULL, GC_OPT_TYPE_INT, &v), EINVAL);
  assert_int_equal(gc_config_getopt(cfg, "vhosts[0].port", GC_OPT_TYPE_INT, NULL), EINVAL);
  assert_int_equal(gc_config_getopt(cfg, "server_name", GC_OPT_TYPE_STRING, NULL), EINVAL);
  assert_int_equal(gc_config_getopt(cfg, "max_connections", GC_OPT_TYPE_UINT64, NULL), EINVAL);
  assert_int_equal(gc_config_getopt(cfg, "vhosts[0].port", 7, &v), EINVAL); /* 4..6: ours */
  assert_int_equal(gc_config_getopt(cfg, "vhosts[0].port", -1, &v), EINVAL);
  assert_int_equal(v, -777);
  /* A config without a root (never loaded) answers, it does not crash. */
  struct gc_config empty = {0};
  assert_int_equal(gc_config_getopt(&empty, "server_name", GC_OPT_TYPE_NULL, NULL), EINVAL);
}

/* ---- settings, apps[ID], apps.NAME, JSON, WHERE ---------------------------- */

static const char *SETTINGS_JSON =
    "{\"settings\": {\"motd\": \"root\", \"db\": {\"host\": \"h\", \"port\": 1},\n"
    "              \"tags\": [\"a\"]},\n"
    " \"adapters\": [{\"type\": \"native\", \"dir\": \"/x\", \"name\": \"echo\",\n"
    "   \"settings\": {\"db\": {\"port\": 2}, \"motd\": \"adapter\"},\n"
    "   \"apps\": [{\"name\": \"echo\"},\n"
    "            {\"name\": \"two\", \"settings\": {\"db\": {\"port\": 3, \"ssl\": true},\n"
    "                                         \"tags\": [\"b\", 1.5, null]}}]},\n"
    "  {\"type\": \"lua\", \"apps\": [{\"name\": \"chat\", \"file_name\": \"c.lua\"}]}],\n"
    " \"vhosts\": [{\"ip\": \"127.0.0.1\", \"port\": 7681, \"app\": \"echo\"}]}";

static struct gc_config *load_settings(void) {
  struct gc_config *cfg;
  char err[256];
  assert_int_equal(gc_config_load_string(SETTINGS_JSON, "s.json", &cfg, err, sizeof err), 0);
  return cfg;
}

static void test_settings_merged(void **state) {
  (void)state;
  struct gc_config *cfg = load_settings();
  /* echo (id 0): the adapter's over the root's, objects merged by key. */
  assert_string_equal(get_str(cfg, "apps[0].settings.motd", 0), "adapter");
  assert_string_equal(get_str(cfg, "apps.echo.settings.motd", 0), "adapter");
  assert_int_equal(get_int(cfg, "apps[0].settings.db.port", 0), 2);
  assert_string_equal(get_str(cfg, "apps[0].settings.db.host", 0), "h");
  /* two (id 1): its own keys win; an array replaces, it does not merge. */
  assert_int_equal(get_int(cfg, "apps.two.settings.db.port", 0), 3);
  assert_int_equal(get_int(cfg, "apps[1].settings.db.ssl", 0), 1);
  assert_string_equal(get_str(cfg, "apps[1].settings.db.host", 0), "h");
  assert_int_equal(get_int(cfg, "apps[1].settings.tags.len", 0), 3);
  assert_string_equal(get_str(cfg, "apps[1].settings.tags[0]", 0), "b");
  /* chat (id 2, another adapter): the root's only. */
  assert_string_equal(get_str(cfg, "apps[2].settings.motd", 0), "root");
  assert_int_equal(get_int(cfg, "apps.chat.settings.db.port", 0), 1);
  /* The rest of the entry, and the file's own paths, unmerged. */
  assert_string_equal(get_str(cfg, "apps[2].file_name", 0), "c.lua");
  assert_string_equal(get_str(cfg, "apps.two.name", 0), "two");
  get_str(cfg, "adapters[0].apps[0].settings.motd", ENOENT);
  assert_int_equal(get_int(cfg, "adapters[0].apps[1].settings.db.port", 0), 3);
  assert_string_equal(get_str(cfg, "settings.motd", 0), "root");
  assert_int_equal(get_int(cfg, "apps.len", 0), 3);
  /* No such app, or not an app's path. */
  get_str(cfg, "apps[3].name", ENOENT);
  get_str(cfg, "apps.three.name", ENOENT);
  get_str(cfg, "apps[0][0]", ENOENT);
  get_str(cfg, "apps[0].settings.nope", ENOENT);
  assert_int_equal(gc_config_getopt(cfg, "apps[0]", GC_OPT_TYPE_NULL, NULL), 0);
  gc_config_free(cfg);
}

static void test_json_type(void **state) {
  (void)state;
  struct gc_config *cfg = load_settings();
  const char *j = NULL, *again = NULL;
  assert_int_equal(gc_config_getopt(cfg, "apps[1].settings", GC_OPT_TYPE_JSON, &j), 0);
  assert_string_equal(j, "{\"motd\":\"adapter\",\"db\":{\"host\":\"h\",\"port\":3,"
                         "\"ssl\":true},\"tags\":[\"b\",1.5,null]}");
  assert_int_equal(gc_config_getopt(cfg, "apps[1].settings", GC_OPT_TYPE_JSON, &again), 0);
  assert_ptr_equal(j, again); /* made once, kept with the config */
  assert_int_equal(gc_config_getopt(cfg, "settings.motd", GC_OPT_TYPE_JSON, &j), 0);
  assert_string_equal(j, "\"root\"");
  assert_int_equal(gc_config_getopt(cfg, "apps[0].settings.db.port", GC_OPT_TYPE_JSON, &j), 0);
  assert_string_equal(j, "2");
  assert_int_equal(gc_config_getopt(cfg, "vhosts.len", GC_OPT_TYPE_JSON, &j), EINVAL);
  assert_int_equal(gc_config_getopt(cfg, "nope", GC_OPT_TYPE_JSON, &j), ENOENT);
  gc_config_free(cfg);
}

static void test_where_type(void **state) {
  (void)state;
  struct gc_config *cfg = load_settings();
  char w[GC_OPT_WHERE_SIZE];
  assert_int_equal(gc_config_getopt(cfg, "settings.motd", GC_OPT_TYPE_WHERE, w), 0);
  assert_string_equal(w, "s.json:1:23");
  assert_int_equal(gc_config_getopt(cfg, "settings.motd", GC_OPT_TYPE_WHERE_KEY, w), 0);
  assert_string_equal(w, "s.json:1:15");
  assert_int_equal(gc_config_getopt(cfg, "adapters[0].apps[1].settings.tags[1]",
                                    GC_OPT_TYPE_WHERE, w), 0);
  assert_string_equal(w, "s.json:7:56");
  /* Under a view: where the merged value comes from. */
  assert_int_equal(gc_config_getopt(cfg, "apps[1].settings.db.port", GC_OPT_TYPE_WHERE, w), 0);
  assert_string_equal(w, "s.json:6:57");
  assert_int_equal(gc_config_getopt(cfg, "apps.echo.settings.db.port", GC_OPT_TYPE_WHERE, w), 0);
  assert_string_equal(w, "s.json:4:32");
  assert_int_equal(gc_config_getopt(cfg, "apps[2].settings.db.host", GC_OPT_TYPE_WHERE_KEY, w), 0);
  assert_string_equal(w, "s.json:1:38");
  assert_int_equal(gc_config_getopt(cfg, "apps[2].file_name", GC_OPT_TYPE_WHERE, w), 0);
  assert_string_equal(w, "s.json:8:58");
  assert_int_equal(gc_config_getopt(cfg, "apps.len", GC_OPT_TYPE_WHERE, w), ENOENT);
  assert_int_equal(gc_config_getopt(cfg, "apps[9]", GC_OPT_TYPE_WHERE, w), ENOENT);
  gc_config_free(cfg);
}

int main(void) {
  const struct CMUnitTest loaded[] = {
      cmocka_unit_test(test_string),
      cmocka_unit_test(test_uint64),
      cmocka_unit_test(test_int),
      cmocka_unit_test(test_level_forms),
      cmocka_unit_test(test_null_type),
      cmocka_unit_test(test_len),
      cmocka_unit_test(test_missing_paths),
      cmocka_unit_test(test_malformed_paths),
      cmocka_unit_test(test_bad_arguments),
  };
  const struct CMUnitTest raw[] = {
      cmocka_unit_test(test_uint64_raw),
      cmocka_unit_test(test_int_raw),
      cmocka_unit_test(test_null_type_raw),
      cmocka_unit_test(test_len_raw),
  };
  const struct CMUnitTest own[] = {
      cmocka_unit_test(test_extracted_values_read_raw),
      cmocka_unit_test(test_settings_merged),
      cmocka_unit_test(test_json_type),
      cmocka_unit_test(test_where_type),
  };
  int failed = cmocka_run_group_tests_name("loaded", loaded, setup, teardown);
  failed += cmocka_run_group_tests_name("raw", raw, setup_raw, teardown_raw);
  failed += cmocka_run_group_tests_name("own config", own, NULL, NULL);
  return failed;
}
