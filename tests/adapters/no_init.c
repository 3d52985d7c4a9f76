/* no_init.c - exports events but no adapter_initialize. */
#include <game-carrier/server.h>

GC_ADAPTER_EVENT void on_disconnect(GCT_INTPTR conn_user) { (void)conn_user; }
