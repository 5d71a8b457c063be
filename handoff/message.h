/*
 * message.h - typed handoff messages: one struct per message type, one
 * encoder and one decoder each.  Decoders check every field and that the
 * payload holds exactly the message (no trailing bytes), and report what
 * was wrong in `why`.
 */
#ifndef BATON_HANDOFF_MESSAGE_H
#define BATON_HANDOFF_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define HANDOFF_NAME_MAX    64
#define HANDOFF_ADDR_MAX    80
#define HANDOFF_REASON_MAX  512
#define HANDOFF_VERSION_MAX 64

/*
 * Lists that can outgrow one message (servers' health, listeners' figures)
 * are sent in parts: part 0, 1, ... each hold the next HANDOFF_PART_*
 * entries of every list in the message (the last part the rest), and say
 * how long each whole list is.  A receiver adds the parts up in order and
 * has the lists once every entry arrived.  A list holds at most
 * HANDOFF_LIST_MAX entries: more servers or listeners than a configuration
 * file of CONF_TEXT_MAX bytes can name (master.c checks this at compile time).
 */
#define HANDOFF_LIST_MAX       (1u << 20)
#define HANDOFF_PART_SERVERS   1024   /* server entries in one message */
#define HANDOFF_PART_LISTENERS 256    /* listener entries in one message */

/*
 * Capabilities: what a side understands beyond the first release's
 * protocol.  A master offers its own to a new worker in the environment
 * (HANDOFF_CAPS_ENV, read before any message); a worker that finds them
 * answers with its own in HELLO (an older master would refuse the extra
 * field, so it is sent only when offered).  Each side then uses only what
 * both have: an older peer gets exactly the layouts it knows.
 */
#define HANDOFF_CAP_LIST_PARTS 0x1u   /* STATUS and SERVER_STATE lists in parts */
/* Skips a message of a type it does not know and refuses one flagged
 * HANDOFF_HDR_MUST_UNDERSTAND (wire.h); reserved header flags ignored.
 * Without it, a peer gets no type it may not know and no header flag. */
#define HANDOFF_CAP_UNKNOWN_TYPES 0x2u
#define HANDOFF_CAP_CONNS      0x4u   /* live connection handoff (conn_msg.h) */
/* TLS connections move too: CONN carries TLS record state, LINK the
 * taker's capabilities (conn_msg.h). */
#define HANDOFF_CAP_TLS        0x8u
/* Acknowledges handed handles (HANDOFF_HDR_ACK_HANDLES, HANDLE_ACK): the
 * channel then keeps a handle it gave open until the peer holds its own
 * (channel.h).  Every Windows build has it. */
#define HANDOFF_CAP_HANDLE_ACK 0x10u
/* Reads up to HANDOFF_RECV_FDS handles in one receive, so that a sender
 * whose transport can may put several messages and their handles in one
 * send (HANDOFF_BATCH_FDS; channel.h).  An older reader makes room for one
 * message's handles only. */
#define HANDOFF_CAP_FD_BATCH   0x20u
#define HANDOFF_CAPS_OURS      (HANDOFF_CAP_LIST_PARTS | HANDOFF_CAP_UNKNOWN_TYPES | \
                                HANDOFF_CAP_CONNS | HANDOFF_CAP_TLS | HANDOFF_CAP_HANDLE_ACK | \
                                HANDOFF_CAP_FD_BATCH)
#define HANDOFF_CAPS_ENV       "BATON_HANDOFF_CAPS"
/* What the first release's STATUS and SERVER_STATE could hold. */
#define HANDOFF_LEGACY_LISTENERS 256
#define HANDOFF_LEGACY_SERVERS   1024

struct handoff_hello {
    uint32_t pid;
    char     version[HANDOFF_VERSION_MAX];   /* baton version of the sender */
    int      has_caps;                       /* the worker answers an offer */
    uint32_t caps;
    /* Decoding: extensions this binary does not know, skipped (the first
     * one's tag), so the receiver can say so. */
    uint32_t unknown_exts;
    uint16_t unknown_tag;
};

struct handoff_config {
    uint32_t       generation;
    char           path[1024];
    const uint8_t *text;      /* points into the received payload (decode) */
    uint32_t       textlen;
};

struct handoff_listener {
    char name[HANDOFF_NAME_MAX];
    char addr[HANDOFF_ADDR_MAX];   /* configured address, e.g. "127.0.0.1:0" */
    int  fd;                       /* attached descriptor (taken from the message) */
};

struct handoff_failed {
    char reason[HANDOFF_REASON_MAX];
};

#define HANDOFF_TICKET_KEY_LEN  80
#define HANDOFF_TICKET_KEYS_MAX 3

