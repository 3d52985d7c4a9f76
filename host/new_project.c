/* new_project.c - gcs --new NAME: the template of a game project.
 *
 *   NAME/NAME.lua              a room chat with its message formats on top
 *   NAME/spec/NAME_spec.lua    busted specs on gc.testing; they pass as written
 *   NAME/.busted               so that `busted` in NAME/ finds them and gc.testing
 *   NAME/NAME.json             the server's config (port 7681)
 *   NAME/README.md             three commands: run, test, reload
 *
 * gc.testing is found through .busted's cpath: the folder of the
 * gc/testing.so that belongs to this gcs (its build tree's, or the
 * installed one below its prefix), then Lua's own package.cpath. */
#include "new_project.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "paths.h"

static const char script_text[] =
    "--[[ @NAME@.lua - a room chat: the start of your game.\n"
    "\n"
    "Connect: ws://HOST:7681/?room=ROOM&name=NAME\n"
    "  ROOM defaults to \"lobby\", NAME to \"guest<id>\".\n"
    "\n"
    "Client -> server (text):\n"
    "  TEXT               said to the room\n"
    "\n"
    "Server -> client (text), to everyone in the room:\n"
    "  NAME: TEXT         a message (its sender gets it too)\n"
    "  * NAME joined      a newcomer (who gets it too)\n"
    "  * NAME left        someone left\n"
    "\n"
    "Handlers, conn:send, gc.broadcast, timers and limits: the Lua API in gcs's\n"
    "README. The rooms live in the handler table (app.rooms) so that a reload\n"
    "(SIGHUP, gcs --watch) keeps them: see on_reload below. ]]\n"
    "local gc = require \"gc\"\n"
    "\n"
    "local app = { rooms = {} } -- room name -> { [conn] = true }\n"
    "\n"
    "function app.on_connect(conn, info)\n"
    "  local room = info.query.room or \"lobby\"\n"
    "  conn.room, conn.name = room, info.query.name or (\"guest\" .. conn.id)\n"
    "  app.rooms[room] = app.rooms[room] or {}\n"
    "  app.rooms[room][conn] = true\n"
    "  gc.broadcast(\"* \" .. conn.name .. \" joined\", app.rooms[room])\n"
    "end\n"
    "\n"
    "function app.on_message(conn, data)\n"
    "  gc.broadcast(conn.name .. \": \" .. data, app.rooms[conn.room])\n"
    "end\n"
    "\n"
    "function app.on_disconnect(conn)\n"
    "  local members = app.rooms[conn.room]\n"
    "  members[conn] = nil\n"
    "  if next(members) == nil then\n"
    "    app.rooms[conn.room] = nil\n"
    "  else\n"
    "    gc.broadcast(\"* \" .. conn.name .. \" left\", members)\n"
    "  end\n"
    "end\n"
    "\n"
    "-- After a reload this new table serves every connection: carry the state.\n"
    "function app.on_reload(old)\n"
    "  app.rooms = old.rooms\n"
    "end\n"
    "\n"
    "return app\n";

