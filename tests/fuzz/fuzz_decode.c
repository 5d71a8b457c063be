/*
 * fuzz_decode.c - the typed handoff decoders as a table, each checked by
 * re-encoding what it decoded (see fuzz_decode.h).
 */
#include "fuzz_decode.h"

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
    struct handoff_status        status;
    struct handoff_ticket_keys   ticket_keys;
    struct handoff_server_state  server_state;
    struct handoff_master_state  master_state;
} v;

struct fuzz_decoder {
    uint16_t type;      /* what the decoder expects (HELLO for the mismatch entry) */
    int (*decode)(struct handoff_in *in, char *why, size_t n);
    /* Encodes v, as decoded from a message of `type`, again. */
    int (*encode)(struct handoff_msg *m, uint16_t type);
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
TYPED(status)
TYPED(ticket_keys)
TYPED(server_state)
TYPED(master_state)

static int dec_empty(struct handoff_in *in, char *why, size_t n)
{
    return handoff_decode_empty(in, why, n);
}

static int enc_empty(struct handoff_msg *m, uint16_t type)
{
    return handoff_encode_empty(m, type, 1);
}

static const struct fuzz_decoder decoders[] = {
    { HANDOFF_HELLO, dec_hello, enc_hello },
    { HANDOFF_CONFIG, dec_config, enc_config },
    { HANDOFF_LISTENER, dec_listener, enc_listener },
    { HANDOFF_FAILED, dec_failed, enc_failed },
    { HANDOFF_STATUS_REQ, dec_status_req, enc_status_req },
    { HANDOFF_STATUS, dec_status, enc_status },
    { HANDOFF_TICKET_KEYS, dec_ticket_keys, enc_ticket_keys },
    { HANDOFF_SERVER_STATE, dec_server_state, enc_server_state },
    { HANDOFF_MASTER_STATE, dec_master_state, enc_master_state },
    { HANDOFF_START, dec_empty, enc_empty },
    { HANDOFF_READY, dec_empty, enc_empty },
    { HANDOFF_STOP_ACCEPTING, dec_empty, enc_empty },
    { HANDOFF_DRAIN, dec_empty, enc_empty },
    { HANDOFF_RESUME_ACCEPTING, dec_empty, enc_empty },
    /* Last: the empty decoder given a type that is not empty. */
    { HANDOFF_HELLO, dec_empty, enc_empty },
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

int fuzz_decode_check(const struct fuzz_decoder *d, struct handoff_in *in)
{
    struct handoff_msg m;
    char why[1024] = "";
    int rc = d->decode(in, why, sizeof(why));

    if (rc != 0) {
        FUZZ_ASSERT(rc == -1);
        FUZZ_ASSERT(why[0] != '\0');
        return rc;
    }
    FUZZ_ASSERT(in->hdr.type == d->type || d->decode == dec_empty);
    FUZZ_ASSERT(d->encode(&m, in->hdr.type) == 0);
    FUZZ_ASSERT(m.len == HANDOFF_HDR_LEN + in->hdr.len && m.nfds == in->nfds);
    FUZZ_ASSERT(in->hdr.len == 0 ||
                memcmp(m.buf + HANDOFF_HDR_LEN, in->payload, in->hdr.len) == 0);
    handoff_msg_free(&m);
    /* The listener decoder takes the descriptor: it is the caller's now. */
    if (d->decode == dec_listener) {
        FUZZ_ASSERT(v.listener.fd >= 0 && in->fds[0] == -1);
        close(v.listener.fd);
    }
    return rc;
}
