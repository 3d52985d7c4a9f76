/* echo.c - the smallest useful Game Carrier adapter: every message a
 * client sends comes back to it. Copy this file to start a native adapter;
 * it needs nothing but <game-carrier/server.h>.
 *
 * Build: cc -shared -fPIC -I include examples/echo/echo.c -o libecho.so
 * Run:   gcs -C examples/echo/echo.json   (or: make run-echo) */
#include <game-carrier/server.h>
#include <stdio.h>

static struct core_api api;

GC_ADAPTER_EVENT GCT_INT adapter_initialize(GCT_INT adapter_id,
                                            struct core_api *core,
                                            GCT_CPTR load_path) {
  (void)load_path;
  api = *core; /* the table is only valid during this call */
  char line[64];
  snprintf(line, sizeof line, "echo adapter %d ready", (int)adapter_id);
  api.logMessage(GCL_NOTICE, line);
  return 0;
}

GC_ADAPTER_EVENT GCT_INTPTR on_connect(GCT_INT app_id, GCT_INTPTR conn_handle,
                                       GCT_INT pid, GCT_CSTR rip,
                                       GCT_INT rport, GCT_CSTR lip,
                                       GCT_INT lport, GCT_CSTR udata) {
  (void)app_id, (void)pid, (void)rip, (void)rport, (void)lip, (void)lport,
      (void)udata;
  /* The user value given back in every event: here, simply the handle. */
  return conn_handle;
}

GC_ADAPTER_EVENT void on_message(GCT_INTPTR conn_user, GCT_PTR data,
                                 GCT_SIZE len) {
  /* The data is copied by the host before connectionAddMessage returns. */
  api.connectionAddMessage(conn_user, data, len, 0);
}

GC_ADAPTER_EVENT void on_disconnect(GCT_INTPTR conn_user) { (void)conn_user; }
