/*
 * fuzz_decode.c - the typed handoff decoders as a table, each checked by
 * re-encoding what it decoded (see fuzz_decode.h).
 */
#include "fuzz_decode.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

/* Decoded values: large (STATUS and MASTER_STATE hold hundreds of KiB), so static. */
static union {
    struct handoff_hello         hello;
    struct handoff_config        config;
    struct handoff_listener      listener;
    struct handoff_failed        failed;
    struct handoff_status_req    status_req;
    struct handoff_ticket_keys   ticket_keys;
    struct handoff_master_state  master_state;
} v;
/* Lists own memory, so they stay out of the union: freed before each use. */
static struct handoff_status status;
static struct handoff_server_state server_state;

/* An encoder's answer when what was decoded cannot be re-encoded alone: a
 * part of a longer list (the lists are whole only with every part). */
#define ENC_PART 1

struct fuzz_decoder {
    uint16_t type;      /* what the decoder expects (HELLO for the mismatch entry) */
    int (*decode)(struct handoff_in *in, char *why, size_t n);
    /* Encodes v, as decoded from a message of `type`, again. */
    int (*encode)(struct handoff_msg *m, uint16_t type);
    /* Ends in extensions a reader may skip: re-encoding drops the skipped
     * ones, so the check is that it is stable (decode . encode is a fixed
     * point), not that it gives back the input. */
    int extensible;
};

#define TYPED(name)                                                               \
    static int dec_##name(struct handoff_in *in, char *why, size_t n)             \
    {                                                                             \
        return handoff_decode_##name(in, &v.name, why, n);                        \
    }                                                                             \
    static int enc_##name(struct handoff_msg *m, uint16_t type)                   \
    {                                                                             \
        (void)type;                                                               \
        return handoff_encode_##name(m, 1, &v.name);                              \
    }

TYPED(hello)
TYPED(config)
TYPED(listener)
TYPED(failed)
TYPED(status_req)
TYPED(ticket_keys)
TYPED(master_state)

/* STATUS and SERVER_STATE, in parts (caps with LIST_PARTS) or in the first
 * release's layout (caps 0). */
#define LISTED(caps, suffix)                                                      \
    static int dec_status##suffix(struct handoff_in *in, char *why, size_t n)     \
    {                                                                             \
        handoff_status_free(&status);                                             \
        return handoff_decode_status(in, &status, caps, why, n);                  \
    }                                                                             \
    static int enc_status##suffix(struct handoff_msg *m, uint16_t type)           \
    {                                                                             \
        (void)type;                                                               \
        if (!handoff_status_complete(&status) || handoff_status_parts(&status, caps) != 1) \
            return ENC_PART;                                                      \
        return handoff_encode_status(m, 1, &status, 0, caps);                     \
    }                                                                             \
    static int dec_server_state##suffix(struct handoff_in *in, char *why, size_t n) \
    {                                                                             \
        handoff_server_state_free(&server_state);                                 \
        return handoff_decode_server_state(in, &server_state, caps, why, n);      \
    }                                                                             \
    static int enc_server_state##suffix(struct handoff_msg *m, uint16_t type)     \
    {                                                                             \
        (void)type;                                                               \
        if (!handoff_server_state_complete(&server_state) ||                      \
            handoff_server_state_parts(&server_state, caps) != 1)                 \
            return ENC_PART;                                                      \
        return handoff_encode_server_state(m, 1, &server_state, 0, caps);         \
    }

LISTED(HANDOFF_CAPS_OURS, )
LISTED(0, _legacy)

static int dec_empty(struct handoff_in *in, char *why, size_t n)
{
    return handoff_decode_empty(in, why, n);
}

static int enc_empty(struct handoff_msg *m, uint16_t type)
{
    return handoff_encode_empty(m, type, 1);
}

