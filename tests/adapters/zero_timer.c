/* zero_timer.c - a test adapter whose application timers re-arm themselves
 * with 0 ms ("next tick" code): one one-shot timer that starts itself again
 * from its callback, and one repeating timer of the shortest period that
 * stops and restarts itself at 0 ms. gcs must keep serving clients (echo)
 * and stop on SIGTERM while they spin. "ticks" replies how many times the
 * timers fired. Only <game-carrier/server.h> and libc. */
#include <game-carrier/server.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static struct core_api api;
static GCT_INT app;
static atomic_long ticks; /* timers on worker 0, read by every worker */
static GCT_INTPTR repeating;

static void next_tick(GCT_INTPTR user) {
  ticks++;
  if (api.timerStart(app, 0, 0, next_tick, user) == 0)
    api.logMessage(GCL_ERR, "zero_timer: timerStart failed");
}

static void restart_repeating(GCT_INTPTR user) {
  ticks++;
  api.timerStop(repeating);
  repeating = api.timerStart(app, 0, 1, restart_repeating, user);
}

GC_ADAPTER_EVENT GCT_INT adapter_initialize(GCT_INT adapter_id, struct core_api *core,
                                            GCT_CPTR load_path) {
  (void)adapter_id, (void)load_path;
  api = *core;
  return 0;
}

GC_ADAPTER_EVENT void application_start(GCT_INT app_id) {
  app = app_id;
  next_tick(0);
  repeating = api.timerStart(app, 0, 1, restart_repeating, 0);
}

GC_ADAPTER_EVENT GCT_INTPTR on_connect(GCT_INT app_id, GCT_INTPTR handle, GCT_INT pid,
                                       GCT_CSTR rip, GCT_INT rport, GCT_CSTR lip,
                                       GCT_INT lport, GCT_CSTR udata) {
  (void)app_id, (void)pid, (void)rip, (void)rport, (void)lip, (void)lport, (void)udata;
  return handle;
}

GC_ADAPTER_EVENT void on_message(GCT_INTPTR user, GCT_PTR data, GCT_SIZE len) {
  if (len == 5 && memcmp(data, "ticks", 5) == 0) {
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld", ticks);
    api.connectionAddMessage(user, buf, (GCT_SIZE)n, 0);
    return;
  }
  api.connectionAddMessage(user, data, len, 0);
}

GC_ADAPTER_EVENT void on_disconnect(GCT_INTPTR user) { (void)user; }
