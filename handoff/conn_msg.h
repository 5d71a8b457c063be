/*
 * conn_msg.h - the messages of live connection handoff.
 *
 * After a reload commits, the master creates one socketpair per event loop
 * of the old worker and sends each end in a LINK message: the GIVE end to
 * the old worker (for its loop `index`), the TAKE end to the new one.  On a
 * link, connection state flows worker to worker, never through the master:
 *
 *   taker -> giver  CONN_ACK  credits (how many more CONN it may send) and
 *                             the result for each CONN received so far
 *   giver -> taker  CONN      one connection: its state and its sockets
 *   giver -> taker  CONN_RELEASE  the giver let these adopted connections go
 *   giver -> taker  CONN_DONE nothing more will come on this link
 *
 * The taker grants credits first; every CONN spends one.  The giver touches
 * a connection's sockets for the last time when it freezes it and closes
 * them only once its CONN is acknowledged as adopted, then releases it; the
 * taker arms a connection only once released, so after its acknowledgement
 * was written and read.  A refused or unacknowledged connection (the taker
 * died, hung, or refused) stays with the giver, re-armed as it was; one the
 * taker adopted but never saw released (the giver timed out and took it
 * back, or died) is forgotten by the taker.
 *
 * Sent only to a worker whose capabilities include HANDOFF_CAP_CONNS.
 */
#ifndef BATON_HANDOFF_CONN_MSG_H
#define BATON_HANDOFF_CONN_MSG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "message.h"

#define HANDOFF_CONN_TRIED_MAX 17
#define HANDOFF_SNI_MAX        256
#define HANDOFF_SOCKADDR_MAX   128
#define HANDOFF_PENDING_MAX    (1u << 20)   /* bytes pending in one direction */

enum handoff_link_role { HANDOFF_LINK_GIVE = 1, HANDOFF_LINK_TAKE = 2 };

/* LINK: master -> worker; 1 descriptor (the link's end). */
struct handoff_link {
    uint32_t role;           /* enum handoff_link_role */
    uint32_t peer_gen;       /* the generation at the other end */
    uint32_t index;          /* the giver's loop */
    uint32_t count;          /* links of this handoff (the giver's loops) */
    int      fd;
    uint32_t peer_caps;      /* HANDOFF_CAP_* of the other end (0: not said) */
    pid_t    peer_pid;       /* the other end's worker (0: not said); a transport
                                that duplicates handles per process needs it */
};

/* Where a connection was when it was frozen. */
enum handoff_conn_phase {
    HANDOFF_PHASE_RELAYING = 1,
    HANDOFF_PHASE_PROXY_HEADER,    /* bytes of a PROXY header so far in prefix */
    HANDOFF_PHASE_CLIENT_HELLO,    /* bytes of a ClientHello so far in prefix */
    HANDOFF_PHASE_CONNECTING,      /* the server socket is connecting */
    /* HANDOFF_CAP_TLS only: */
    HANDOFF_PHASE_TLS_HELLO,       /* tls = on: the client's first record so far in
                                      prefix, nothing answered yet */
    HANDOFF_PHASE_CONNECT          /* no server socket: connect now (an upstream TLS
                                      handshake in progress starts over) */
};
#define HANDOFF_PHASE_MAX HANDOFF_PHASE_CONNECT

/* Events armed when the connection was frozen. */
#define HANDOFF_ARMED_CLIENT_READ    0x1u
#define HANDOFF_ARMED_CLIENT_WRITE   0x2u
#define HANDOFF_ARMED_SERVER_READ    0x4u
#define HANDOFF_ARMED_SERVER_WRITE   0x8u

#define HANDOFF_CONN_F_CONNECTED     0x1u   /* the server connection is established */
#define HANDOFF_CONN_F_CLIENT_FIN    0x2u   /* the poller saw the client's FIN */
#define HANDOFF_CONN_F_SERVER_FIN    0x4u

#define HANDOFF_DIR_EOF   0x1u   /* the source sent FIN */
#define HANDOFF_DIR_SHUT  0x2u   /* FIN passed on to the destination */
#define HANDOFF_DIR_BULK  0x4u   /* a read filled the whole buffer */

#define HANDOFF_TLS_SECRET_MAX  48
#define HANDOFF_TLS_KEY_MAX     32
#define HANDOFF_TLS_IV_LEN      12
#define HANDOFF_TLS_HS_MAX      65536
#define HANDOFF_TLS_SUBJECT_MAX 1024

/* One direction of a TLS side's record protection. */
struct handoff_tls_dir {
    uint8_t  secret[HANDOFF_TLS_SECRET_MAX];   /* TLS 1.3 traffic secret */
    uint8_t  key[HANDOFF_TLS_KEY_MAX];         /* TLS 1.2 key */
    uint8_t  iv[HANDOFF_TLS_IV_LEN];           /* TLS 1.2 IV / GCM salt */
    uint64_t seq;
    uint64_t nonce;                            /* TLS 1.2 GCM: next explicit nonce */
};

/*
 * A TLS side (the client's, terminated; or the server's, upstream TLS) on
 * baton's record layer: what proxy/tls_record.h holds, the bytes in its
 * buffers, and the handshake's facts.  Secrets: the encoder's and the
 * decoder's buffers are cleansed when freed.
 */
