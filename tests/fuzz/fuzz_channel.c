/*
 * fuzz_channel.c - framing and reassembly of handoff/channel.c: a byte
 * stream arriving in arbitrary pieces, with descriptors already queued, cut
 * into messages that go to the decoder of their type, as the master and the
 * workers do.  No socket is needed: bytes enter through
 * handoff_channel_inject, descriptors through the channel's queue, which is
 * where handoff_channel_read puts what the transport received.
 *
 * Input: [split][descriptors][stream]
 *   split        chunk sizes the stream arrives in (see fuzz_splitter)
 *   descriptors  how many descriptors are queued (mod 41); the rest of the
 *                byte (/ 41, 0..6): bit 0, the peer sends batches
 *                (HANDOFF_CAP_FD_BATCH: HANDOFF_HDR_HANDLES_FIRST counts);
 *                above it, 1..3: a HANDOFF_FD_LOST stands in the queue a
 *                quarter, a half or three quarters of the way (the
 *                transport could not install the rest of a send's)
 *
 * Properties: what comes out (messages, decoder results, the error that
 * ends the stream and its reason) does not depend on how the stream was
 * split; a stream that ends inside a message is an error; every descriptor
 * is closed exactly once, whether a message took it or the channel did.
 */
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "fuzz.h"
#include "fuzz_decode.h"
#include "transport.h"

#define FDS_MAX 40

/* FNV-1a over everything observable, to compare two runs. */
static void mix(uint64_t *h, const void *p, size_t n)
{
    const uint8_t *b = p;

    for (size_t i = 0; i < n; i++)
        *h = (*h ^ b[i]) * 0x100000001b3ull;
}

/* Takes every complete message; returns next()'s last result (0 or -1). */
static int drain(struct handoff_channel *ch, uint64_t *h, unsigned *count)
{
    struct handoff_in in;
    char why[512];
    int r, rc;

    while ((r = handoff_channel_next(ch, &in, why, sizeof(why))) == 1) {
        const struct fuzz_decoder *d = fuzz_decoder_for(in.hdr.type);

        mix(h, &in.hdr, sizeof(in.hdr));
        mix(h, &in.nfds, sizeof(in.nfds));
        if (in.hdr.len > 0)
            mix(h, in.payload, in.hdr.len);
        rc = d != NULL ? fuzz_decode_check(d, &in) : 1;
        mix(h, &rc, sizeof(rc));
        handoff_in_free(&in);
        (*count)++;
    }
    if (r == -1) {
        FUZZ_ASSERT(why[0] != '\0');
        mix(h, why, strlen(why));
    }
    return r;
}

/* Feeds stream in pieces and then EOF; returns a digest of what came out. */
static uint64_t run(const uint8_t *stream, size_t len, uint8_t split, unsigned nfds,
                    unsigned mode, unsigned *count)
{
    unsigned lost = mode / 2 > 0 ? nfds * (mode / 2) / 4 : FDS_MAX + 1;
    struct handoff_channel ch;
    struct fuzz_splitter s;
    uint64_t h = 0xcbf29ce484222325ull;
    size_t off = 0, n;
    int r = 0;

    FUZZ_ASSERT(handoff_channel_init(&ch, fuzz_fd(), 0) == 0);
    handoff_channel_set_peer_caps(&ch, (mode & 1) ? HANDOFF_CAP_FD_BATCH : 0);
    for (unsigned i = 0; i < nfds; i++)
        ch.fdq[ch.nfdq++] = i == lost ? HANDOFF_FD_LOST : fuzz_fd();
    fuzz_splitter_init(&s, split);
    *count = 0;
    while (off < len && r == 0) {
        n = fuzz_splitter_next(&s, len - off);
        FUZZ_ASSERT(handoff_channel_inject(&ch, stream + off, n) == 0);
        off += n;
        r = drain(&ch, &h, count);
    }
    if (r == 0) {
        /* The peer closed: what is left is a cut message, or nothing. */
        size_t left = ch.rlen;

        ch.eof = 1;
        r = drain(&ch, &h, count);
        FUZZ_ASSERT(r == (left > 0 ? -1 : 0));
    }
    mix(&h, &r, sizeof(r));
    handoff_channel_close(&ch);
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned nfds, mode, whole_count, split_count;
    uint64_t whole, split;
    uint8_t *stream;
    int lowest;

    if (size < 2)
        return 0;
    nfds = data[1] % (FDS_MAX + 1);
    mode = data[1] / (FDS_MAX + 1);
    stream = fuzz_dup(data + 2, size - 2);
    lowest = fuzz_lowest_free_fd();

    whole = run(stream, size - 2, 0, nfds, mode, &whole_count);
    FUZZ_ASSERT(fuzz_lowest_free_fd() == lowest);
    split = run(stream, size - 2, data[0], nfds, mode, &split_count);
    FUZZ_ASSERT(fuzz_lowest_free_fd() == lowest);
    FUZZ_ASSERT(split_count == whole_count);
    FUZZ_ASSERT(split == whole);

    free(stream);
    return 0;
}
