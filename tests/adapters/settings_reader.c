/* settings_reader.c - a test adapter that reads its app's "settings"
 * through getOpt: each message is a path in which '$' stands for the
 * app's id ("apps[$].settings.motd"); the reply is "s:VALUE" (a string),
 * "i:N" (an INT), else "j:JSON" (GC_OPT_TYPE_JSON), else "e:ERRNO".
 * "where:PATH" replies with GC_OPT_TYPE_WHERE of PATH. At
 * application_initialize it logs "settings_reader NAME: motd=..." read at
 * apps.NAME.settings.motd. Only <game-carrier/server.h> and libc; no
 * global is written after start-up (any worker may run its events). */
#include <game-carrier/server.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct core_api api;

struct conn {
  GCT_INTPTR handle;
  GCT_INT app_id;
};

GC_ADAPTER_EVENT GCT_INT adapter_initialize(GCT_INT adapter_id, struct core_api *core,
                                            GCT_CPTR load_path) {
  (void)adapter_id, (void)load_path;
  api = *core;
  return 0;
}

GC_ADAPTER_EVENT void adapter_finalize(GCT_INT adapter_id) { (void)adapter_id; }

GC_ADAPTER_EVENT GCT_INT application_initialize(GCT_INT app_id, GCT_CSTR name,
                                                GCT_CSTR type_name,
                                                GCT_CSTR file_name) {
  (void)app_id, (void)type_name, (void)file_name;
  char path[256], line[512];
  const char *motd = NULL;
  snprintf(path, sizeof path, "apps.%s.settings.motd", name);
  int rc = api.getOpt(path, GC_OPT_TYPE_STRING, &motd);
  snprintf(line, sizeof line, "settings_reader %s: motd=%s", name,
           rc == 0 ? motd : "(none)");
  api.logMessage(GCL_NOTICE, line);
  return 0;
}

GC_ADAPTER_EVENT GCT_INTPTR on_connect(GCT_INT app_id, GCT_INTPTR handle, GCT_INT pid,
                                       GCT_CSTR rip, GCT_INT rport, GCT_CSTR lip,
                                       GCT_INT lport, GCT_CSTR udata) {
  (void)pid, (void)rip, (void)rport, (void)lip, (void)lport, (void)udata;
  struct conn *c = malloc(sizeof *c);
  if (!c)
    return GC_DROP_CONNECTION;
  c->handle = handle;
  c->app_id = app_id;
  return (GCT_INTPTR)c;
}

GC_ADAPTER_EVENT void on_disconnect(GCT_INTPTR user) { free((struct conn *)user); }

GC_ADAPTER_EVENT void on_message(GCT_INTPTR user, GCT_PTR data, GCT_SIZE len) {
  struct conn *c = (struct conn *)user;
  char msg[256], path[300], out[1024];
  if (len >= sizeof msg)
    len = sizeof msg - 1;
  memcpy(msg, data, len);
  msg[len] = '\0';
  int where = strncmp(msg, "where:", 6) == 0;
  const char *src = where ? msg + 6 : msg;
  size_t n = 0;
  for (const char *p = src; *p && n + 12 < sizeof path; p++) {
    if (*p == '$')
      n += (size_t)snprintf(path + n, sizeof path - n, "%d", (int)c->app_id);
    else
      path[n++] = *p;
  }
  path[n] = '\0';
  const char *s = NULL;
  int32_t i = 0;
  char at[GC_OPT_WHERE_SIZE];
  int rc;
  if (where) {
    rc = api.getOpt(path, GC_OPT_TYPE_WHERE, at);
    if (rc)
      snprintf(out, sizeof out, "e:%d", rc);
    else
      snprintf(out, sizeof out, "w:%s", at);
  } else if ((rc = api.getOpt(path, GC_OPT_TYPE_STRING, &s)) == 0) {
    snprintf(out, sizeof out, "s:%s", s);
  } else if ((rc = api.getOpt(path, GC_OPT_TYPE_INT, &i)) == 0) {
    snprintf(out, sizeof out, "i:%d", (int)i);
  } else if ((rc = api.getOpt(path, GC_OPT_TYPE_JSON, &s)) == 0) {
    snprintf(out, sizeof out, "j:%s", s);
  } else {
    snprintf(out, sizeof out, "e:%d", rc);
  }
  api.connectionAddMessage(c->handle, out, strlen(out), 0);
}