struct handoff_ticket_keys {
    uint32_t n;
    uint8_t  keys[HANDOFF_TICKET_KEYS_MAX][HANDOFF_TICKET_KEY_LEN];
};

/* One server's health, by backend and server name. */
struct handoff_server_health {
    char     backend[HANDOFF_NAME_MAX];
    char     server[HANDOFF_NAME_MAX];
    uint32_t down;
    uint64_t active;
    uint64_t total;
    uint64_t failures;
};

/* Servers' health: the whole list to encode, or the parts received so far.
 * Start from all zeroes; handoff_server_state_free empties it again. */
struct handoff_server_state {
    uint32_t nservers;                      /* entries in servers[] */
    uint32_t total;                         /* decoding: entries of the whole list */
    uint32_t parts;                         /* decoding: parts added so far */
    struct handoff_server_health *servers;  /* malloc'd */
};

struct handoff_status_req {
    uint32_t id;
};

/* HANDLE_ACK: the channel's own answer (channel.h). */
struct handoff_handle_ack {
    uint32_t messages;       /* HANDOFF_HDR_ACK_HANDLES messages taken since the last */
};

struct handoff_listener_stats {
    char     name[HANDOFF_NAME_MAX];
    uint64_t active;
    uint64_t total;
};

/* A worker's figures, in parts like SERVER_STATE (servers.parts counts the
 * STATUS parts).  Start from all zeroes; handoff_status_free empties it. */
struct handoff_status {
    uint32_t id;
    uint32_t pid;
    uint64_t active;          /* open client connections */
    uint64_t total;           /* accepted since start */
    uint64_t bytes_in;        /* client -> server */
    uint64_t bytes_out;       /* server -> client */
    uint64_t tls_failures;    /* failed client TLS handshakes */
    uint64_t adopted;         /* connections taken from the previous generation */
    uint64_t orphans;         /* of them, whose listener, backend or server is gone */
    uint64_t handed_over;     /* connections given to the next generation */
    uint32_t nlisteners;                        /* entries in listeners[] */
    uint32_t listeners_total;                   /* decoding: of the whole list */
    struct handoff_listener_stats *listeners;   /* malloc'd */
    struct handoff_server_state servers;
};

/*
 * MASTER_STATE: what a master carries across execve() of a new binary.
 * After the fixed fields come extensions: u16 tag, u16 flags, bytes body.
 * A reader skips a tag it does not know unless its flags say it must be
 * understood; a known tag's body never changes layout (a new field gets a
 * new tag), so older and newer binaries can resume each other.
 * The descriptors are plain numbers (same process, kept open across exec),
 * not attached.  Layouts of the running configuration are not carried:
 * the new image parses the configuration text itself.
 */
#define HANDOFF_STATE_SOCKS_MAX 1024
#define HANDOFF_STATE_GENS_MAX  64

struct handoff_state_sock {
    char    name[HANDOFF_NAME_MAX];
    char    addr[HANDOFF_ADDR_MAX];   /* configured address */
    int32_t fd;
};

struct handoff_state_gen {
    uint32_t       id;
    uint32_t       pid;
    uint32_t       state;             /* master's generation state */
    uint32_t       seq;               /* next sequence number on its channel */
    int32_t        fd;                /* channel */
    uint64_t       started_ms;
    char           version[HANDOFF_VERSION_MAX];
    const uint8_t *pending;           /* received, not yet parsed bytes */
    uint32_t       npending;
    uint64_t       drain_deadline_ms; /* CLOCK_MONOTONIC; 0: none (or not carried) */
    uint32_t       caps;              /* negotiated with this worker (0: not carried) */
};

struct handoff_master_state {
    uint64_t       start_ms;          /* CLOCK_MONOTONIC, valid across exec */
    uint32_t       last_gen;
    uint32_t       status_seq;
    int32_t        ctl_fd;            /* control socket, listening */
    int32_t        reply_fd;          /* control client awaiting the reload result, or -1 */
    char           reply[HANDOFF_REASON_MAX]; /* what to tell it */
    char           path[1024];
    const uint8_t *text;              /* running configuration */
    uint32_t       textlen;
    uint32_t       nsocks;
    struct handoff_state_sock socks[HANDOFF_STATE_SOCKS_MAX];
    uint32_t       ngens;
    struct handoff_state_gen  gens[HANDOFF_STATE_GENS_MAX];
    struct handoff_ticket_keys tickets;
    /* Carried in extensions (a sender that predates them leaves these empty). */
    char           exe[HANDOFF_STR_MAX]; /* where new binaries are installed; "" if not said */
    int32_t        image_fd;          /* the executable the new image was exec'd from, or -1 */
};

