/* bot.c - a chat bot on the client library (libgc_client.so): joins a room
 * of scripts/chat.lua, says its lines, asks /who, prints everything it
 * hears, and leaves. Only <game-carrier/client.h> and libc.
 *
 *   gc_bot HOST PORT ROOM NAME [LINE...]
 *
 * GC_BOT_MODE=passive|active|hybrid (default hybrid) picks the library's
 * mode (client.h); GC_BOT_WSS=1 connects over TLS (wss), checking the
 * server's certificate against the system's store (OpenSSL reads
 * SSL_CERT_FILE and SSL_CERT_DIR too).
 *
 * Exit status: 0 when every line came back from the room and /who was
 * answered, 1 on a usage error, 2 when the connection failed, 3 when the
 * room did not answer within 10 s. Build: cc bot.c -lgc_client. */
#define _DEFAULT_SOURCE /* usleep */
#include <game-carrier/client.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *name;
static char **lines;
static int nlines;
/* Atomic: in GC_MODE_ACTIVE the events run on the library's thread. */
static _Atomic int echoed, who_seen, failed, connected, done;
static _Atomic GCT_INTPTR link_handle;

static void on_connect(GCT_INTPTR user, GCT_INTPTR handle) {
  (void)user;
  connected = 1;
  link_handle = handle;
  printf("connected\n");
  for (int i = 0; i < nlines; i++)
    gc_client_add_message(handle, lines[i], strlen(lines[i]), i + 1);
  gc_client_add_message(handle, (GCT_PTR) "/who", 4, 0);
}

static void on_error(GCT_INTPTR user, GCT_CSTR reason) {
  (void)user;
  printf("connection error: %s\n", reason);
  failed = done = 1;
}

static void on_message(GCT_INTPTR user, GCT_PTR data, GCT_SIZE len) {
  (void)user;
  const char *text = data;
  printf("heard: %.*s\n", (int)len, text);
  size_t nl = strlen(name);
  if (len > nl + 2 && memcmp(text, name, nl) == 0 && text[nl] == ':')
    echoed++;
  if (len >= 8 && memcmp(text, "* here: ", 8) == 0)
    who_seen = 1;
  int one = 1;
  if (echoed >= nlines && who_seen && atomic_compare_exchange_strong(&connected, &one, 2)) {
    gc_client_stop(link_handle);
  }
}

static void on_sent(GCT_INTPTR user, GCT_INTPTR cookie, GCT_SIZE len, int status) {
  (void)user, (void)len;
  if (status)
    printf("line %ld not sent: %d\n", (long)cookie, status);
}

static void on_disconnect(GCT_INTPTR user) {
  (void)user;
  printf("disconnected\n");
  done = 1;
}

static void on_timer(GCT_INTPTR user) { (void)user; }

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s HOST PORT ROOM NAME [LINE...]\n", argv[0]);
    return 1;
  }
  name = argv[4];
  lines = argv + 5;
  nlines = argc - 5;
  char app[256];
  snprintf(app, sizeof app, "chat?room=%s&name=%s", argv[3], name);
  struct client_events ev = {on_connect, on_disconnect, on_error,
                             on_message, on_sent, on_timer};
  gc_log_setopt(GCL_ERR | GCL_WARN, "", GCL_TO_STDERR);
  const char *m = getenv("GC_BOT_MODE");
  int mode = m && !strcmp(m, "passive") ? GC_MODE_PASSIVE
             : m && !strcmp(m, "active") ? GC_MODE_ACTIVE : GC_MODE_HYBRID;
  if (gc_clients_init(mode) != 0) {
    fprintf(stderr, "gc_clients_init failed\n");
    return 1;
  }
  const char *wss = getenv("GC_BOT_WSS");
  int proto = wss && !strcmp(wss, "1") ? GC_PROTOCOL_WSS : GC_PROTOCOL_WS;
  int rc = gc_client_start(0, proto, argv[1], atoi(argv[2]), app, &ev);
  if (rc != 0) {
    printf("gc_client_start: %d\n", rc);
    gc_clients_cleanup();
    return 2;
  }
  /* Hybrid: the library thread does the networking, the events come
   * here; Passive: both happen here; Active: neither (service is a no-op). */
  time_t until = time(NULL) + 10;
  while (!done && time(NULL) < until) {
    gc_clients_service();
    usleep(2000);
  }
  int ok = done && !failed && echoed >= nlines && who_seen;
  gc_clients_cleanup(); /* also delivers what is left */
  fflush(stdout);
  return failed ? 2 : ok ? 0 : 3;
}
