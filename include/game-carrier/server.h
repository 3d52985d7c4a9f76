/*
 * game-carrier/server.h - the Game Carrier server API as gcs implements it.
 *
 * An adapter is a shared library that exports the events below (at least
 * 'adapter_initialize'). gcs hands it a 'struct core_api' in
 * 'adapter_initialize'; the adapter copies the table by value and calls the
 * host through it. The table pointer is valid only during that call; the
 * function pointers stay valid for the life of the process.
 *
 * Conventions of every member, unless its comment says otherwise:
 *  - returns 0 on success or a positive errno value (EINVAL for a bad
 *    argument, a stale handle or a call in the wrong phase; ENOMEM; ENOSYS for
 *    a feature this host does not offer yet). A failed call changes nothing.
 *  - pointer arguments are borrowed for the call only; the host copies what
 *    it keeps.
 *  - connection handles are opaque: a stale handle (its connection is gone)
 *    gets EINVAL and can never reach a newer connection.
 *  - threads (Game Carrier's rules): connection events run on worker
 *    threads; the events of one connection never run concurrently and keep
 *    their order, different connections' events run in parallel. Every
 *    member may be called from any thread, the adapter's own included. A
 *    call for a connection served by another worker is handed to that
 *    worker; calls from one thread to one connection keep their order.
 *
 * 'struct core_api' only ever grows at the end; members are never reordered,
 * removed or retyped (GC_SERVER_API_VERSION_MAJOR changes if that is ever
 * unavoidable).
 */
#ifndef GAME_CARRIER_SERVER_H
#define GAME_CARRIER_SERVER_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* on_connect returns this to refuse a client. */
#define GC_DROP_CONNECTION ((GCT_INTPTR)-1)

/* Reasons of connectionClose. */
#define GC_CLOSE_REASON_NORMAL 0 /* deliver the queue, then close */
#define GC_CLOSE_REASON_DROP 1   /* discard the queue, close at once */

/* Frame types of connectionAddMessageEx and connectionsBroadcastEx (API
 * 1.2). DEFAULT is the app's "message_type" ("binary" unless configured),
 * which is also what connectionAddMessage and connectionsBroadcast send. */
#define GC_MESSAGE_DEFAULT 0
#define GC_MESSAGE_BINARY 1 /* a binary frame (a browser gets a Blob) */
#define GC_MESSAGE_TEXT 2   /* a text frame (a string): valid UTF-8 only */

/* Bounds of connectionCloseEx and connectionRefuse (API 1.2). */
#define GC_CLOSE_TEXT_MAX 123  /* bytes of a close frame's reason */
#define GC_REFUSE_TEXT_MAX 256 /* bytes of a refused upgrade's body line */

/* Types of getOpt. */
#define GC_OPT_TYPE_NULL 0   /* existence test; nothing written */
#define GC_OPT_TYPE_STRING 1 /* writes a 'const char *' owned by the host */
#define GC_OPT_TYPE_UINT64 2 /* writes a uint64_t */
#define GC_OPT_TYPE_INT 3    /* writes an int32_t */
/* gcs extensions (API 1.2): */
#define GC_OPT_TYPE_JSON 4   /* writes a 'const char *': the value as JSON */
#define GC_OPT_TYPE_WHERE 5  /* writes "FILE:LINE:COL" of the value */
#define GC_OPT_TYPE_WHERE_KEY 6 /* the same, of its key (a member) */
#define GC_OPT_WHERE_SIZE 256

/* ---- configuration ------------------------------------------------------ */

/* Reads the value at 'name' of the loaded JSON config: dots separate
 * objects, '[n]' indexes arrays, '.len' is the length of an array or
 * object. Writes it into '*value' as 'type' says. STRING writes a pointer to
 * host memory valid until the process exits. Numbers read as STRING fail;
 * a log level name ("NORMAL") read as INT gives its numeric mask.
 * JSON (gcs) writes a pointer to the compact JSON text of any value
 * (object, array, string quoted, number, true, false, null), host memory
 * valid until the process exits: for an adapter with a JSON parser of its
 * own. WHERE (gcs) writes where the value stands in the config file,
 * "gcs.json:12:7", NUL-terminated, into the char array of
 * GC_OPT_WHERE_SIZE bytes at 'value' (WHERE_KEY: where its key stands, for
 * a member of an object): for an adapter that checks options of its own
 * and says where a bad one is, as gcs does for its own keys.
 * Paths of gcs: "apps[ID]" is the entry of the application with that id
 * (the 'app_id' of its events) and "apps.NAME" the one named NAME (a name
 * without '.', '[' or ']'); their "settings" are the app's merged with
 * its adapter entry's and the root's, the app's key winning, then the
 * adapter's: getOpt("apps[3].settings.max_players", GC_OPT_TYPE_INT, &n).
 * The file's own path (adapters[0].apps[1].settings.max_players) reads
 * the entry's own "settings" only.
 * Errors: ENOENT no such path; EINVAL bad path, type, NULL value or a
 * value that does not fit (a negative number as UINT64, 2^31 as INT);
 * ENOMEM (JSON). */
