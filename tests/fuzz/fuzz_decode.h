/*
 * fuzz_decode.h - the typed handoff decoders as a table, for the fuzz
 * targets that feed them (fuzz_message: one chosen decoder on a payload;
 * fuzz_channel: each framed message to the decoder of its type, as the
 * master and the workers do).
 */
#ifndef BATON_FUZZ_DECODE_H
#define BATON_FUZZ_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "message.h"

struct fuzz_decoder;

/* Decoders by index, 0 .. fuzz_ndecoders - 1: each typed decoder, the empty
 * decoder once per empty message type, and the empty decoder for HELLO. */
extern const unsigned fuzz_ndecoders;
const struct fuzz_decoder *fuzz_decoder_at(unsigned i);
/* The message type d expects. */
uint16_t fuzz_decoder_type(const struct fuzz_decoder *d);
/* The decoder the receiving process uses for a message type; NULL for types
 * without one (CONN, CONN_DONE are reserved). */
const struct fuzz_decoder *fuzz_decoder_for(uint16_t type);

/*
 * Runs d on in.  A decoder that accepts must describe the payload
 * completely: encoding what it decoded gives back the same payload and
 * descriptor count; one that refuses must say why.  A descriptor the
 * decoder took is closed here; in still has to be freed by the caller.
 * Returns the decoder's result (0 or -1).
 */
int fuzz_decode_check(const struct fuzz_decoder *d, struct handoff_in *in);

#endif
