/*
 * tls_record.h - baton's own TLS record layer: protects and opens the
 * records of an established connection once OpenSSL's handshake is over,
 * and runs the post-handshake protocol (alerts, KeyUpdate, tickets,
 * renegotiation refusals).
 *
 * Why: OpenSSL cannot export or import a connection's record state, so a
 * TLS connection could not move to the next generation.  With this layer
 * OpenSSL only does the handshake; every record after it, in every process,
 * goes through here.  The state is plain data (struct proxy_tlsrec minus
 * the two cipher contexts, which proxy_tlsrec_start derives), so it can be
 * written into a handoff message and rebuilt in another process.
 *
 * Carried: TLS 1.3 with TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384,
 * TLS_CHACHA20_POLY1305_SHA256; TLS 1.2 ECDHE (and DHE) with AES-GCM or
 * ChaCha20-Poly1305.  Anything else (CBC) stays on OpenSSL's record layer.
 *
 * Every function taking `why` writes a one-line reason there on failure;
 * no function logs, and no secret ever reaches `why`.
 */
#ifndef BATON_PROXY_TLS_RECORD_H
#define BATON_PROXY_TLS_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROXY_TLSREC_HDR        5
#define PROXY_TLSREC_PT_MAX     16384              /* plaintext per record */
#define PROXY_TLSREC_BODY_MAX   (16384 + 256)      /* largest TLS 1.3 record body accepted */
#define PROXY_TLSREC_SECRET_MAX 48
#define PROXY_TLSREC_KEY_MAX    32
#define PROXY_TLSREC_IV_LEN     12
#define PROXY_TLSREC_HS_MAX     65536              /* a post-handshake message split over records */
/* A full record with at most this much overhead over its plaintext
 * (header, TLS 1.2 explicit nonce, TLS 1.3 content type, tag). */
#define PROXY_TLSREC_OVERHEAD   (PROXY_TLSREC_HDR + 8 + 1 + 16)
/* TLS 1.3: our write key is renewed (KeyUpdate) after this many records,
 * far below the AES-GCM limit of RFC 8446 section 5.5 (2^24.5). */
#define PROXY_TLSREC_KU_RECORDS (1ull << 23)

enum proxy_tlsrec_role { PROXY_TLSREC_SERVER = 0, PROXY_TLSREC_CLIENT = 1 };

/* One direction.  Everything but ctx is plain data. */
struct proxy_tlsrec_dir {
    uint8_t  secret[PROXY_TLSREC_SECRET_MAX]; /* TLS 1.3: current application traffic secret */
    uint8_t  key[PROXY_TLSREC_KEY_MAX];       /* TLS 1.3: derived by proxy_tlsrec_start */
    uint8_t  iv[PROXY_TLSREC_IV_LEN];         /* TLS 1.2 GCM: the 4-byte salt, then zeros */
    uint64_t seq;                             /* the next record's sequence number */
    uint64_t nonce;                           /* TLS 1.2 GCM, writing: the next explicit nonce */
    void    *ctx;                             /* EVP_CIPHER_CTX, keyed; never crosses */
};

/* Output owed to the peer, sent before the next record and as soon as the
 * caller can write (proxy_tlsrec_flush_control). */
#define PROXY_TLSREC_F_KU_OWED      0x01u  /* KeyUpdate(update_not_requested), then a new write key */
#define PROXY_TLSREC_F_NORENEG_OWED 0x02u  /* warning alert no_renegotiation (TLS 1.2) */
#define PROXY_TLSREC_F_PEER_CLOSED  0x04u  /* close_notify received */
#define PROXY_TLSREC_F_CLOSE_SENT   0x08u  /* close_notify (or a fatal alert) sent: nothing more is sealed */
#define PROXY_TLSREC_F_KNOWN        0x0fu

struct proxy_tlsrec {
    uint16_t version;     /* 0x0304 (TLS 1.3) or 0x0303 (TLS 1.2) */
    uint16_t suite;       /* IANA cipher suite number, e.g. 0x1301, 0xc02b */
    uint8_t  role;        /* enum proxy_tlsrec_role: which post-handshake messages are valid */
    uint8_t  flags;       /* PROXY_TLSREC_F_* */
    uint16_t max_frag;    /* plaintext bytes per record sent: 512..16384 (max_fragment_length) */
    uint64_t ku_after;    /* TLS 1.3: proactive KeyUpdate when wr.seq reaches it; 0 = default */
    struct proxy_tlsrec_dir rd, wr;
    uint8_t *hs;          /* bytes of a post-handshake message not complete yet (malloc'd) */
    uint32_t hslen;
};

/* 1 if this layer can carry version+suite, 0 if not (the connection then
 * stays on OpenSSL's record layer and drains at upgrades). */
int proxy_tlsrec_suite_ok(uint16_t version, uint16_t suite);