typedef GCT_INT(GC_CORE_API *GetOpt)(GCT_CSTR name, GCT_INT type,
                                     GCT_PTR value);

/* ---- messaging ---------------------------------------------------------- */

/* Queues one message (one WebSocket frame, of the app's "message_type":
 * binary unless configured; see ConnectionAddMessageEx) for the client.
 * 'data' is copied before return. 'cookie' comes back in on_message_sent, which
 * fires exactly once per accepted message: status 0 when handed to the
 * OS, non-zero (ECANCELED) when discarded. EINVAL: stale handle, connection
 * closing, NULL data with len > 0. EMSGSIZE: 'len' is over the host's
 * max_output_msg_size; nothing changed. ENOBUFS: the output queue limit was
 * reached: the client does not read and was dropped. EILSEQ: the app
 * sends text and 'data' is not valid UTF-8; nothing changed. */
typedef GCT_INT(GC_CORE_API *ConnectionAddMessage)(GCT_INTPTR conn_handle,
                                                   GCT_PTR data, GCT_SIZE len,
                                                   GCT_INTPTR cookie);

/* Requests the close of a connection and returns at once; on_disconnect
 * follows later from the event loop, never inside this call. NORMAL stops
 * reading, delivers every queued message in order, then sends a WebSocket
 * close frame (1000; see ConnectionCloseEx for another code) and closes, dropping after the configured drain time.
 * DROP discards the queue and closes the socket now. EINVAL: another
 * reason, an unknown or stale handle, or a connection already closing. */
typedef GCT_INT(GC_CORE_API *ConnectionClose)(GCT_INTPTR conn_handle,
                                              GCT_INT reason);

/* Arms the connection's one-shot timer: on_timer fires after 'ms'
 * milliseconds unless the connection closes first. Setting it again
 * replaces it; ms <= 0 cancels it. EINVAL: stale handle, closing. */
typedef GCT_INT(GC_CORE_API *ConnectionSetTimer)(GCT_INTPTR conn_handle,
                                                 GCT_INT ms);

/* Sets the threshold of statistic 'id' (enum gc_conn_stats) at alarm
 * 'level' (GC_STAT_STATUS_YELLOW or _RED) for one connection. */
typedef GCT_INT(GC_CORE_API *ConnectionSetLimit)(GCT_INTPTR conn_handle,
                                                 GCT_INT level, GCT_INT id,
                                                 GCT_COUNTER_VALUE value);

/* ---- server to server --------------------------------------------------- */

/* Opens an outgoing WebSocket connection (a "link") to application
 * 'app_name' at host:port (GET /app_name; 'app_name' may end in "?query",
 * a gcs extension) and returns at once; 'events' and the strings are
 * copied. 'host' is a name or an address, resolved without blocking.
 * Every event of the link runs on the worker thread that called
 * s2sCreate (worker 0 when called from another thread), never inside an
 * API call: exactly one of on_client_connect (with the link's handle) and
 * on_client_connection_error (with a short reason, e.g. "connection
 * refused", "timeout" after 10 s, "upgrade refused: HTTP 404") per
 * attempt, then messages, on_client_message_sent, on_client_timer, and
 * on_client_disconnect last, once (after on_client_connect only). NULL
 * members are skipped. 'adapter' is not checked (any id).
 * GC_PROTOCOL_WSS is TLS: the server's certificate is checked as the
 * config's "s2s" says (ca_file or the system's store; verify) and against
 * 'host'; a failed check is on_client_connection_error ("TLS handshake
 * failed: certificate verify failed: ..."). Returns 0, EINVAL (bad
 * arguments), ENOMEM, or ESHUTDOWN (the host is shutting down). */
typedef GCT_INT(GC_CORE_API *S2SCreate)(GCT_INT adapter, GCT_INTPTR s2s_user,
                                        GCT_INT proto, GCT_PTR host,
                                        GCT_INT port, GCT_PTR app_name,
                                        struct client_events *events);