static const struct fuzz_decoder decoders[] = {
    { HANDOFF_HELLO, dec_hello, enc_hello, 1 },
    { HANDOFF_CONFIG, dec_config, enc_config, 0 },
    { HANDOFF_LISTENER, dec_listener, enc_listener, 0 },
    { HANDOFF_FAILED, dec_failed, enc_failed, 0 },
    { HANDOFF_STATUS_REQ, dec_status_req, enc_status_req, 0 },
    { HANDOFF_STATUS, dec_status, enc_status, 1 },   /* adopted, orphans, handed_over */
    { HANDOFF_TICKET_KEYS, dec_ticket_keys, enc_ticket_keys, 0 },
    { HANDOFF_SERVER_STATE, dec_server_state, enc_server_state, 0 },
    { HANDOFF_MASTER_STATE, dec_master_state, enc_master_state, 1 },
    { HANDOFF_START, dec_empty, enc_empty, 0 },
    { HANDOFF_READY, dec_empty, enc_empty, 0 },
    { HANDOFF_STOP_ACCEPTING, dec_empty, enc_empty, 0 },
    { HANDOFF_DRAIN, dec_empty, enc_empty, 0 },
    { HANDOFF_RESUME_ACCEPTING, dec_empty, enc_empty, 0 },
    /* What a peer of the first release sends. */
    { HANDOFF_STATUS, dec_status_legacy, enc_status_legacy, 0 },
    { HANDOFF_SERVER_STATE, dec_server_state_legacy, enc_server_state_legacy, 0 },
    /* Last: the empty decoder given a type that is not empty. */
    { HANDOFF_HELLO, dec_empty, enc_empty, 0 },
};

const unsigned fuzz_ndecoders = sizeof(decoders) / sizeof(decoders[0]);

const struct fuzz_decoder *fuzz_decoder_at(unsigned i)
{
    return i < fuzz_ndecoders ? &decoders[i] : NULL;
}

uint16_t fuzz_decoder_type(const struct fuzz_decoder *d)
{
    return d->type;
}

const struct fuzz_decoder *fuzz_decoder_for(uint16_t type)
{
    /* Not the last entry: that one pairs a type with the wrong decoder. */
    for (unsigned i = 0; i + 1 < fuzz_ndecoders; i++)
        if (decoders[i].type == type)
            return &decoders[i];
    return NULL;
}

/* Decoding what d encoded from in and encoding it again changes nothing. */
static void check_stable(const struct fuzz_decoder *d, struct handoff_in *in,
                         const struct handoff_msg *m)
{
    struct handoff_in again = { .hdr = in->hdr };
    struct handoff_msg m2;
    char why[1024] = "";

    for (unsigned i = 0; i < HANDOFF_MAX_FDS; i++)
        again.fds[i] = -1;
    again.hdr.len = (uint32_t)(m->len - HANDOFF_HDR_LEN);
    again.payload = malloc(again.hdr.len + 1);
    FUZZ_ASSERT(again.payload != NULL);
    memcpy(again.payload, m->buf + HANDOFF_HDR_LEN, again.hdr.len);
    FUZZ_ASSERT(d->decode(&again, why, sizeof(why)) == 0);
    FUZZ_ASSERT(d->encode(&m2, again.hdr.type) == 0);
    FUZZ_ASSERT(m2.len == m->len && memcmp(m2.buf, m->buf, m->len) == 0);
    handoff_msg_free(&m2);
    handoff_in_free(&again);
}

int fuzz_decode_check(const struct fuzz_decoder *d, struct handoff_in *in)
{
    struct handoff_msg m;
    char why[1024] = "";
    int rc = d->decode(in, why, sizeof(why)), enc;

    if (rc != 0) {
        FUZZ_ASSERT(rc == -1);
        FUZZ_ASSERT(why[0] != '\0');
        return rc;
    }
    FUZZ_ASSERT(in->hdr.type == d->type || d->decode == dec_empty);
    enc = d->encode(&m, in->hdr.type);
    if (enc == ENC_PART)
        return rc;
    FUZZ_ASSERT(enc == 0);
    if (d->extensible) {
        FUZZ_ASSERT(m.nfds == in->nfds);
        check_stable(d, in, &m);
    } else {
        FUZZ_ASSERT(m.len == HANDOFF_HDR_LEN + in->hdr.len && m.nfds == in->nfds);
        FUZZ_ASSERT(in->hdr.len == 0 ||
                    memcmp(m.buf + HANDOFF_HDR_LEN, in->payload, in->hdr.len) == 0);
    }
    handoff_msg_free(&m);
    /* The listener decoder takes the descriptor: it is the caller's now. */
    if (d->decode == dec_listener) {
        FUZZ_ASSERT(v.listener.fd >= 0 && in->fds[0] == -1);
        close(v.listener.fd);
    }
    return rc;
}
