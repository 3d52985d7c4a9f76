/*
 * game-carrier/client.h - the client library (libgc_client.so): outgoing
 * WebSocket connections to a Game Carrier application, with the same
 * 'struct client_events' callbacks as the server's s2s members. Built from
 * the code of gcs's links (host/link*.c), so a client and an s2s link
 * behave the same: one of on_client_connect / on_client_connection_error
 * per attempt, then messages, on_client_message_sent, on_client_timer, and
 * on_client_disconnect last.
 *
 * Flow: gc_log_setopt (optional) -> gc_clients_init(mode) ->
 * gc_client_start(user, GC_PROTOCOL_WS, host, port, app, &events) (0 =
 * started) -> on_client_connect(user, handle) -> gc_client_add_message /
 * gc_client_set_timer -> ... -> gc_client_stop(handle) ->
 * on_client_disconnect(user) -> gc_clients_cleanup().
 *
 * Modes (gc_clients_init):
 *  - GC_MODE_ACTIVE: a library thread does the networking and calls the
 *    events on that thread at once; the caller synchronises.
 *  - GC_MODE_PASSIVE: no thread; networking and events happen inside
 *    gc_clients_service() on the caller's thread, which must call it
 *    often (it does not block).
 *  - GC_MODE_HYBRID (recommended): a library thread does the networking;
 *    events are queued and delivered on the caller's thread inside
 *    gc_clients_service().
 * Every gc_client_* call may come from any thread, in every mode.
 * GC_PROTOCOL_WSS is TLS: the server's certificate is checked against
 * the system's store (OpenSSL's default paths, SSL_CERT_FILE and
 * SSL_CERT_DIR when set) and the host name; a failed check is
 * on_client_connection_error ("TLS handshake failed: certificate verify
 * failed: ...").
 */
#ifndef GAME_CARRIER_CLIENT_H
#define GAME_CARRIER_CLIENT_H

#include <game-carrier/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Starts the library: 0, EINVAL (unknown mode), EALREADY (started),
 * ENOMEM, or another errno. */
GC_CLIENT_API GCT_INT gc_clients_init(GCT_INT mode);
/* Passive: runs the networking and the events due now. Hybrid: delivers
 * the queued events. Active: nothing. Never blocks. The number of events
 * delivered, or -1 before gc_clients_init. */
GC_CLIENT_API GCT_INT gc_clients_service(void);
/* Closes every connection (NORMAL, bounded by 5 s) and stops: the events
 * of those closes are delivered (Hybrid: from inside this call). */
GC_CLIENT_API void gc_clients_cleanup(void);

/* Starts connecting to application 'app_name' (GET /app_name; it may end
 * in "?query") at host:port and returns at once; 'events' and the strings
 * are copied. 0, EINVAL, ENOMEM, ESHUTDOWN (not started).
 * The handle arrives in on_client_connect. */
GC_CLIENT_API GCT_INT gc_client_start(GCT_INTPTR conn_user, GCT_INT proto,
                                      GCT_CSTR host, GCT_INT port,
                                      GCT_CSTR app_name,
                                      struct client_events *events);
/* Closes NORMAL: what was queued goes out, then a close frame;
 * on_client_disconnect follows. 0, or EINVAL (stale handle, closing). */
GC_CLIENT_API GCT_INT gc_client_stop(GCT_INTPTR client_handle);
/* Queues one binary message (copied); on_client_message_sent reports it. */
GC_CLIENT_API void gc_client_add_message(GCT_INTPTR client_handle, GCT_PTR data,
                                         GCT_SIZE len, GCT_INTPTR cookie);
/* One-shot timer: on_client_timer after 'ms'; <= 0 cancels. 0 or EINVAL. */
GC_CLIENT_API GCT_INT gc_client_set_timer(GCT_INTPTR client_handle, GCT_INT ms);

/* Before gc_clients_init: the level mask (GCL_*), the file (NULL: the
 * default "gc_client.%p.log", %p = the PID; "": no file) and GCL_* flags
 * (GCL_TO_STDERR copies the lines to stderr). */
GC_CLIENT_API void gc_log_setopt(GCT_INT level, GCT_CSTR file_name, GCT_INT flags);
/* One line at 'level' (after gc_clients_init). */
GC_CLIENT_API void gc_log_message(GCT_INT level, GCT_CSTR msg);

#ifdef __cplusplus
}
#endif

#endif /* GAME_CARRIER_CLIENT_H */