/* Closes a link NORMAL (as connectionClose): every message queued before
 * goes out in order, then a close frame (1000); the link ends when the peer
 * answers it, or after close_drain_ms. on_client_disconnect follows, later.
 * Messages still queued when a link ends (the peer vanished) are reported
 * by on_client_message_sent with ECANCELED before it. EINVAL: an unknown or
 * stale handle, or a link already closing. Any thread. At shutdown every
 * link closes the same way after application_stop, before
 * application_shutdown. */
typedef GCT_INT(GC_CORE_API *S2SDestroy)(GCT_INTPTR s2s_handle);
/* Queues one binary message (copied); on_client_message_sent reports it
 * once, status 0 when handed to the OS. No result: a message for an
 * unknown, stale or closing link, or over max_output_msg_size, is dropped
 * with a log line; past 64 MiB queued the peer is not reading and the link
 * is dropped. Any thread; calls from one thread keep their order. */
typedef void(GC_CORE_API *S2SAddMessage)(GCT_INTPTR s2s_handle, GCT_PTR data,
                                         GCT_SIZE len, GCT_INTPTR cookie);
/* The link's one-shot timer (as connectionSetTimer): on_client_timer after
 * 'ms'; again replaces it; ms <= 0 cancels. EINVAL: stale, closing. */
typedef GCT_INT(GC_CORE_API *S2SSetTimer)(GCT_INTPTR s2s_handle, GCT_INT ms);

/* ---- counters ----------------------------------------------------------- */

/* Called when a subscribed counter changes. */
typedef void (*OnCounterChange)(GCT_INTPTR user, GCT_INT id,
                                GCT_COUNTER_VALUE value);

/* Create (only during application_initialize) or open a process-wide
 * named counter: return its id (>= 0), or -1 on failure. */
typedef GCT_INT(GC_CORE_API *CounterCreate)(GCT_CSTR name);
typedef GCT_INT(GC_CORE_API *CounterCreateAtomic)(GCT_CSTR name);
typedef GCT_INT(GC_CORE_API *CounterOpen)(GCT_CSTR name);
/* Writes up to 'max' names (host-owned strings) into 'names' and returns
 * the total number of counters, or -1 on failure. */
typedef GCT_INT(GC_CORE_API *CounterGetNames)(GCT_CSTR *names, GCT_INT max);
typedef GCT_INT(GC_CORE_API *CounterGet)(GCT_INT id, GCT_COUNTER_VALUE *value);
typedef GCT_INT(GC_CORE_API *CounterSet)(GCT_INT id, GCT_COUNTER_VALUE value);
typedef GCT_INT(GC_CORE_API *CounterAdd)(GCT_INT id, GCT_COUNTER_VALUE delta);
typedef GCT_INT(GC_CORE_API *CounterIncrement)(GCT_INT id);
typedef GCT_INT(GC_CORE_API *CounterDecrement)(GCT_INT id);
typedef GCT_INT(GC_CORE_API *CounterSubscribe)(GCT_INT id, OnCounterChange cb,
                                               GCT_INTPTR user);
typedef GCT_INT(GC_CORE_API *CounterUnsubscribe)(GCT_INT id,
                                                 OnCounterChange cb,
                                                 GCT_INTPTR user);

/* ---- smart locks -------------------------------------------------------- */

/* A recursive lock shared by worker threads. Create returns 0 on failure. */
typedef GCT_INTPTR(GC_CORE_API *SmartLockCreate)(void);
typedef void(GC_CORE_API *SmartLockDestroy)(GCT_INTPTR lock);
typedef GCT_INT(GC_CORE_API *SmartLock)(GCT_INTPTR lock);
typedef void(GC_CORE_API *SmartUnlock)(GCT_INTPTR lock);

/* ---- logging ------------------------------------------------------------ */

/* Logs one NUL-terminated line at 'level' (one GCL_* flag) through the
 * server log (level mask and file from the config). Usable from
 * adapter_initialize on. */
typedef void(GC_CORE_API *LogMessage)(GCT_INT level, GCT_CPTR msg);

/* ---- application timers and clock (gcs extension, not in Game Carrier) - */

/* Called when an application timer fires, on the application's thread. */
typedef void (*GCTimerCallback)(GCT_INTPTR user);

/* Calls 'cb(user)' after 'ms' milliseconds, then every 'repeat_ms' if it is
 * > 0, on the worker of the calling thread (see WorkerId, WorkerEnter).
 * Returns a timer id (> 0), or 0 on failure (unknown app, ms < 0, no
 * memory, a thread that is no worker's). A one-shot timer's id is dead
 * once it fired. timerStop may be called from any thread. */