static const char spec_text[] =
    "-- @NAME@.lua against the real host code, in memory and in virtual time\n"
    "-- (gc.testing). Run `busted` in the project's folder.\n"
    "local T = require \"gc.testing\"\n"
    "\n"
    "describe(\"@NAME@\", function()\n"
    "  local host\n"
    "  before_each(function() host = T.host{ script = \"@NAME@.lua\" } end)\n"
    "  after_each(function() host:close() end)\n"
    "\n"
    "  it(\"tells the room who joined\", function()\n"
    "    local ann = host:connect(\"/?room=1&name=ann\")\n"
    "    assert.same({ \"* ann joined\" }, ann:received())\n"
    "    local bob = host:connect(\"/?room=1&name=bob\")\n"
    "    assert.same({ \"* bob joined\" }, ann:received())\n"
    "    assert.same({ \"* bob joined\" }, bob:received())\n"
    "  end)\n"
    "\n"
    "  it(\"says a message to its room only\", function()\n"
    "    local ann = host:connect(\"/?room=1&name=ann\")\n"
    "    local bob = host:connect(\"/?room=1&name=bob\")\n"
    "    local eve = host:connect(\"/?room=2&name=eve\")\n"
    "    ann:received(); bob:received(); eve:received()\n"
    "    ann:send(\"hello\")\n"
    "    assert.same({ \"ann: hello\" }, bob:received())\n"
    "    assert.same({ \"ann: hello\" }, ann:received())\n"
    "    assert.same({}, eve:received())\n"
    "  end)\n"
    "\n"
    "  it(\"tells the room who left\", function()\n"
    "    local ann = host:connect(\"/?room=1&name=ann\")\n"
    "    local bob = host:connect(\"/?room=1&name=bob\")\n"
    "    ann:received()\n"
    "    bob:close()\n"
    "    assert.same({ \"* bob left\" }, ann:received())\n"
    "  end)\n"
    "\n"
    "  it(\"keeps its rooms across a reload\", function()\n"
    "    local ann = host:connect(\"/?room=1&name=ann\")\n"
    "    local bob = host:connect(\"/?room=1&name=bob\")\n"
    "    ann:received(); bob:received()\n"
    "    assert.is_true(host:reload())\n"
    "    ann:send(\"still here\")\n"
    "    assert.same({ \"ann: still here\" }, bob:received())\n"
    "  end)\n"
    "end)\n";

static const char busted_text[] =
    "-- `busted` in this folder runs spec/*_spec.lua against the real host\n"
    "-- (gc.testing, a Lua C module of gcs). cpath: the folder of the\n"
    "-- gc/testing.so of the gcs that wrote this file; Lua's package.cpath\n"
    "-- (LUA_CPATH) comes after it, so an install in one of Lua's folders is\n"
    "-- found without it.\n"
    "return {\n"
    "  _all = {\n"
    "    cpath = \"@CPATH@\",\n"
    "    lpath = \"./?.lua;./?/init.lua;\",\n"
    "  },\n"
    "  default = {\n"
    "    ROOT = { \"spec\" },\n"
    "    pattern = \"_spec\",\n"
    "  },\n"
    "}\n";

static const char config_text[] =
    "{\n"
    "  \"adapters\": [\n"
    "    { \"type\": \"lua\",\n"
    "      \"apps\": [ { \"name\": \"@NAME@\", \"file_name\": \"@NAME@.lua\" } ] }\n"
    "  ],\n"
    "  \"vhosts\": [\n"
    "    { \"ip\": \"0.0.0.0\", \"port\": 7681, \"protocol\": \"ws\", \"app\": \"@NAME@\" }\n"
    "  ]\n"
    "}\n";

static const char readme_text[] =
    "# @NAME@\n"
    "\n"
    "A game for gcs: `@NAME@.lua` is the game logic (what clients send and get\n"
    "is at its top), `spec/@NAME@_spec.lua` its tests, `@NAME@.json` the\n"
    "server's config. In this folder:\n"
    "\n"
    "```sh\n"
    "gcs -C @NAME@.json --watch   # run on ws://localhost:7681/?room=1&name=ann (--watch: reload on save)\n"
    "busted                       # test: the specs against the real host, in memory\n"
    "pkill -HUP -x gcs            # reload @NAME@.lua, players stay connected\n"
    "```\n";

/* Writes 'text' to 'dir'/'file' with @NAME@ and @CPATH@ replaced (the
 * latter escaped for a Lua string). 0, or an errno value. */
static int write_file(const char *dir, const char *file, const char *text,
                      const char *name, const char *cpath) {
  size_t len = strlen(dir) + strlen(file) + 2;
  char *path = gc_malloc(len);
  if (!path)
    return ENOMEM;
  snprintf(path, len, "%s/%s", dir, file);
  FILE *f = fopen(path, "wx");
  gc_free(path);
  if (!f)
    return errno;
  for (const char *p = text; *p; p++) {
    if (!strncmp(p, "@NAME@", 6)) {
      fputs(name, f);
      p += 5;
    } else if (!strncmp(p, "@CPATH@", 7)) {
      for (const char *c = cpath; *c; c++) {
        if (*c == '"' || *c == '\\')
          fputc('\\', f);
        fputc(*c, f);
      }
      p += 6;
    } else {
      fputc(*p, f);
    }
  }
  int rc = ferror(f) ? EIO : 0;
  if (fclose(f) != 0 && !rc)
    rc = errno;
  return rc;
}

