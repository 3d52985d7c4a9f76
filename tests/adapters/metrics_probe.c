/* metrics_probe.c - a test adapter that makes every figure of /metrics
 * move (tests/e2e/admin.test.js): it exports each connection event, so each
 * gets a gcs_handler_seconds histogram, and ends connections on command.
 * Only <game-carrier/server.h> and libc, as a third party's would.
 *
 * Commands (messages from the client); anything else is echoed:
 *   "close C"  connectionCloseEx(NORMAL, C, NULL)
 *   "drop"     connectionClose(DROP): no close frame
 *   "timer"    connectionSetTimer(1): on_timer then sends "tick"
 * on_issue answers REACTION_DEFAULT (the host logs and goes on). */
#include <game-carrier/server.h>
#include <stdio.h>
#include <string.h>

static struct core_api api;

GC_ADAPTER_EVENT GCT_INT adapter_initialize(GCT_INT adapter_id, struct core_api *core,
                                            GCT_CPTR load_path) {
  (void)adapter_id, (void)load_path;
  api = *core;
  return 0;
}

GC_ADAPTER_EVENT GCT_INTPTR on_connect(GCT_INT app_id, GCT_INTPTR handle, GCT_INT pid,
                                       GCT_CSTR rip, GCT_INT rport, GCT_CSTR lip,
                                       GCT_INT lport, GCT_CSTR udata) {
  (void)app_id, (void)pid, (void)rip, (void)rport, (void)lip, (void)lport, (void)udata;
  return handle;
}

GC_ADAPTER_EVENT void on_message(GCT_INTPTR h, GCT_PTR data, GCT_SIZE len) {
  char cmd[32];
  int code;
  snprintf(cmd, sizeof cmd, "%.*s", len < sizeof cmd ? (int)len : (int)sizeof cmd - 1,
           (const char *)data);
  if (sscanf(cmd, "close %d", &code) == 1)
    api.connectionCloseEx(h, GC_CLOSE_REASON_NORMAL, code, NULL);
  else if (strcmp(cmd, "drop") == 0)
    api.connectionClose(h, GC_CLOSE_REASON_DROP);
  else if (strcmp(cmd, "timer") == 0)
    api.connectionSetTimer(h, 1);
  else
    api.connectionAddMessage(h, data, len, 0);
}

GC_ADAPTER_EVENT void on_message_sent(GCT_INTPTR h, GCT_INTPTR cookie, GCT_SIZE len,
                                      GCT_INT status) {
  (void)h, (void)cookie, (void)len, (void)status;
}

GC_ADAPTER_EVENT void on_timer(GCT_INTPTR h) {
  api.connectionAddMessage(h, (GCT_PTR) "tick", 4, 0);
}

GC_ADAPTER_EVENT GCT_INT on_issue(GCT_INTPTR h, GCT_INT stat, GCT_COUNTER_VALUE value) {
  (void)h, (void)stat, (void)value;
  return GC_STAT_REACTION_DEFAULT;
}

GC_ADAPTER_EVENT void on_disconnect(GCT_INTPTR h) { (void)h; }
