/* stuck.c - a test adapter whose on_message never returns (a busy loop in
 * native code): the loop can no longer turn, so only gcs's signal watcher
 * can end the process. It says on stderr when it is stuck. */
#include <game-carrier/server.h>
#include <stdio.h>

GC_ADAPTER_EVENT GCT_INT adapter_initialize(GCT_INT adapter_id, struct core_api *api,
                                            GCT_CPTR load_path) {
  (void)adapter_id, (void)api, (void)load_path;
  return 0;
}

GC_ADAPTER_EVENT GCT_INTPTR on_connect(GCT_INT app_id, GCT_INTPTR handle, GCT_INT pid,
                                       GCT_CSTR rip, GCT_INT rport, GCT_CSTR lip,
                                       GCT_INT lport, GCT_CSTR udata) {
  (void)app_id, (void)pid, (void)rip, (void)rport, (void)lip, (void)lport,
      (void)udata;
  return handle;
}

GC_ADAPTER_EVENT void on_message(GCT_INTPTR user, GCT_PTR data, GCT_SIZE len) {
  (void)user, (void)data, (void)len;
  fprintf(stderr, "stuck: in on_message for good\n");
  fflush(stderr);
  volatile unsigned long spins = 0;
  for (;;)
    spins++;
}
