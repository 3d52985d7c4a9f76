/* chat_native.c - the chat rooms of scripts/chat.lua as a native adapter,
 * for the room-broadcast benchmark (libbench_chat.so).
 *
 * Same wire protocol as chat.lua for what the benchmark uses: connect with
 * ?room=ROOM&name=NAME; every text message goes to everyone in the room
 * (sender too) as "NAME: TEXT"; "* NAME joined" to the room on connect,
 * "* NAME left" to the others on disconnect; a trailing "\r\n" is stripped,
 * empty messages ignored, longer than 4096 bytes gets "* message too long".
 * No /commands. Every room message is queued with connectionsBroadcast,
 * with the handles of every member whatever loop owns them: the frame is
 * built once and shared by the receivers' queues, and each other loop gets
 * one mail per message.
 *
 * Threads: gcs runs a native adapter's events on every worker loop (a
 * connection's events on the loop that accepted it), so the rooms are
 * shared by threads. Game Carrier's smart locks guard them:
 *   - 'registry' (one) guards the list of rooms, a room's creation and its
 *     freeing, and is held for a whole join or leave, so that a room found
 *     in the list is never freed under a joining member;
 *   - each room's own lock guards its member and handle arrays (a join may
 *     realloc them). A message takes only its room's lock, and only to copy
 *     the handles out: the broadcast itself runs unlocked, so senders of
 *     one room on different loops wait for each other for a copy of 8
 *     bytes per member, not for the queueing.
 * Lock order: registry, then a room. A member's room stays alive while it
 * is a member (a room is freed only once empty, under the registry, when
 * no member is left to take its lock), and a member's own events never run
 * concurrently, so on_message needs no registry. A copied handle whose connection has left since is stale and
 * skipped by the host (handles carry a generation). */
#include <game-carrier/server.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TEXT 4096
#define MAX_NAME 32
#define STACK_HANDLES 1024 /* members copied on the stack; more are malloc'd */

struct room;

struct member {
  GCT_INTPTR handle;
  struct room *room;
  size_t index; /* in room->members */
  char name[MAX_NAME + 24];
};

struct room {
  char *name;
  GCT_INTPTR lock; /* smart lock: members, handles, count, cap */
  struct member **members;
  GCT_INTPTR *handles; /* parallel to members, handed to the host as is */
  size_t count, cap;
  struct room *next; /* under 'registry' */
};

static struct core_api api;
static GCT_INTPTR registry; /* smart lock: 'rooms', joins and leaves */
static struct room *rooms;
static atomic_long next_id;

GC_ADAPTER_EVENT GCT_INT adapter_initialize(GCT_INT adapter_id,
                                            struct core_api *core,
                                            GCT_CPTR load_path) {
  (void)adapter_id, (void)load_path;
  api = *core;
  if (!api.connectionsBroadcast || !api.smartLockCreate)
    return 1;
  registry = api.smartLockCreate();
  return registry ? 0 : 1;
}

GC_ADAPTER_EVENT void adapter_finalize(GCT_INT adapter_id) {
  (void)adapter_id;
  /* Every connection has had its on_disconnect: no room is left. */
  if (registry)
    api.smartLockDestroy(registry);
  registry = 0;
}

