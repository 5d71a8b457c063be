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

static int env_set(const char *name)
{
    const char *v = getenv(name);

    return v != NULL && strcmp(v, "1") == 0;
}

int proxy_testpeer_message(struct handoff_msg *m, uint32_t *seq, enum proxy_testpeer_when when,
                           uint32_t caps)
{
    int must = (when == PROXY_TESTPEER_AFTER_HELLO && env_set(PROXY_TESTPEER_ENV_MUST)) ||
               (when == PROXY_TESTPEER_BEFORE_START && env_set(PROXY_TESTPEER_ENV_MASTER_MUST));
    uint16_t type = must ? PROXY_TESTPEER_TYPE_MUST : PROXY_TESTPEER_TYPE;

    /* A peer without the capability would close the channel on it. */
    if (!(caps & HANDOFF_CAP_UNKNOWN_TYPES) || (when == PROXY_TESTPEER_AFTER_HELLO && !must))
        return 0;
    if (handoff_msg_init(m, type, *seq) != 0)
        return 0;
    if (must)
        handoff_msg_set_flags(m, HANDOFF_HDR_MUST_UNDERSTAND);
    handoff_msg_put_str(m, "a message of a newer release");
    if (handoff_msg_finish(m) != 0) {
        handoff_msg_free(m);
        return 0;
    }
    (*seq)++;
    proxy_log_info("testpeer: sending message type %u%s", (unsigned)type,
                   must ? " flagged must-understand" : "");
    return 1;
}
