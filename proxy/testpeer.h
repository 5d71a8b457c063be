/*
 * testpeer.h - what the test binary `baton-testpeer` (tests/CMakeLists.txt:
 * these sources plus testpeer.c, compiled with BATON_TESTPEER) sends beyond
 * this release's protocol, the way a newer release would.  Its worker sends
 * an unknown HELLO extension, an unknown message type after READY and, when
 * its environment asks (PROXY_TESTPEER_ENV_MUST), an unknown type flagged
 * must-understand after HELLO.  Its master sends each worker an unknown
 * type before START and one after, the first flagged must-understand when
 * asked (PROXY_TESTPEER_ENV_MASTER_MUST).  It proves that each side skips
 * what it may skip and refuses what it must.  In baton itself these are
 * empty inline functions.
 */
#ifndef BATON_PROXY_TESTPEER_H
#define BATON_PROXY_TESTPEER_H

#include <stdint.h>

#include "wire.h"

#define PROXY_TESTPEER_EXT_TAG   0x7e57u   /* HELLO extension tag no release uses */
#define PROXY_TESTPEER_TYPE      0x7e57u   /* message type no release uses */
#define PROXY_TESTPEER_TYPE_MUST 0x7e58u   /* the same, flagged must-understand */
#define PROXY_TESTPEER_ENV_MUST  "BATON_TESTPEER_MUST_UNDERSTAND"
#define PROXY_TESTPEER_ENV_MASTER_MUST "BATON_TESTPEER_MASTER_MUST_UNDERSTAND"

enum proxy_testpeer_when {
    PROXY_TESTPEER_AFTER_HELLO, PROXY_TESTPEER_AFTER_READY,   /* worker -> master */
    PROXY_TESTPEER_BEFORE_START, PROXY_TESTPEER_AFTER_START    /* master -> worker */
};

#ifdef BATON_TESTPEER
/* Appends the unknown extension to an encoded HELLO when the master made
 * an offer (it reads extensions then); 0 or -1. */
int proxy_testpeer_hello(struct handoff_msg *m, int offered);
/* Builds the message to send at `when` to a peer with capabilities `caps`,
 * numbered *seq (then advanced): 1 with *m filled (the caller sends and
 * frees it), 0 for none. */
int proxy_testpeer_message(struct handoff_msg *m, uint32_t *seq, enum proxy_testpeer_when when,
                           uint32_t caps);
#else
static inline int proxy_testpeer_hello(struct handoff_msg *m, int offered)
{
    (void)m;
    (void)offered;
    return 0;
}

static inline int proxy_testpeer_message(struct handoff_msg *m, uint32_t *seq,
                                         enum proxy_testpeer_when when, uint32_t caps)
{
    (void)m;
    (void)seq;
    (void)when;
    (void)caps;
    return 0;
}
#endif

#endif