typedef GCT_INTPTR(GC_CORE_API *TimerStart)(GCT_INT app_id, GCT_INT ms,
                                            GCT_INT repeat_ms,
                                            GCTimerCallback cb,
                                            GCT_INTPTR user);
/* Cancels a timer: 0, or EINVAL for an unknown or already fired one. */
typedef GCT_INT(GC_CORE_API *TimerStop)(GCT_INTPTR timer_id);
/* Milliseconds of the host's monotonic clock (virtual under gc.testing). */
typedef int64_t(GC_CORE_API *NowMs)(void);

/* Queues one message to many connections: the payload is copied once and
 * shared by every queue (a room broadcast), each connection reports its
 * own on_message_sent with 'cookie'. Handles that are stale or closing are
 * skipped, and so are clients dropped for not reading. Writes how many
 * connections took it to '*queued' (may be NULL). 0, or EINVAL (NULL
 * handles with count > 0, NULL data with len > 0), EMSGSIZE (over
 * max_output_msg_size) or ENOMEM; on an error no connection took it. */
typedef GCT_INT(GC_CORE_API *ConnectionsBroadcast)(const GCT_INTPTR *handles,
                                                   GCT_SIZE count, GCT_PTR data,
                                                   GCT_SIZE len,
                                                   GCT_INTPTR cookie,
                                                   GCT_SIZE *queued);

/* Appended in API 1.1 (gcs extensions): worker loops. */

/* The number of worker loops (>= 1). */
typedef GCT_INT(GC_CORE_API *WorkerCount)(void);
/* The worker 0..count-1 the calling thread runs (or acts as, see
 * WorkerEnter), or -1 for a thread that is no worker's. */
typedef GCT_INT(GC_CORE_API *WorkerId)(void);
/* Runs 'cb(user)' on the thread of 'worker', later (never inside this
 * call, even on that worker's own thread); callbacks posted by one thread
 * to one worker run in the order posted. An accepted callback (0) runs
 * exactly once, even when its worker stops first (it then runs during the
 * shutdown, before application_shutdown, on the thread running that).
 * 0, EINVAL (no such worker, NULL cb), ENOMEM, or ESHUTDOWN (the workers
 * have ended: 'cb' never runs). */
typedef GCT_INT(GC_CORE_API *WorkerPost)(GCT_INT worker, GCTimerCallback cb,
                                         GCT_INTPTR user);
/* The worker that serves every connection of 'app_id', or -1 when its
 * connections are spread over the workers (a native adapter's, or an app
 * with a "route"). -2 for an unknown app. Valid from
 * application_initialize on. */
typedef GCT_INT(GC_CORE_API *ApplicationWorker)(GCT_INT app_id);
/* Makes the calling thread act as 'worker' for the calls that depend on
 * the thread (WorkerId, timerStart) until the next WorkerEnter; -1 ends
 * it. Only while that worker's loop is not running (during
 * application_initialize, application_start and application_shutdown, and
 * always under gc.testing, which runs every worker on one thread): EBUSY
 * otherwise, EINVAL for no such worker. For an adapter that keeps state
 * per worker (the Lua adapter: a Lua state per worker) and sets it up in
 * the application events. */
typedef GCT_INT(GC_CORE_API *WorkerEnter)(GCT_INT worker);

/* Appended in API 1.2 (gcs extensions): text frames, close codes, refusals. */

/* connectionAddMessage with a frame type: 'flags' is GC_MESSAGE_TEXT,
 * GC_MESSAGE_BINARY or GC_MESSAGE_DEFAULT (0: the app's "message_type",
 * exactly connectionAddMessage). A text message must be valid UTF-8
 * (RFC 6455: a client fails the connection otherwise): EILSEQ and
 * nothing queued when it is not. 'data' is const here (copied, as by
 * connectionAddMessage). EINVAL for other flags, and as
 * connectionAddMessage. A call handed to another worker (see the
 * conventions above) with GC_MESSAGE_TEXT is checked before it returns;
 * with DEFAULT the app's type is known there only, so an invalid text
 * message is found there, logged and not sent. */
typedef GCT_INT(GC_CORE_API *ConnectionAddMessageEx)(GCT_INTPTR conn_handle,
                                                     GCT_CPTR data, GCT_SIZE len,
                                                     GCT_INTPTR cookie,
                                                     GCT_INT flags);
/* connectionsBroadcast with a frame type ('flags' as above). With
 * GC_MESSAGE_TEXT a payload that is not valid UTF-8 is refused (EILSEQ,
 * no connection took it). With DEFAULT each receiver gets its own app's
 * type, and receivers whose app sends text skip a payload that is not
 * valid UTF-8 (as closing ones are skipped: not counted in '*queued'). */