/* A name for files, the app and the config: 1..64 of A-Z a-z 0-9 _ -,
 * starting with a letter or a digit. */
static int valid_name(const char *s, size_t len) {
  if (len < 1 || len > 64 || *s == '-' || *s == '_')
    return 0;
  for (size_t i = 0; i < len; i++)
    if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                "0123456789_-",
                s[i]))
      return 0;
  return 1;
}

int gc_new_project(const char *path) {
  if (!path || !*path) {
    fprintf(stderr, "gcs: --new needs the folder of the game to create "
                    "(gcs --new mygame)\n");
    return 2;
  }
  char *dir = gc_strdup(path);
  if (!dir) {
    fprintf(stderr, "gcs: --new: out of memory\n");
    return 1;
  }
  size_t dl = strlen(dir);
  while (dl > 1 && dir[dl - 1] == '/')
    dir[--dl] = '\0';
  const char *slash = strrchr(dir, '/');
  const char *base = slash ? slash + 1 : dir;
  char name[65];
  if (!valid_name(base, strlen(base))) {
    fprintf(stderr,
            "gcs: --new %s: the folder's name names the game, its script and "
            "its app: 1 to 64 of A-Z a-z 0-9 _ -, starting with a letter or "
            "a digit\n",
            path);
    gc_free(dir);
    return 2;
  }
  snprintf(name, sizeof name, "%s", base);
  if (mkdir(dir, 0777) != 0) {
    int e = errno;
    if (e == EEXIST)
      fprintf(stderr, "gcs: --new %s: it exists already; nothing was written "
                      "(choose another name or remove it)\n", path);
    else
      fprintf(stderr, "gcs: --new %s: %s\n", path, strerror(e));
    gc_free(dir);
    return e == EEXIST ? 2 : 1;
  }
  char *cdir = gc_paths_testing_cdir();
  char cpath[4200] = "";
  if (cdir)
    snprintf(cpath, sizeof cpath, "%s/?.so;", cdir);
  char script[80], spec[96];
  snprintf(script, sizeof script, "%s.lua", name);
  snprintf(spec, sizeof spec, "spec/%s_spec.lua", name);
  char config[80];
  snprintf(config, sizeof config, "%s.json", name);
  size_t sl = strlen(dir) + sizeof "/spec";
  char *specdir = gc_malloc(sl);
  int rc = specdir ? 0 : ENOMEM;
  const char *failed = "spec/";
  if (specdir) {
    snprintf(specdir, sl, "%s/spec", dir);
    if (mkdir(specdir, 0777) != 0)
      rc = errno;
    gc_free(specdir);
  }
  const struct {
    const char *file, *text;
  } files[] = {{script, script_text}, {spec, spec_text},
               {".busted", busted_text}, {config, config_text},
               {"README.md", readme_text}};
  for (size_t i = 0; !rc && i < sizeof files / sizeof files[0]; i++) {
    failed = files[i].file;
    rc = write_file(dir, files[i].file, files[i].text, name, cpath);
  }
  if (rc) {
    fprintf(stderr, "gcs: --new %s: cannot write %s: %s\n", path, failed,
            strerror(rc));
  } else {
    printf("gcs: wrote %s/ (%s, spec/%s_spec.lua, %s, .busted, README.md)\n"
           "  cd %s && busted && gcs -C %s --watch\n",
           dir, script, name, config, dir, config);
    if (!cdir)
      printf("  gc.testing was not found beside this gcs: point LUA_CPATH at "
             "the folder holding gc/testing.so for busted\n");
  }
  gc_free(cdir);
  gc_free(dir);
  return rc ? 1 : 0;
}
