/* chat_native.c - the chat rooms of scripts/chat.lua as a native adapter,
 * for the room-broadcast benchmark (libbench_chat.so).
 *
 * Same wire protocol as chat.lua for what the benchmark uses: connect with
 * ?room=ROOM&name=NAME; every text message goes to everyone in the room
 * (sender too) as "NAME: TEXT"; "* NAME joined" to the room on connect,
 * "* NAME left" to the others on disconnect; a trailing "\r\n" is stripped,
 * empty messages ignored, longer than 4096 bytes gets "* message too long".
 * No /commands. Every room message is queued with connectionsBroadcast: the
 * frame is built once and shared by the receivers' queues. */
#include <game-carrier/server.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TEXT 4096
#define MAX_NAME 32

struct room;

struct member {
  GCT_INTPTR handle;
  struct room *room;
  size_t index; /* in room->members */
  char name[MAX_NAME + 24];
};

struct room {
  char *name;
  struct member **members;
  GCT_INTPTR *handles; /* parallel to members, handed to the host as is */
  size_t count, cap;
  struct room *next;
};

static struct core_api api;
static struct room *rooms;
static long next_id;
static char *msg_buf; /* "NAME: TEXT", reused */
static size_t msg_cap;

GC_ADAPTER_EVENT GCT_INT adapter_initialize(GCT_INT adapter_id,
                                            struct core_api *core,
                                            GCT_CPTR load_path) {
  (void)adapter_id, (void)load_path;
  api = *core;
  return api.connectionsBroadcast ? 0 : 1;
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

static void say(struct room *r, const void *text, size_t len) {
  if (r->count)
    (void)api.connectionsBroadcast(r->handles, r->count, (GCT_PTR)text, len, 0,
                                   NULL);
}

static void notice(struct room *r, const char *name, const char *what) {
  char line[MAX_NAME + 64];
  int n = snprintf(line, sizeof line, "* %s %s", name, what);
  say(r, line, (size_t)n);
}

static struct room *room_get(const char *name) {
  for (struct room *r = rooms; r; r = r->next)
    if (strcmp(r->name, name) == 0)
      return r;
  struct room *r = calloc(1, sizeof *r);
  size_t n = strlen(name) + 1;
  if (!r || !(r->name = malloc(n))) {
    free(r);
    return NULL;
  }
  memcpy(r->name, name, n);
  r->next = rooms;
  rooms = r;
  return r;
}

static void room_drop_if_empty(struct room *r) {
  if (r->count)
    return;
  for (struct room **p = &rooms; *p; p = &(*p)->next)
    if (*p == r) {
      *p = r->next;
      break;
    }
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
  struct room *r = room_get(room_name);
  struct member *m = calloc(1, sizeof *m);
  if (!r || !m) {
    free(m);
    if (r)
      room_drop_if_empty(r);
    return GC_DROP_CONNECTION;
  }
  long id = ++next_id;
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
      free(m);
      room_drop_if_empty(r);
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
  notice(r, m->name, "joined");
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
  size_t nl = strlen(m->name);
  size_t total = nl + 2 + len;
  if (total > msg_cap) {
    char *p = realloc(msg_buf, total);
    if (!p)
      return;
    msg_buf = p;
    msg_cap = total;
  }
  memcpy(msg_buf, m->name, nl);
  memcpy(msg_buf + nl, ": ", 2);
  memcpy(msg_buf + nl + 2, text, len);
  say(m->room, msg_buf, total);
}

GC_ADAPTER_EVENT void on_disconnect(GCT_INTPTR conn_user) {
  struct member *m = (struct member *)conn_user;
  struct room *r = m->room;
  if (r) {
    size_t last = r->count - 1;
    r->members[m->index] = r->members[last];
    r->handles[m->index] = r->handles[last];
    r->members[m->index]->index = m->index;
    r->count--;
    notice(r, m->name, "left");
    room_drop_if_empty(r);
  }
  free(m);
}
