/* Runs a fuzz target over the files of a corpus directory, once each, so
 * the corpus (every crash ever found included) is a regression test under
 * the normal sanitizer build. Usage: replay DIR...
 *
 * A target that defines gc_fuzz_outcome() says what became of each input
 * (fuzz_frames.c: the close code the server sent); DIR.expect beside the
 * corpus then maps every file name to the outcome it must get, one
 * "name outcome" a line ('#' starts a comment). An input without a line,
 * a line without an input, or another outcome fails the replay. */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The target's own replaces this one: no outcome to check. */
const char *gc_fuzz_outcome(void);
__attribute__((weak)) const char *gc_fuzz_outcome(void) { return NULL; }

#define EXPECT_MAX 256
static struct {
  char name[128], outcome[32];
  int used;
} expect[EXPECT_MAX];
static int expect_count;

/* Reads DIR.expect; -1 when it is missing or bad. */
static int expect_load(const char *dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s.expect", dir);
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "replay: %s is missing: every input needs its outcome\n", path);
    return -1;
  }
  char line[512];
  int n = 0, rc = 0;
  expect_count = 0;
  while (fgets(line, sizeof line, f)) {
    n++;
    char *hash = strchr(line, '#');
    if (hash)
      *hash = '\0';
    char name[128], outcome[32], extra[2];
    int got = sscanf(line, "%127s %31s %1s", name, outcome, extra);
    if (got <= 0)
      continue;
    if (got != 2 || expect_count == EXPECT_MAX) {
      fprintf(stderr, "replay: %s:%d: want \"name outcome\"\n", path, n);
      rc = -1;
      break;
    }
    snprintf(expect[expect_count].name, sizeof expect[0].name, "%s", name);
    snprintf(expect[expect_count].outcome, sizeof expect[0].outcome, "%s", outcome);
    expect[expect_count++].used = 0;
  }
  fclose(f);
  return rc;
}

/* 0 when the input 'name' got what DIR.expect says. */
static int expect_check(const char *name, const char *got) {
  for (int i = 0; i < expect_count; i++)
    if (!strcmp(expect[i].name, name)) {
      expect[i].used = 1;
      if (!strcmp(expect[i].outcome, got))
        return 0;
      fprintf(stderr, "replay: %s: expected %s, got %s\n", name, expect[i].outcome, got);
      return -1;
    }
  fprintf(stderr, "replay: %s: no expected outcome (got %s): add \"%s %s\" to the .expect file\n",
          name, got, name, got);
  return -1;
}

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return 1;
  uint8_t *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len == cap) {
      cap = cap ? cap * 2 : 4096;
      uint8_t *b = realloc(buf, cap);
      if (!b) {
        free(buf);
        fclose(f);
        return 1;
      }
      buf = b;
    }
    size_t n = fread(buf + len, 1, cap - len, f);
    if (!n)
      break;
    len += n;
  }
  fclose(f);
  LLVMFuzzerTestOneInput(buf, len);
  free(buf);
  return 0;
}

static int checking; /* the target reports outcomes */

int main(int argc, char **argv) {
  int files = 0, failed = 0;
  checking = gc_fuzz_outcome() != NULL;
  for (int i = 1; i < argc; i++) {
    DIR *d = opendir(argv[i]);
    if (!d) {
      fprintf(stderr, "replay: cannot open %s\n", argv[i]);
      return 1;
    }
    if (checking && expect_load(argv[i]) != 0) {
      closedir(d);
      return 1;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
      if (e->d_name[0] == '.')
        continue;
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
      if (run_file(path) != 0) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        closedir(d);
        return 1;
      }
      if (checking && expect_check(e->d_name, gc_fuzz_outcome()) != 0)
        failed++;
      files++;
    }
    closedir(d);
    for (int k = 0; checking && k < expect_count; k++)
      if (!expect[k].used) {
        fprintf(stderr, "replay: %s.expect: no input %s\n", argv[i], expect[k].name);
        failed++;
      }
  }
  printf("replay: %d inputs, no crash%s, %d failed\n", files,
         checking ? ", outcomes checked" : "", failed);
  return files && !failed ? 0 : 1;
}
