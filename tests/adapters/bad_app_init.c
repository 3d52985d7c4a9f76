/* bad_app_init.c - application_initialize fails: gcs must stop start-up
 * and still finalize the adapter it initialised. */
#include <game-carrier/server.h>
#include <stdio.h>

static struct core_api api;

GC_ADAPTER_EVENT GCT_INT adapter_initialize(GCT_INT adapter_id, struct core_api *core,
                                            GCT_CPTR load_path) {
  (void)adapter_id, (void)load_path;
  api = *core;
  return 0;
}

GC_ADAPTER_EVENT GCT_INT application_initialize(GCT_INT app_id, GCT_CSTR name,
                                                GCT_CSTR type_name, GCT_CSTR file_name) {
  (void)app_id, (void)name, (void)type_name, (void)file_name;
  return 3;
}

GC_ADAPTER_EVENT void adapter_finalize(GCT_INT adapter_id) {
  (void)adapter_id;
  api.logMessage(GCL_NOTICE, "bad_app_init: adapter_finalize");
}