typedef GCT_INT(GC_CORE_API *ConnectionsBroadcastEx)(
    const GCT_INTPTR *handles, GCT_SIZE count, GCT_CPTR data, GCT_SIZE len,
    GCT_INTPTR cookie, GCT_INT flags, GCT_SIZE *queued);
/* connectionClose with the close frame's status code and reason, which
 * the client sees in its close event (a browser's CloseEvent.code and
 * .reason): 'code' 1000 or 3000..4999 (0: 1000), 'text' NULL or a
 * NUL-terminated string of at most GC_CLOSE_TEXT_MAX bytes of valid UTF-8
 * (copied). NORMAL sends them once the queue is delivered; DROP sends no
 * close frame at all (they are checked, then unused). EINVAL: another
 * code, a text too long or not UTF-8, and as connectionClose; ENOMEM. */
typedef GCT_INT(GC_CORE_API *ConnectionCloseEx)(GCT_INTPTR conn_handle,
                                                GCT_INT reason, GCT_INT code,
                                                GCT_CSTR text);
/* Chooses the HTTP answer of a refused upgrade: callable only inside
 * on_connect, for that connection, and only then (EINVAL otherwise). If
 * on_connect then returns GC_DROP_CONNECTION, the client gets 'status'
 * (400..599) with 'text' as a one-line text/plain body (NULL: the default
 * body; else 1..GC_REFUSE_TEXT_MAX bytes of UTF-8 without control
 * characters, copied), instead of 403; if on_connect accepts, the answer
 * is forgotten. A second call replaces the first. E.g.
 *   api.connectionRefuse(h, 401, "bad token"); return GC_DROP_CONNECTION;
 * EINVAL: outside its on_connect, another status, a bad text; ENOMEM. */
typedef GCT_INT(GC_CORE_API *ConnectionRefuse)(GCT_INTPTR conn_handle,
                                               GCT_INT status, GCT_CSTR text);

/* Appended in API 1.3 (gcs extensions): channels between hosts. */

/* Publishes 'data' on channel 'channel' of application 'app_id' through
 * the config's "redis": every gcs host connected to that Redis (this one
 * included) hands it to the app's adapter there, through its export
 * on_channel_message (below). The message goes to Redis as it is, on the
 * Redis channel "gcs:<app name>:<channel>", so only hosts serving an app
 * of that name hear it. 'channel' is a NUL-terminated string of at most
 * 1024 bytes ("" too); 'data' (len bytes, may hold NULs) is copied before
 * return. Callable from any thread; calls from one thread keep their
 * order. Returns 0 once the message is on its way, not once delivered
 * (Redis pub/sub is at most once: a message in flight when the connection
 * drops may be lost), or:
 *  - ENOSYS: the config has no "redis" (or this host offers none, such as
 *    gc.testing's): nothing leaves the process; deliver in-process
 *    yourself (the Lua adapter's gc.publish does). Checked before the
 *    arguments: channelPublish(app_id, NULL, NULL, 0) answers ENOSYS
 *    without Redis and EINVAL with it;
 *  - ENOTCONN: Redis is down or not connected yet (the host reconnects
 *    by itself; the log says once per outage): nothing was sent;
 *  - EAGAIN: more than 64 MiB of published messages wait for Redis's
 *    answer (Redis does not keep up): nothing was sent;
 *  - EINVAL: an unknown app, a bad channel, NULL data with len > 0;
 *    EMSGSIZE: 'len' over 512 MiB (Redis's limit); ENOMEM; ESHUTDOWN:
 *    the host is shutting down (after its connections are gone). */
typedef GCT_INT(GC_CORE_API *ChannelPublish)(GCT_INT app_id, GCT_CSTR channel,
                                             GCT_CPTR data, GCT_SIZE len);

/* Appended in API 1.4 (gcs extensions): outgoing HTTP/1.1 requests on the
 * worker loops, for adapters that must wait on an HTTP service without
 * blocking a worker. gcs's client (host/http_client*.c): keep-alive
 * connections pooled per (scheme, host, port) on each worker (at most 8 idle ones
 * per host, closed after 30 s unused); a pooled connection the server
 * closed meanwhile is retried once on a fresh one for GET, HEAD, OPTIONS,
 * PUT, DELETE and TRACE (never for POST or PATCH); Content-Length and
 * chunked bodies; names resolved without blocking (uv_getaddrinfo; IP
 * literals at once). "https://" (default port 443) runs TLS 1.2/1.3 on the
 * loop: the server's certificate is verified against the config's
 * "http": { "ca_file" } (else the system's store) and the URL's host (SNI
 * and DNS name, or IP address), unless "verify": false. */
