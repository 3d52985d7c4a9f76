/* bad_init.c - adapter_initialize fails: gcs must stop start-up. */
#include <game-carrier/server.h>

GC_ADAPTER_EVENT GCT_INT adapter_initialize(GCT_INT adapter_id, struct core_api *api,
                                            GCT_CPTR load_path) {
  (void)adapter_id, (void)api, (void)load_path;
  return 5;
}