static int hexval(int ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

/* Copies the url-decoded value of 'key' in the query of 'target' into out
 * (at most cap-1 bytes); returns its length or -1 if absent or too long. */
static long query_get(const char *target, const char *key, char *out,
                      size_t cap) {
  const char *q = strchr(target, '?');
  size_t kl = strlen(key);
  while (q) {
    q++;
    const char *end = strchr(q, '&');
    if (!end)
      end = q + strlen(q);
    if ((size_t)(end - q) > kl && strncmp(q, key, kl) == 0 && q[kl] == '=') {
      size_t n = 0;
      for (const char *p = q + kl + 1; p < end; p++) {
        int ch = (unsigned char)*p;
        if (ch == '+')
          ch = ' ';
        else if (ch == '%' && end - p >= 3 && hexval(p[1]) >= 0 &&
                 hexval(p[2]) >= 0) {
          ch = hexval(p[1]) * 16 + hexval(p[2]);
          p += 2;
        }
        if (n + 1 >= cap)
          return -1;
        out[n++] = (char)ch;
      }
      out[n] = 0;
      return (long)n;
    }
    q = *end ? end : NULL;
  }
  return -1;
}

static int valid_name(const char *s, long n) {
  if (n < 1 || n > MAX_NAME)
    return 0;
  for (long i = 0; i < n; i++)
    if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
      return 0;
  return 1;
}

static struct member *find(struct room *r, const char *name) {
  for (size_t i = 0; i < r->count; i++)
    if (strcmp(r->members[i]->name, name) == 0)
      return r->members[i];
  return NULL;
}

/* A copy of a room's handles, taken under its lock and broadcast to after
 * the lock is released. */
struct snap {
  GCT_INTPTR local[STACK_HANDLES];
  GCT_INTPTR *h;
  size_t n;
};

/* Under r's lock. On no memory the copy is empty (the message is lost). */
static void snap_take(struct snap *sn, const struct room *r) {
  sn->h = sn->local;
  sn->n = r->count;
  if (sn->n > STACK_HANDLES && !(sn->h = malloc(sn->n * sizeof *sn->h))) {
    sn->h = sn->local;
    sn->n = 0;
  }
  if (sn->n)
    memcpy(sn->h, r->handles, sn->n * sizeof *sn->h);
}

static void snap_send(struct snap *sn, const void *text, size_t len) {
  if (sn->n)
    (void)api.connectionsBroadcast(sn->h, sn->n, (GCT_PTR)text, len, 0, NULL);
  if (sn->h != sn->local)
    free(sn->h);
  sn->h = sn->local;
  sn->n = 0;
}

static void say(struct room *r, const void *text, size_t len) {
  struct snap sn;
  api.smartLock(r->lock);
  snap_take(&sn, r);
  api.smartUnlock(r->lock);
  snap_send(&sn, text, len);
}

static size_t notice_text(char *line, size_t cap, const char *name,
                          const char *what) {
  int n = snprintf(line, cap, "* %s %s", name, what);
  return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* Under 'registry'. */
static struct room *room_get(const char *name) {
  for (struct room *r = rooms; r; r = r->next)
    if (strcmp(r->name, name) == 0)
      return r;
  struct room *r = calloc(1, sizeof *r);
  size_t n = strlen(name) + 1;
  if (!r || !(r->name = malloc(n)) || !(r->lock = api.smartLockCreate())) {
    if (r)
      free(r->name);
    free(r);
    return NULL;
  }
  memcpy(r->name, name, n);
  r->next = rooms;
  rooms = r;
  return r;
}

/* Under 'registry', not under r's lock: no member is left to take it. */
static void room_drop_if_empty(struct room *r) {
  if (r->count)
    return;
  for (struct room **p = &rooms; *p; p = &(*p)->next)
    if (*p == r) {
      *p = r->next;
      break;
    }
  api.smartLockDestroy(r->lock);
  free(r->members);
  free(r->handles);
  free(r->name);
  free(r);
}

GC_ADAPTER_EVENT GCT_INTPTR on_connect(GCT_INT app_id, GCT_INTPTR conn_handle,
                                       GCT_INT pid, GCT_CSTR rip,
                                       GCT_INT rport, GCT_CSTR lip,
                                       GCT_INT lport, GCT_CSTR udata) {
  (void)app_id, (void)pid, (void)rip, (void)rport, (void)lip, (void)lport;
  char room_name[256], name[MAX_NAME + 1];
  const char *target = udata ? udata : "/";
  if (query_get(target, "room", room_name, sizeof room_name) <= 0)
    strcpy(room_name, "lobby");
  long nl = query_get(target, "name", name, sizeof name);
  struct member *m = calloc(1, sizeof *m);
  if (!m)
    return GC_DROP_CONNECTION;
  long id = atomic_fetch_add(&next_id, 1) + 1;
  api.smartLock(registry);
  struct room *r = room_get(room_name);
  if (!r) {
    api.smartUnlock(registry);
    free(m);
    return GC_DROP_CONNECTION;
  }
  api.smartLock(r->lock);
  if (!valid_name(name, nl))
    snprintf(m->name, sizeof m->name, "guest%ld", id);
  else if (find(r, name))
    snprintf(m->name, sizeof m->name, "%s%ld", name, id);
  else
    snprintf(m->name, sizeof m->name, "%s", name);
  if (r->count == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 16;
    struct member **mm = realloc(r->members, cap * sizeof *mm);
    if (mm)
      r->members = mm;
    GCT_INTPTR *hh = mm ? realloc(r->handles, cap * sizeof *hh) : NULL;
    if (!mm || !hh) {
      api.smartUnlock(r->lock);
      room_drop_if_empty(r);
      api.smartUnlock(registry);
      free(m);
      return GC_DROP_CONNECTION;
    }
    r->handles = hh;
    r->cap = cap;
  }
  m->handle = conn_handle;
  m->room = r;
  m->index = r->count;
  r->members[r->count] = m;
  r->handles[r->count] = conn_handle;
  r->count++;
  struct snap sn;
  snap_take(&sn, r);
  api.smartUnlock(r->lock);
  api.smartUnlock(registry);
  char line[MAX_NAME + 64];
  snap_send(&sn, line, notice_text(line, sizeof line, m->name, "joined"));
  return (GCT_INTPTR)m;
}

GC_ADAPTER_EVENT void on_message(GCT_INTPTR conn_user, GCT_PTR data,
                                 GCT_SIZE len) {
  struct member *m = (struct member *)conn_user;
  const char *text = data;
  if (len && text[len - 1] == '\n') {
    len--;
    if (len && text[len - 1] == '\r')
      len--;
  }
  if (!len || !m->room)
    return;
  if (len > MAX_TEXT) {
    static const char too_long[] = "* message too long";
    (void)api.connectionAddMessage(m->handle, (GCT_PTR)too_long,
                                   sizeof too_long - 1, 0);
    return;
  }
  /* "NAME: TEXT", on this thread's stack (events of several loops run at
   * once). */
  char buf[sizeof m->name + 2 + MAX_TEXT];
  size_t nl = strlen(m->name);
  memcpy(buf, m->name, nl);
  memcpy(buf + nl, ": ", 2);
  memcpy(buf + nl + 2, text, len);
  /* m is a member until its on_disconnect, which never runs beside this
   * event: its room stays alive without the registry. */
  say(m->room, buf, nl + 2 + len);
}

GC_ADAPTER_EVENT void on_disconnect(GCT_INTPTR conn_user) {
  struct member *m = (struct member *)conn_user;
  struct room *r = m->room;
  if (r) {
    struct snap sn;
    api.smartLock(registry);
    api.smartLock(r->lock);
    size_t last = r->count - 1;
    r->members[m->index] = r->members[last];
    r->handles[m->index] = r->handles[last];
    r->members[m->index]->index = m->index;
    r->count--;
    snap_take(&sn, r); /* the others: the room may go with the registry's lock */
    api.smartUnlock(r->lock);
    room_drop_if_empty(r);
    api.smartUnlock(registry);
    char line[MAX_NAME + 64];
    snap_send(&sn, line, notice_text(line, sizeof line, m->name, "left"));
  }
  free(m);
}