struct gc_http_header {
  GCT_CSTR name;
  GCT_CSTR value;
};
struct gc_http_request {
  GCT_CSTR method; /* NULL: "GET" */
  GCT_CSTR url;    /* "http://host[:port]/path?query" or "https://..." */
  /* Sent as given (values without CR or LF), after Host; a Host among them
   * replaces gcs's; Content-Length, Transfer-Encoding and Connection are
   * gcs's own (ignored here). */
  const struct gc_http_header *headers;
  GCT_SIZE header_count;
  GCT_CPTR body;        /* sent with Content-Length when body_len > 0 */
  GCT_SIZE body_len;
  GCT_INT timeout_ms;   /* whole request, redirects included; <= 0: 5000 */
  GCT_SIZE max_body;    /* 0: 16 MiB */
  GCT_INT max_redirects; /* 0: none followed (3xx returned as is) */
};
struct gc_http_response {
  GCT_INT status;
  /* Names lower-cased, in the order received; a name the server repeated
   * is one entry, its values joined with ", " (set-cookie too). */
  const struct gc_http_header *headers;
  GCT_SIZE header_count;
  GCT_CPTR body; /* NUL-terminated past len */
  GCT_SIZE body_len;
};
/* Called exactly once per accepted request, on the worker loop of the
 * thread that called httpRequest, never inside httpRequest. err == 0:
 * 'res' valid during the call only (any status: a 404 is a response).
 * err != 0 (ETIMEDOUT, ECONNREFUSED, EMSGSIZE body too large, EPROTO bad
 * response, or https: "certificate verify failed: ..." / "tls handshake
 * failed: ...", ECANCELED cancelled or host shutting down, EHOSTUNREACH
 * name not resolved, ...): res NULL, 'err_text' a short human-readable
 * reason (e.g. "timeout", "connection refused"). At
 * the shutdown the requests still pending end with ECANCELED once the
 * connections are gone, before application_shutdown. */
typedef void (*GCHttpCallback)(GCT_INTPTR user, GCT_INT err, GCT_CSTR err_text,
                               const struct gc_http_response *res);
/* Starts a request for app 'app_id' from a worker thread (WorkerId() >= 0).
 * Everything in 'req' is copied before return. Returns a request id > 0,
 * or 0 on an immediate failure with errno-style code written to *err (may
 * be NULL): EINVAL bad url/args (or not a worker thread), ENOMEM,
 * ESHUTDOWN (that worker has ended). Under gc.testing the answer
 * comes from T.host's 'http' function instead of the network. */
typedef GCT_INTPTR(GC_CORE_API *HttpRequest)(GCT_INT app_id,
                                             const struct gc_http_request *req,
                                             GCHttpCallback cb, GCT_INTPTR user,
                                             GCT_INT *err);
/* Cancels: the callback then runs (later, on the request's worker) with
 * ECANCELED, even if the answer had already arrived but was not yet
 * delivered. 0, or EINVAL (unknown, finished or already cancelled). From
 * another thread the cancel is handed to that worker: 0 then means it is
 * on its way. */
typedef GCT_INT(GC_CORE_API *HttpCancel)(GCT_INTPTR request_id);

/* A Redis reply as redisCommand hands it over, valid during the callback
 * only (hiredis's types stay inside the host). */
#define GC_REDIS_STRING 1  /* bulk string: str, len */
#define GC_REDIS_ARRAY 2   /* elements, element[] (a nil array: GC_REDIS_NIL) */
#define GC_REDIS_INTEGER 3 /* integer */
#define GC_REDIS_NIL 4
#define GC_REDIS_STATUS 5  /* a simple string ("OK", "PONG"): str, len */
#define GC_REDIS_ERROR 6   /* an error reply ("ERR ...", "WRONGTYPE ..."): str, len */
struct gc_redis_reply {
  GCT_INT type;
  int64_t integer;
  GCT_CSTR str; GCT_SIZE len; /* NUL-terminated past len */
  const struct gc_redis_reply *element; GCT_SIZE elements;
};
/* Called exactly once per accepted command, on the worker loop of the
 * thread that called redisCommand, never inside redisCommand, in the order
 * the calling worker sent its commands. err == 0: 'reply' valid during the
 * call only (an error reply is a reply: GC_REDIS_ERROR). err != 0
 * (ENOTCONN Redis down or not connected yet, ETIMEDOUT no answer within
 * the config's timeout_ms, ECONNRESET the connection dropped with the
 * command in flight, ECANCELED host shutting down): reply NULL, 'err_text'
 * a short reason. */
