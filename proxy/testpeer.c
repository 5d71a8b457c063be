/*
 * testpeer.c - the test binary's messages beyond the protocol (testpeer.h).
 * Linked only into baton-testpeer.
 */
#include "testpeer.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "message.h"

int proxy_testpeer_hello(struct handoff_msg *m, int offered)
{
    static const char body[] = "from a newer release";

    if (!offered)
        return 0;
    handoff_msg_put_u16(m, PROXY_TESTPEER_EXT_TAG);
    handoff_msg_put_u16(m, 0);
    handoff_msg_put_bytes(m, body, sizeof(body) - 1);
    return handoff_msg_finish(m);
}

int proxy_testpeer_message(struct handoff_msg *m, uint32_t seq, enum proxy_testpeer_when when,
                           uint32_t caps)
{
    const char *must = getenv(PROXY_TESTPEER_ENV_MUST);
    int refuse = must != NULL && strcmp(must, "1") == 0;
    uint16_t type = when == PROXY_TESTPEER_AFTER_READY ? PROXY_TESTPEER_TYPE
                                                       : PROXY_TESTPEER_TYPE_MUST;

    /* A master without the capability would close the channel on it. */
    if (!(caps & HANDOFF_CAP_UNKNOWN_TYPES) || (type == PROXY_TESTPEER_TYPE_MUST && !refuse))
        return 0;
    if (handoff_msg_init(m, type, seq) != 0)
        return 0;
    if (type == PROXY_TESTPEER_TYPE_MUST)
        handoff_msg_set_flags(m, HANDOFF_HDR_MUST_UNDERSTAND);
    handoff_msg_put_str(m, "a message of a newer release");
    if (handoff_msg_finish(m) != 0) {
        handoff_msg_free(m);
        return 0;
    }
    proxy_log_info("testpeer: sending message type %u%s", (unsigned)type,
                   type == PROXY_TESTPEER_TYPE_MUST ? " flagged must-understand" : "");
    return 1;
}
