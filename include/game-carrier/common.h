/*
 * game-carrier/common.h - types and constants shared by the server API
 * (server.h) and the client/S2S side: the GCT_* aliases, log levels,
 * protocols, statistics and the 'client_events' callback table.
 *
 * Source-compatible with the documented Game Carrier API; includes only libc
 * headers and never mentions a host type.
 */
#ifndef GAME_CARRIER_COMMON_H
#define GAME_CARRIER_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* API version of these headers (libuv's version.h scheme). */
#define GC_SERVER_API_VERSION_MAJOR 1
#define GC_SERVER_API_VERSION_MINOR 4
#define GC_SERVER_API_VERSION_PATCH 0
#define GC_SERVER_API_VERSION_HEX                                              \
  ((GC_SERVER_API_VERSION_MAJOR << 16) | (GC_SERVER_API_VERSION_MINOR << 8) |  \
   GC_SERVER_API_VERSION_PATCH)

/* Type aliases. The vendor never published them; these are our choices
 * (README, "The server API") and what every signature below uses. */
typedef int32_t GCT_INT;
typedef intptr_t GCT_INTPTR;
typedef void *GCT_PTR;
typedef const void *GCT_CPTR;
typedef const char *GCT_CSTR;
typedef size_t GCT_SIZE;
typedef int64_t GCT_COUNTER_VALUE;

/* Calling convention of core_api members and export attribute of adapter
 * events. Empty convention on every platform we build for. */
#ifndef GC_CORE_API
#define GC_CORE_API
#endif

#if defined(_WIN32)
#define GC_ADAPTER_EXPORT __declspec(dllexport)
#elif defined(__GNUC__)
#define GC_ADAPTER_EXPORT __attribute__((visibility("default")))
#else
#define GC_ADAPTER_EXPORT
#endif

#ifdef __cplusplus
#define GC_ADAPTER_EVENT extern "C" GC_ADAPTER_EXPORT
#else
#define GC_ADAPTER_EVENT GC_ADAPTER_EXPORT
#endif

#ifndef GC_CLIENT_API
#define GC_CLIENT_API
#endif

/* Protocols: 'pid' of on_connect, 'proto' of s2sCreate. */
#define GC_PROTOCOL_WSS 0
#define GC_PROTOCOL_WS 1

/* Client library modes (gc_clients_init). */
#define GC_MODE_PASSIVE 1
#define GC_MODE_ACTIVE 2
#define GC_MODE_HYBRID 3

/* Log levels: bit flags, ORed into masks; one of them per message. */
#define GCL_ERR 1
#define GCL_WARN 2
#define GCL_NOTICE 4
#define GCL_INFO 8
#define GCL_DEBUG 16
#define GCL_USER 1024
#define GCL_NORMAL (GCL_ERR | GCL_WARN | GCL_NOTICE | GCL_USER)
#define GCL_VERBOSE                                                            \
  (GCL_ERR | GCL_WARN | GCL_NOTICE | GCL_INFO | GCL_DEBUG | GCL_USER)

/* Log flags (gc_log_setopt). */
#define GCL_TO_STDERR 1
#define GCL_PRINT_THREAD_ID 2
#define GCL_AUTO_FLUSH 4
#define GCL_APPEND 8
#define GCL_STANDARD_FLAGS (GCL_TO_STDERR | GCL_AUTO_FLUSH)

/* Per-connection statistics (on_issue, connectionSetLimit). */
enum gc_conn_stats {
  GC_CONN_STAT_MSG_PER_SECOND = 1,
  GC_CONN_STAT_BYTES_PER_SECOND = 2,
  GC_CONN_STAT_MAX_MSG_SIZE = 3,
  GC_CONN_STAT_OUTPUT_QUEUE_SIZE = 4
};

/* Alarm levels of a statistic. */
enum gc_stat_status {
  GC_STAT_STATUS_GREEN = 0,
  GC_STAT_STATUS_YELLOW = 1,
  GC_STAT_STATUS_RED = 2
};

/* What on_issue asks the host to do about a YELLOW statistic. */
enum gc_stat_reaction {
  GC_STAT_REACTION_DEFAULT = 0,
  GC_STAT_REACTION_CLOSE = 1,
  GC_STAT_REACTION_IGNORE = 2,
  GC_STAT_REACTION_COUNT = 3
};

/* Callbacks of an outgoing (S2S or client library) connection. 'conn_user'
 * is the caller's value given when the connection was started. */
typedef void (*OnClientConnect)(GCT_INTPTR conn_user, GCT_INTPTR handle);
typedef void (*OnClientDisconnect)(GCT_INTPTR conn_user);
typedef void (*OnClientConnectionError)(GCT_INTPTR conn_user, GCT_CSTR reason);
typedef void (*OnClientMessage)(GCT_INTPTR conn_user, GCT_PTR data,
                                GCT_SIZE len);
typedef void (*OnClientMessageSent)(GCT_INTPTR conn_user, GCT_INTPTR cookie,
                                    GCT_SIZE len, int status);
typedef void (*OnClientTimer)(GCT_INTPTR conn_user);

typedef struct client_events {
  OnClientConnect on_client_connect;
  OnClientDisconnect on_client_disconnect;
  OnClientConnectionError on_client_connection_error;
  OnClientMessage on_client_message;
  OnClientMessageSent on_client_message_sent;
  OnClientTimer on_client_timer;
} ClientEvents;

#ifdef __cplusplus
}
#endif

#endif /* GAME_CARRIER_COMMON_H */