typedef void (*GCRedisCallback)(GCT_INTPTR user, GCT_INT err, GCT_CSTR err_text,
                                const struct gc_redis_reply *reply);
/* Sends one command (argv[0] the command's name, each argument argvlen[i]
 * bytes, binary-safe, copied before return) on the calling worker's own
 * connection to the config's "redis" (made at the first command of that
 * worker, reconnected with backoff; concurrent commands are pipelined on
 * it). From a worker thread only (WorkerId() >= 0). 0: 'cb' will run once;
 * else nothing runs: ENOSYS (no "redis" in the config, or a host without
 * it), EINVAL (argc < 1, NULL argv, not a worker thread), ENOTCONN (Redis
 * is down: calls fail at once during an outage, one log line per outage),
 * ENOMEM, ESHUTDOWN. */
typedef GCT_INT (GC_CORE_API *RedisCommand)(GCT_INT argc, const GCT_CSTR *argv,
                                            const GCT_SIZE *argvlen,
                                            GCRedisCallback cb, GCT_INTPTR user);

struct core_api {
  GetOpt getOpt;

  ConnectionAddMessage connectionAddMessage;
  ConnectionClose connectionClose;
  ConnectionSetTimer connectionSetTimer;
  ConnectionSetLimit connectionSetLimit;

  S2SCreate s2sCreate;
  S2SDestroy s2sDestroy;
  S2SAddMessage s2sAddMessage;
  S2SSetTimer s2sSetTimer;

  CounterCreate counterCreate;
  CounterCreateAtomic counterCreateAtomic;
  CounterOpen counterOpen;
  CounterGetNames counterGetNames;
  CounterGet counterGet;
  CounterSet counterSet;
  CounterAdd counterAdd;
  CounterIncrement counterIncrement;
  CounterDecrement counterDecrement;
  CounterSubscribe counterSubscribe;
  CounterUnsubscribe counterUnsubscribe;

  SmartLockCreate smartLockCreate;
  SmartLockDestroy smartLockDestroy;
  SmartLock smartLock;
  SmartUnlock smartUnlock;

  LogMessage logMessage;

  /* Appended in API 1.0 (gcs extensions). */
  TimerStart timerStart;
  TimerStop timerStop;
  NowMs nowMs;
  ConnectionsBroadcast connectionsBroadcast;

  /* Appended in API 1.1. */
  WorkerCount workerCount;
  WorkerId workerId;
  WorkerPost workerPost;
  ApplicationWorker applicationWorker;
  WorkerEnter workerEnter;

  /* Appended in API 1.2. */
  ConnectionAddMessageEx connectionAddMessageEx;
  ConnectionsBroadcastEx connectionsBroadcastEx;
  ConnectionCloseEx connectionCloseEx;
  ConnectionRefuse connectionRefuse;

  /* Appended in API 1.3. */
  ChannelPublish channelPublish;

  /* Appended in API 1.4. */
  HttpRequest httpRequest;
  HttpCancel httpCancel;
  RedisCommand redisCommand; /* host/redis_cmd.c */
};

/* ---- adapter events (exported by the adapter, called by gcs) ------------ */

/* First call after loading; 'api' is valid during the call only (copy it).
 * 'load_path' is the adapter entry's "dir". Non-zero stops start-up. */
GC_ADAPTER_EVENT GCT_INT adapter_initialize(GCT_INT adapter_id,
                                            struct core_api *api,
                                            GCT_CPTR load_path);
GC_ADAPTER_EVENT void adapter_finalize(GCT_INT adapter_id);
/* Optional (gcs extension): SIGHUP, or a change on disk under gcs --watch,
 * asks the adapter to reload what it can without dropping anyone (the Lua
 * adapter reloads its scripts). Called once per loaded library, on worker
 * 0's thread while every worker runs. */
GC_ADAPTER_EVENT void adapter_reload(GCT_INT adapter_id);

/* Optional (gcs extension, API 1.3): a message published on 'channel' of
 * application 'app_id' (channelPublish, by this host or another one
 * sharing the config's "redis"). Called on worker 0's thread, one message
 * at a time, in the order Redis delivers them (the order in which Redis
 * took them, the same on every host), once the workers run and until
 * the shutdown has closed every connection; never during
 * application_shutdown. 'channel' (NUL-terminated) and 'data' (len bytes,
 * NUL-terminated past len) are valid during the call only. gcs subscribes
 * to the channels of the apps whose adapter exports it. */