/* Each encoder fills a fresh message (handoff_msg_init done inside); the
 * caller sends and frees it.  Returns 0 or -1 (out of memory / too big). */
int handoff_encode_hello(struct handoff_msg *m, uint32_t seq, const struct handoff_hello *v);
int handoff_encode_config(struct handoff_msg *m, uint32_t seq, const struct handoff_config *v);
int handoff_encode_listener(struct handoff_msg *m, uint32_t seq, const struct handoff_listener *v);
int handoff_encode_failed(struct handoff_msg *m, uint32_t seq, const struct handoff_failed *v);
int handoff_encode_status_req(struct handoff_msg *m, uint32_t seq, const struct handoff_status_req *v);
int handoff_encode_handle_ack(struct handoff_msg *m, uint32_t seq,
                              const struct handoff_handle_ack *v);
/* STATUS and SERVER_STATE: part `part` (0 to ..._parts() - 1) of v's lists,
 * in the layout the capabilities `caps` (negotiated with the receiver) allow:
 * without HANDOFF_CAP_LIST_PARTS, the first release's single message that
 * holds the first HANDOFF_LEGACY_* entries of each list. */
int handoff_encode_status(struct handoff_msg *m, uint32_t seq, const struct handoff_status *v,
                          uint32_t part, uint32_t caps);
/* START, READY, STOP_ACCEPTING, DRAIN, RESUME_ACCEPTING carry no payload. */
int handoff_encode_empty(struct handoff_msg *m, uint16_t type, uint32_t seq);
int handoff_encode_ticket_keys(struct handoff_msg *m, uint32_t seq,
                               const struct handoff_ticket_keys *v);
int handoff_encode_server_state(struct handoff_msg *m, uint32_t seq,
                                const struct handoff_server_state *v, uint32_t part,
                                uint32_t caps);
uint32_t handoff_status_parts(const struct handoff_status *v, uint32_t caps);
uint32_t handoff_server_state_parts(const struct handoff_server_state *v, uint32_t caps);
int handoff_encode_master_state(struct handoff_msg *m, uint32_t seq,
                                const struct handoff_master_state *v);

/* A received message: header, payload and attached fds (owned). */
struct handoff_in {
    struct handoff_hdr hdr;
    uint8_t           *payload;
    int                fds[HANDOFF_MAX_FDS];   /* -1: taken, or never arrived */
    unsigned           nfds;
    int                fds_lost;     /* the receiver could not take its descriptors */
};
void handoff_in_free(struct handoff_in *in);   /* closes fds not taken (handoff_transport_close) */

/* Decoders: 0 on success, -1 with why set.  A decoder that takes an fd sets
 * the message's slot to -1 so handoff_in_free won't close it. */
int handoff_decode_hello(struct handoff_in *in, struct handoff_hello *v, char *why, size_t n);
int handoff_decode_config(struct handoff_in *in, struct handoff_config *v, char *why, size_t n);
int handoff_decode_listener(struct handoff_in *in, struct handoff_listener *v, char *why, size_t n);
int handoff_decode_failed(struct handoff_in *in, struct handoff_failed *v, char *why, size_t n);
int handoff_decode_status_req(struct handoff_in *in, struct handoff_status_req *v, char *why, size_t n);
int handoff_decode_handle_ack(struct handoff_in *in, struct handoff_handle_ack *v, char *why,
                              size_t n);
/* STATUS and SERVER_STATE add a part to v: part 0 starts v afresh, any other
 * must be the next part of the same lists.  A part whose list this receiver
 * never saw start (a master that re-executed itself in between) is checked
 * and skipped: 0, v empty.  On failure v is emptied.  The lists are whole
 * when ..._complete() says so. */
int handoff_decode_status(struct handoff_in *in, struct handoff_status *v, uint32_t caps,
                          char *why, size_t n);
int handoff_decode_empty(struct handoff_in *in, char *why, size_t n);
int handoff_decode_ticket_keys(struct handoff_in *in, struct handoff_ticket_keys *v,
                               char *why, size_t n);
int handoff_decode_server_state(struct handoff_in *in, struct handoff_server_state *v,
                                uint32_t caps, char *why, size_t n);
int  handoff_status_complete(const struct handoff_status *v);
int  handoff_server_state_complete(const struct handoff_server_state *v);
void handoff_status_free(struct handoff_status *v);              /* the lists, not v */
void handoff_server_state_free(struct handoff_server_state *v);
/* Pointers in *v point into in->payload. */
int handoff_decode_master_state(struct handoff_in *in, struct handoff_master_state *v,
                                char *why, size_t n);

#endif
