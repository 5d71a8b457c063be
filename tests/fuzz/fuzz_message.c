/*
 * fuzz_message.c - every typed message decoder of handoff/message.c.
 *
 * Input: [decoder][descriptors][type][payload]
 *   decoder      which decoder runs (index mod fuzz_ndecoders: each typed
 *                decoder, the empty decoder for each empty message type,
 *                and the empty decoder given HELLO)
 *   descriptors  low 2 bits: how many descriptors the message carries;
 *                bit 7: the first one was already taken (its slot is -1)
 *   type         0: the type that decoder expects; else the header's type
 *   payload      the rest
 *
 * Properties (fuzz_decode_check): an accepted payload is exactly the
 * encoding of what was decoded; a refusal says why.  Here also: no
 * descriptor is leaked, whatever the decoder took.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "fuzz_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct fuzz_decoder *d;
    struct handoff_in in;
    int lowest;
    unsigned i;

    if (size < 3)
        return 0;
    d = fuzz_decoder_at(data[0] % fuzz_ndecoders);
    lowest = fuzz_lowest_free_fd();

    memset(&in, 0, sizeof(in));
    in.hdr.magic = HANDOFF_MAGIC;
    in.hdr.version = HANDOFF_WIRE_VERSION;
    in.hdr.type = data[2];
    if (in.hdr.type == 0)
        in.hdr.type = fuzz_decoder_type(d);
    in.hdr.seq = 1;
    in.hdr.len = (uint32_t)(size - 3);
    /* As handoff_channel_next delivers it: no buffer for an empty payload. */
    in.payload = size > 3 ? fuzz_dup(data + 3, size - 3) : NULL;
    in.nfds = data[1] & 3;
    in.hdr.nfds = (uint8_t)in.nfds;
    for (i = 0; i < HANDOFF_MAX_FDS; i++)
        in.fds[i] = i < in.nfds ? fuzz_fd() : -1;
    if ((data[1] & 0x80) && in.nfds > 0) {
        close(in.fds[0]);
        in.fds[0] = -1;
    }

    fuzz_decode_check(d, &in);
    handoff_in_free(&in);
    FUZZ_ASSERT(in.payload == NULL && in.nfds == 0);
    FUZZ_ASSERT(fuzz_lowest_free_fd() == lowest);
    return 0;
}