/* The suite's key length, TLS 1.3 hash length / TLS 1.2 fixed IV length:
 * 0, or -1 if not carried. */
int proxy_tlsrec_suite_lengths(uint16_t version, uint16_t suite, size_t *key_len,
                               size_t *secret_len, size_t *fixed_iv_len);

/* RFC 8446 section 7.1 HKDF-Expand-Label with the suite's hash ("SHA256"
 * or "SHA384"): 0 or -1. */
int proxy_tlsrec_hkdf_expand_label(const char *md, const uint8_t *secret, size_t secret_len,
                                   const char *label, const uint8_t *context, size_t context_len,
                                   uint8_t *out, size_t out_len);

/* TLS 1.2 AEAD key block (RFC 5246 section 6.3; no MAC keys):
 * PRF(master, "key expansion", server_random + client_random) -> client
 * write key, server write key, client IV, server IV.  IVs are 4 bytes (GCM
 * salt) or 12 (ChaCha20).  0 or -1. */
int proxy_tlsrec_tls12_key_block(uint16_t suite, const uint8_t *master, size_t master_len,
                                 const uint8_t client_random[32], const uint8_t server_random[32],
                                 uint8_t *client_key, uint8_t *client_iv,
                                 uint8_t *server_key, uint8_t *server_iv);

/* Checks the plain fields (version, suite, role, flags, max_frag, seq
 * below 2^64-1, hslen) and that the suite's cipher is available.  Each
 * direction is keyed at its first record (TLS 1.3 derives key and iv from
 * its secret; TLS 1.2 uses key and iv as given), so an idle or just
 * adopted connection holds no cipher context.  Used after the handshake
 * and after a handoff alike.  0, or -1 with why (r is then freed with
 * proxy_tlsrec_free all the same). */
int proxy_tlsrec_start(struct proxy_tlsrec *r, char *why, size_t whylen);

/* Frees the contexts and hs, and cleanses every byte of r. */
void proxy_tlsrec_free(struct proxy_tlsrec *r);

/* The most bytes proxy_tlsrec_write can produce for len plaintext bytes
 * (owed control records and the split into max_frag records included). */
size_t proxy_tlsrec_write_bound(const struct proxy_tlsrec *r, size_t len);

/* Seals len bytes of application data into records of at most max_frag
 * bytes at out, preceded by any owed control record (and a proactive
 * KeyUpdate when due).  Bytes written, or -1 (why; cap too small, closed,
 * sequence exhausted, cipher failure). */
ssize_t proxy_tlsrec_write(struct proxy_tlsrec *r, const uint8_t *pt, size_t len,
                           uint8_t *out, size_t cap, char *why, size_t whylen);

/* Seals just the owed control records (KeyUpdate answer, no_renegotiation):
 * bytes written (0: nothing owed), or -1 (why). */
ssize_t proxy_tlsrec_flush_control(struct proxy_tlsrec *r, uint8_t *out, size_t cap,
                                   char *why, size_t whylen);

/* Seals an alert (level 1 warning / 2 fatal; description) - close_notify is
 * (1, 0).  Sets CLOSE_SENT for close_notify and fatal alerts; nothing is
 * sealed after it.  Bytes written, 0 if CLOSE_SENT was already set, -1. */
ssize_t proxy_tlsrec_alert(struct proxy_tlsrec *r, uint8_t level, uint8_t desc,
                           uint8_t *out, size_t cap, char *why, size_t whylen);

enum proxy_tlsrec_rc {
    PROXY_TLSREC_DATA = 0,   /* *pt, *ptlen: application data (may be empty) */
    PROXY_TLSREC_CONTROL,    /* a post-handshake record handled; maybe output owed */
    PROXY_TLSREC_CLOSED,     /* close_notify received */
    PROXY_TLSREC_FATAL       /* the connection must end; *alert to send (0: none, the
                                peer sent a fatal alert), why says what happened */
};

/* Opens one whole record (header included, as framed by the caller) in
 * place and acts on it. */
enum proxy_tlsrec_rc proxy_tlsrec_read(struct proxy_tlsrec *r, uint8_t *rec, size_t reclen,
                                       uint8_t **pt, size_t *ptlen, uint8_t *alert,
                                       char *why, size_t whylen);

/* TLS alert descriptions used here. */
#define PROXY_TLS_ALERT_CLOSE_NOTIFY        0
#define PROXY_TLS_ALERT_UNEXPECTED_MESSAGE  10
#define PROXY_TLS_ALERT_BAD_RECORD_MAC      20
#define PROXY_TLS_ALERT_RECORD_OVERFLOW     22
#define PROXY_TLS_ALERT_DECODE_ERROR        50
#define PROXY_TLS_ALERT_INTERNAL_ERROR      80
#define PROXY_TLS_ALERT_USER_CANCELED       90
#define PROXY_TLS_ALERT_NO_RENEGOTIATION    100

#endif