GC_ADAPTER_EVENT void on_channel_message(GCT_INT app_id, GCT_CSTR channel,
                                         GCT_CPTR data, GCT_SIZE len);

/* Threads of the application events: application_initialize and
 * application_start run on the main thread before the workers start;
 * application_stop on worker 0 while every worker still runs, and each
 * worker's NORMAL close of its connections comes after it returns (so
 * what it posted with WorkerPost runs first); application_shutdown on the
 * main thread once every worker has ended. */

/* Once per app entry, before listening. Non-zero stops start-up. */
GC_ADAPTER_EVENT GCT_INT application_initialize(GCT_INT app_id,
                                                GCT_CSTR name,
                                                GCT_CSTR type_name,
                                                GCT_CSTR file_name);
/* Listening, before any on_connect. */
GC_ADAPTER_EVENT void application_start(GCT_INT app_id);
/* First notice of shutdown: connections are still open and usable. */
GC_ADAPTER_EVENT void application_stop(GCT_INT app_id);
/* Every connection is gone (all on_disconnect delivered). */
GC_ADAPTER_EVENT void application_shutdown(GCT_INT app_id);

/* A client completed the WebSocket upgrade. 'udata' is the request target
 * (path and query, e.g. "/chat?room=7"); strings are valid during the call.
 * Return GC_DROP_CONNECTION to refuse (no other event follows; HTTP 403
 * unless connectionRefuse chose another answer), anything
 * else becomes 'conn_user' of every later event of this connection. */
GC_ADAPTER_EVENT GCT_INTPTR on_connect(GCT_INT app_id, GCT_INTPTR conn_handle,
                                       GCT_INT pid, GCT_CSTR rip,
                                       GCT_INT rport, GCT_CSTR lip,
                                       GCT_INT lport, GCT_CSTR udata);
/* Last event of an accepted connection, however it ended. */
GC_ADAPTER_EVENT void on_disconnect(GCT_INTPTR conn_user);
/* One complete message; 'data' is valid during the call only. */
GC_ADAPTER_EVENT void on_message(GCT_INTPTR conn_user, GCT_PTR data,
                                 GCT_SIZE len);
GC_ADAPTER_EVENT void on_message_sent(GCT_INTPTR conn_user, GCT_INTPTR cookie,
                                      GCT_SIZE len, GCT_INT status);
GC_ADAPTER_EVENT void on_timer(GCT_INTPTR conn_user);
/* A statistic entered its YELLOW zone; return a gc_stat_reaction. */
GC_ADAPTER_EVENT GCT_INT on_issue(GCT_INTPTR conn_user, GCT_INT id,
                                  GCT_COUNTER_VALUE value);

/* Optional: an adapter may export its API version (the value of
 * GC_SERVER_API_VERSION_HEX it was built with); a different major version
 * is refused at load. */
#define GC_ADAPTER_DECLARE_API_VERSION                                         \
  GC_ADAPTER_EVENT const GCT_INT gc_adapter_api_version =                      \
      GC_SERVER_API_VERSION_HEX

/* Function types of the events, for hosts and bridges resolving them. */
typedef GCT_INT (*gc_adapter_initialize_fn)(GCT_INT, struct core_api *,
                                            GCT_CPTR);
typedef void (*gc_adapter_finalize_fn)(GCT_INT);
typedef void (*gc_adapter_reload_fn)(GCT_INT);
typedef GCT_INT (*gc_application_initialize_fn)(GCT_INT, GCT_CSTR, GCT_CSTR,
                                                GCT_CSTR);
typedef void (*gc_application_event_fn)(GCT_INT);
typedef GCT_INTPTR (*gc_on_connect_fn)(GCT_INT, GCT_INTPTR, GCT_INT, GCT_CSTR,
                                       GCT_INT, GCT_CSTR, GCT_INT, GCT_CSTR);
typedef void (*gc_on_disconnect_fn)(GCT_INTPTR);
typedef void (*gc_on_message_fn)(GCT_INTPTR, GCT_PTR, GCT_SIZE);
typedef void (*gc_on_message_sent_fn)(GCT_INTPTR, GCT_INTPTR, GCT_SIZE,
                                      GCT_INT);
typedef void (*gc_on_timer_fn)(GCT_INTPTR);
typedef GCT_INT (*gc_on_issue_fn)(GCT_INTPTR, GCT_INT, GCT_COUNTER_VALUE);
typedef void (*gc_on_channel_message_fn)(GCT_INT, GCT_CSTR, GCT_CPTR,
                                         GCT_SIZE);

#ifdef __cplusplus
}
#endif

#endif /* GAME_CARRIER_SERVER_H */