struct handoff_tls {
    uint32_t version;            /* 0x0304, 0x0303 */
    uint32_t suite;
    uint32_t role;               /* 0 server, 1 client */
    uint32_t flags;              /* the record layer's */
    uint32_t max_frag;
    uint64_t ku_after;
    struct handoff_tls_dir rd, wr;
    const uint8_t *hs;           /* a post-handshake message begun */
    uint32_t hslen;
    const uint8_t *plain_in;     /* opened, not read yet */
    uint32_t nplain_in;
    const uint8_t *raw_in;       /* received, not opened yet: whole records, then
                                    the start of one */
    uint32_t nraw_in;
    const uint8_t *raw_out;      /* sealed, not sent yet (goes out first) */
    uint32_t nraw_out;
    uint64_t raw_bytes_in;       /* bytes received in all */
    char     version_name[16];   /* the facts the logs use */
    char     cipher[64];
    uint32_t resumed;
    char     subject[HANDOFF_TLS_SUBJECT_MAX];   /* "" none */
};

/* One direction: relayed byte count and the bytes still to deliver. */
struct handoff_conn_dir {
    uint64_t       bytes;
    uint32_t       flags;        /* HANDOFF_DIR_* */
    const uint8_t *pending;
    uint32_t       npending;
};

/*
 * CONN: giver -> taker; 2 descriptors (client, server) or 1 (client) when
 * there is no server socket yet.  Times are CLOCK_MONOTONIC milliseconds,
 * which every process of the machine shares.  Listener, backend and
 * servers go by name: the taker resolves them in its own configuration.
 * Pointers point into the received payload (decode) or the giver's
 * buffers (encode).
 */
struct handoff_conn {
    uint32_t id;                 /* the giver's, echoed in CONN_ACK */
    uint32_t phase;              /* enum handoff_conn_phase */
    uint32_t armed;              /* HANDOFF_ARMED_* */
    uint32_t flags;              /* HANDOFF_CONN_F_* */
    uint32_t handoffs;           /* generations it moved through before this one */
    uint32_t idle_timeout_ms;    /* its listener's, for an orphan */
    uint64_t start_ms, last_ms;  /* accepted; last byte relayed */
    uint64_t deadline_ms;        /* connect/setup deadline, 0 if none */
    uint8_t  peer[HANDOFF_SOCKADDR_MAX];   /* client (as rewritten by a PROXY header) */
    uint32_t peerlen;
    uint8_t  local[HANDOFF_SOCKADDR_MAX];  /* its destination, from a PROXY header; 0: none */
    uint32_t locallen;
    char     listener[HANDOFF_NAME_MAX];
    char     backend[HANDOFF_NAME_MAX];    /* "" before routing */
    char     server[HANDOFF_NAME_MAX];     /* "" before connecting */
    uint32_t ntried;
    char     tried[HANDOFF_CONN_TRIED_MAX][HANDOFF_NAME_MAX];
    char     sni[HANDOFF_SNI_MAX];
    char     alpn[HANDOFF_SNI_MAX];
    struct handoff_conn_dir up, down;      /* client -> server, server -> client */
    const uint8_t *prefix;       /* client bytes read, not yet passed on */
    uint32_t prefixlen;
    int      client_fd, server_fd;         /* server_fd -1: none */
    /* HANDOFF_CAP_TLS: the TLS sides, if any (extensions the taker must
     * understand). */
    unsigned has_client_tls:1, has_server_tls:1;
    struct handoff_tls client_tls, server_tls;
};

/* What the taker did with one CONN. */
enum handoff_conn_result { HANDOFF_CONN_ADOPTED = 0, HANDOFF_CONN_REFUSED = 1 };

#define HANDOFF_ACK_MAX 4096

struct handoff_conn_ack {
    uint32_t credits;            /* more CONN the giver may send */
    uint32_t n;
    struct { uint32_t id, result; } results[HANDOFF_ACK_MAX];
};

struct handoff_conn_release {
    uint32_t n;
    uint32_t ids[HANDOFF_ACK_MAX];
};

struct handoff_conn_done {
    uint32_t sent;               /* CONN messages sent on this link */
};

int handoff_encode_link(struct handoff_msg *m, uint32_t seq, const struct handoff_link *v);
int handoff_decode_link(struct handoff_in *in, struct handoff_link *v, char *why, size_t n);
int handoff_encode_conn(struct handoff_msg *m, uint32_t seq, const struct handoff_conn *v);
/* v's pointers point into in->payload; the descriptors are taken. */
int handoff_decode_conn(struct handoff_in *in, struct handoff_conn *v, char *why, size_t n);
int handoff_encode_conn_ack(struct handoff_msg *m, uint32_t seq, const struct handoff_conn_ack *v);
int handoff_decode_conn_ack(struct handoff_in *in, struct handoff_conn_ack *v, char *why,
                            size_t n);
int handoff_encode_conn_release(struct handoff_msg *m, uint32_t seq,
                                const struct handoff_conn_release *v);
int handoff_decode_conn_release(struct handoff_in *in, struct handoff_conn_release *v,
                                char *why, size_t n);
int handoff_encode_conn_done(struct handoff_msg *m, uint32_t seq,
                             const struct handoff_conn_done *v);
int handoff_decode_conn_done(struct handoff_in *in, struct handoff_conn_done *v, char *why,
                             size_t n);

#endif
