/*
 * message.c - typed handoff messages.
 *
 * Payload layouts (integers big-endian, str = u16 length + bytes without
 * NUL, bytes = u32 length + bytes):
 *
 *   HELLO       u32 pid, str version
 *   CONFIG      u32 generation, str path, bytes text
 *   LISTENER    str name, str addr; 1 descriptor
 *   FAILED      str reason
 *   STATUS_REQ  u32 id
 *   HANDLE_ACK  u32 messages (> 0)
 *   STATUS      u32 part, u32 id, u32 pid, u64 active, u64 total, u64 bytes_in,
 *               u64 bytes_out, u64 tls_failures,
 *               list of listeners: u32 total, u32 n, n x (str name, u64 active,
 *               u64 total), list of servers (as in SERVER_STATE)
 *   START, READY, STOP_ACCEPTING, DRAIN, RESUME_ACCEPTING: empty
 *   MASTER_STATE u64 start_ms, u32 last_gen, u32 status_seq, u32 ctl_fd,
 *               u32 reply_fd, str reply, str path, bytes text,
 *               u32 nsocks, nsocks x (str name, str addr, u32 fd),
 *               u32 ngens, ngens x (u32 id, u32 pid, u32 state, u32 seq,
 *               u32 fd, u64 started_ms, str version, bytes pending)
 *               bytes ticket keys (n x 80),
 *               then extensions: u16 tag, u16 flags, bytes body, up to the end:
 *                 1 exe path: str;  2 image fd: u32;
 *                 3 drain deadlines: u32 n, n x (u32 generation id, u64 ms)
 *   (fds in MASTER_STATE are u32 with 0xffffffff for "none")
 *   TICKET_KEYS u32 n (1..3), n x 80 bytes
 *   SERVER_STATE u32 part, list of servers: u32 total, u32 n, n x (str backend,
 *               str server, u32 down, u64 active, u64 total, u64 failures)
 *   (a list's part `part` holds its next HANDOFF_PART_* entries: n is exactly
 *   what is left of `total` from part x HANDOFF_PART_* on, at most that many)
 */
#include "message.h"

#include "codec.h"
#include "transport.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum hello_ext { HELLO_EXT_CAPS = 1 };

int handoff_encode_hello(struct handoff_msg *m, uint32_t seq, const struct handoff_hello *v)
{
    if (handoff_enc_begin(m, HANDOFF_HELLO, seq) == -1)
        return -1;
    if (!handoff_str_ok(v->version, sizeof(v->version)))
        return handoff_enc_fail(m);
    handoff_msg_put_u32(m, v->pid);
    handoff_msg_put_str(m, v->version);
    /* Only to a master that offered its own: an older one reads no more. */
    if (v->has_caps) {
        size_t body = handoff_ext_begin(m, HELLO_EXT_CAPS, 0);

        handoff_msg_put_u32(m, v->caps);
        handoff_ext_end(m, body);
    }
    return handoff_enc_end(m);
}

int handoff_encode_config(struct handoff_msg *m, uint32_t seq, const struct handoff_config *v)
{
    if (handoff_enc_begin(m, HANDOFF_CONFIG, seq) == -1)
        return -1;
    /* The receiver rejects these; failing here names the sender as culprit. */
    if (!handoff_str_ok(v->path, sizeof(v->path)) || v->textlen > HANDOFF_MAX_PAYLOAD ||
        (v->textlen > 0 && (v->text == NULL || memchr(v->text, '\0', v->textlen) != NULL)))
        return handoff_enc_fail(m);
    handoff_msg_put_u32(m, v->generation);
    handoff_msg_put_str(m, v->path);
    handoff_msg_put_bytes(m, v->text, v->textlen);
    return handoff_enc_end(m);
}

int handoff_encode_listener(struct handoff_msg *m, uint32_t seq,
                            const struct handoff_listener *v)
{
    if (handoff_enc_begin(m, HANDOFF_LISTENER, seq) == -1)
        return -1;
    if (!handoff_str_ok(v->name, sizeof(v->name)) || !handoff_str_ok(v->addr, sizeof(v->addr)))
        return handoff_enc_fail(m);
    handoff_msg_put_str(m, v->name);
    handoff_msg_put_str(m, v->addr);
    handoff_msg_add_fd(m, v->fd);
    return handoff_enc_end(m);
}

int handoff_encode_failed(struct handoff_msg *m, uint32_t seq, const struct handoff_failed *v)
{
    if (handoff_enc_begin(m, HANDOFF_FAILED, seq) == -1)
        return -1;
    if (!handoff_str_ok(v->reason, sizeof(v->reason)))
        return handoff_enc_fail(m);
    handoff_msg_put_str(m, v->reason);
    return handoff_enc_end(m);
}

int handoff_encode_status_req(struct handoff_msg *m, uint32_t seq,
                              const struct handoff_status_req *v)
{
    if (handoff_enc_begin(m, HANDOFF_STATUS_REQ, seq) == -1)
        return -1;
    handoff_msg_put_u32(m, v->id);
    return handoff_enc_end(m);
}

int handoff_encode_handle_ack(struct handoff_msg *m, uint32_t seq,
                              const struct handoff_handle_ack *v)
{
    if (handoff_enc_begin(m, HANDOFF_HANDLE_ACK, seq) == -1)
        return -1;
    if (v->messages == 0)
        return handoff_enc_fail(m);
    handoff_msg_put_u32(m, v->messages);
    return handoff_enc_end(m);
}

/*
 * Lists in parts.  Part `part` of a list of n entries holds the entries
 * from part x per on (per: HANDOFF_PART_*), at most per of them; a list
 * always has at least one part, which may be empty.
 */
static uint32_t list_parts(uint32_t n, uint32_t per)
{
    return n == 0 ? 1 : (n - 1) / per + 1;
}

static uint32_t part_first(uint32_t n, uint32_t per, uint32_t part)
{
    uint64_t first = (uint64_t)part * per;

    return first < n ? (uint32_t)first : n;
}

static uint32_t part_len(uint32_t n, uint32_t per, uint32_t part)
{
    uint32_t left = n - part_first(n, per, part);

    return left < per ? left : per;
}

uint32_t handoff_server_state_parts(const struct handoff_server_state *v, uint32_t caps)
{
    if (!(caps & HANDOFF_CAP_LIST_PARTS))
        return 1;
    return list_parts(v->nservers, HANDOFF_PART_SERVERS);
}

uint32_t handoff_status_parts(const struct handoff_status *v, uint32_t caps)
{
    uint32_t l, s;

    if (!(caps & HANDOFF_CAP_LIST_PARTS))
        return 1;
    l = list_parts(v->nlisteners, HANDOFF_PART_LISTENERS);
    s = handoff_server_state_parts(&v->servers, caps);

    return l > s ? l : s;
}

int handoff_server_state_complete(const struct handoff_server_state *v)
{
    return v->parts > 0 && v->nservers == v->total;
}

int handoff_status_complete(const struct handoff_status *v)
{
    return handoff_server_state_complete(&v->servers) && v->nlisteners == v->listeners_total;
}

void handoff_server_state_free(struct handoff_server_state *v)
{
    free(v->servers);
    memset(v, 0, sizeof(*v));
}

void handoff_status_free(struct handoff_status *v)
{
    free(v->listeners);
    handoff_server_state_free(&v->servers);
    memset(v, 0, sizeof(*v));
}

/* A list's part begins with u32 total, u32 n; its entries are the ones
 * from *first to *end. */
static int put_list_head(struct handoff_msg *m, uint32_t total, uint32_t per, uint32_t part,
                         const void *entries, uint32_t *first, uint32_t *end)
{
    uint32_t n = part_len(total, per, part);

    if (total > HANDOFF_LIST_MAX || (n > 0 && entries == NULL))
        return -1;
    handoff_msg_put_u32(m, total);
    handoff_msg_put_u32(m, n);
    *first = part_first(total, per, part);
    *end = *first + n;
    return 0;
}

/* Reads a list part's head (its count must be what part `part` of a list of
 * that total holds, and a part continuing a list keeps the list's total)
 * and makes room for the part's entries after the `have` in arr.  Returns
 * arr, perhaps moved, with *n entries to read (0 when d failed). */
static void *dec_list_part(struct handoff_dec *d, const char *list, uint32_t per, uint32_t part,
                           int continuing, uint32_t *total, void *arr, uint32_t have,
                           size_t size, uint32_t *n)
{
    char field[64];
    uint32_t t, len;
    void *grown;

    *n = 0;
    snprintf(field, sizeof(field), "%s total", list);
    handoff_dec_u32(d, field, &t);
    snprintf(field, sizeof(field), "%s count", list);
    handoff_dec_u32(d, field, &len);
    if (d->err)
        return arr;
    if (t > HANDOFF_LIST_MAX)
        handoff_dec_fail(d, "%u %s (max %u)", (unsigned)t, list, HANDOFF_LIST_MAX);
    else if (continuing && t != *total)
        handoff_dec_fail(d, "part %u lists %u %s, the parts before %u", (unsigned)part, (unsigned)t,
                 list, (unsigned)*total);
    else if (len != part_len(t, per, part))
        handoff_dec_fail(d, "part %u holds %u %s, expected %u of %u", (unsigned)part, (unsigned)len,
                 list, (unsigned)part_len(t, per, part), (unsigned)t);
    if (d->err)
        return arr;
    *total = t;
    if (len == 0)
        return arr;
    grown = realloc(arr, ((size_t)have + len) * size);
    if (grown == NULL) {
        handoff_dec_fail(d, "out of memory for %zu %s", (size_t)have + len, list);
        return arr;
    }
    *n = len;
    return grown;
}

/* Where a part goes: 0 starts the lists afresh, 1 continues them, -1 skips
 * a part whose lists this receiver never saw start.  `parts`: added so far. */
static int dec_part_order(struct handoff_dec *d, uint32_t part, uint32_t parts)
{
    if (part == 0)
        return 0;
    if (parts == 0)
        return -1;
    if (part != parts)
        handoff_dec_fail(d, "part %u where part %u was expected", (unsigned)part, (unsigned)parts);
    return 1;
}

static int put_server_entries(struct handoff_msg *m, const struct handoff_server_state *v,
                              uint32_t i, uint32_t end)
{
    for (; i < end; i++) {
        const struct handoff_server_health *h = &v->servers[i];

        if (!handoff_str_ok(h->backend, sizeof(h->backend)) || !handoff_str_ok(h->server, sizeof(h->server)))
            return -1;
        handoff_msg_put_str(m, h->backend);
        handoff_msg_put_str(m, h->server);
        handoff_msg_put_u32(m, h->down);
        handoff_msg_put_u64(m, h->active);
        handoff_msg_put_u64(m, h->total);
        handoff_msg_put_u64(m, h->failures);
    }
    return 0;
}

static int put_servers(struct handoff_msg *m, const struct handoff_server_state *v,
                       uint32_t part, uint32_t caps)
{
    uint32_t i, end;

    if (!(caps & HANDOFF_CAP_LIST_PARTS)) {
        /* The first release's layout: u32 n and as many as it could hold. */
        end = v->nservers < HANDOFF_LEGACY_SERVERS ? v->nservers : HANDOFF_LEGACY_SERVERS;
        handoff_msg_put_u32(m, end);
        return put_server_entries(m, v, 0, end);
    }
    if (put_list_head(m, v->nservers, HANDOFF_PART_SERVERS, part, v->servers, &i, &end) != 0)
        return -1;
    return put_server_entries(m, v, i, end);
}

/* The first release's list head: u32 n, at most max; makes room for them. */
static void *dec_legacy_list(struct handoff_dec *d, const char *list, uint32_t max, void *arr,
                             size_t size, uint32_t *n)
{
    char field[64];
    void *grown;

    snprintf(field, sizeof(field), "%s count", list);
    handoff_dec_u32(d, field, n);
    if (!d->err && *n > max)
        handoff_dec_fail(d, "%u %s (max %u)", (unsigned)*n, list, (unsigned)max);
    if (d->err || *n == 0) {
        *n = 0;
        return arr;
    }
    grown = realloc(arr, (size_t)*n * size);
    if (grown == NULL) {
        handoff_dec_fail(d, "out of memory for %u %s", (unsigned)*n, list);
        *n = 0;
        return arr;
    }
    return grown;
}

static void get_servers(struct handoff_dec *d, struct handoff_server_state *v, uint32_t part,
                        int continuing, uint32_t caps)
{
    uint32_t n;

    if (caps & HANDOFF_CAP_LIST_PARTS) {
        v->servers = dec_list_part(d, "servers", HANDOFF_PART_SERVERS, part, continuing,
                                   &v->total, v->servers, v->nservers, sizeof(*v->servers), &n);
    } else {
        v->servers = dec_legacy_list(d, "servers", HANDOFF_LEGACY_SERVERS, v->servers,
                                     sizeof(*v->servers), &n);
        v->total = n;
    }
    for (uint32_t i = 0; !d->err && i < n; i++) {
        struct handoff_server_health *h = &v->servers[v->nservers];

        handoff_dec_str(d, "server backend", h->backend, sizeof(h->backend));
        handoff_dec_str(d, "server name", h->server, sizeof(h->server));
        handoff_dec_u32(d, "server down", &h->down);
        handoff_dec_u64(d, "server active", &h->active);
        handoff_dec_u64(d, "server total", &h->total);
        handoff_dec_u64(d, "server failures", &h->failures);
        if (!d->err)
            v->nservers++;
    }
}

int handoff_encode_server_state(struct handoff_msg *m, uint32_t seq,
                                const struct handoff_server_state *v, uint32_t part,
                                uint32_t caps)
{
    if (handoff_enc_begin(m, HANDOFF_SERVER_STATE, seq) == -1)
        return -1;
    if (part >= handoff_server_state_parts(v, caps))
        return handoff_enc_fail(m);
    if (caps & HANDOFF_CAP_LIST_PARTS)
        handoff_msg_put_u32(m, part);
    if (put_servers(m, v, part, caps) != 0)
        return handoff_enc_fail(m);
    return handoff_enc_end(m);
}

int handoff_decode_server_state(struct handoff_in *in, struct handoff_server_state *v,
                                uint32_t caps, char *why, size_t n)
{
    struct handoff_server_state skipped = { 0 }, *t = v;
    struct handoff_dec d;
    uint32_t part = 0;
    int order = 0, rc;

    if (handoff_dec_begin(&d, in, HANDOFF_SERVER_STATE, 0, why, n) == -1) {
        handoff_server_state_free(v);
        return -1;
    }
    if (caps & HANDOFF_CAP_LIST_PARTS) {
        handoff_dec_u32(&d, "part", &part);
        order = dec_part_order(&d, part, v->parts);
    }
    if (order == 0)
        handoff_server_state_free(v);
    else if (order < 0)
        t = &skipped;
    get_servers(&d, t, part, order > 0, caps);
    rc = handoff_dec_end(&d);
    handoff_server_state_free(&skipped);
    if (rc == -1) {
        handoff_server_state_free(v);
        return -1;
    }
    if (t == v)
        v->parts = part + 1;
    return 0;
}

static void put_tickets(struct handoff_msg *m, const struct handoff_ticket_keys *v)
{
    handoff_msg_put_bytes(m, v->keys, (size_t)v->n * HANDOFF_TICKET_KEY_LEN);
}

static void get_tickets(struct handoff_dec *d, struct handoff_ticket_keys *v, int required)
{
    const uint8_t *p = NULL;
    uint32_t len = 0;

    handoff_dec_bytes(d, "ticket keys", &p, &len, HANDOFF_TICKET_KEYS_MAX * HANDOFF_TICKET_KEY_LEN);
    if (d->err)
        return;
    if (len % HANDOFF_TICKET_KEY_LEN != 0 || (required && len == 0)) {
        handoff_dec_fail(d, "ticket keys: %u bytes (expected 1 to %u keys of %u bytes)", (unsigned)len,
                 HANDOFF_TICKET_KEYS_MAX, HANDOFF_TICKET_KEY_LEN);
        return;
    }
    v->n = len / HANDOFF_TICKET_KEY_LEN;
    if (len > 0)
        memcpy(v->keys, p, len);
}

int handoff_encode_ticket_keys(struct handoff_msg *m, uint32_t seq,
                               const struct handoff_ticket_keys *v)
{
    if (handoff_enc_begin(m, HANDOFF_TICKET_KEYS, seq) == -1)
        return -1;
    if (v->n == 0 || v->n > HANDOFF_TICKET_KEYS_MAX)
        return handoff_enc_fail(m);
    put_tickets(m, v);
    return handoff_enc_end(m);
}

int handoff_decode_ticket_keys(struct handoff_in *in, struct handoff_ticket_keys *v,
                               char *why, size_t n)
{
    struct handoff_dec d;

    memset(v, 0, sizeof(*v));
    if (handoff_dec_begin(&d, in, HANDOFF_TICKET_KEYS, 0, why, n) == -1)
        return -1;
    get_tickets(&d, v, 1);
    return handoff_dec_end(&d);
}

static int put_listeners(struct handoff_msg *m, const struct handoff_status *v, uint32_t part,
                         uint32_t caps)
{
    uint32_t i, end;

    if (!(caps & HANDOFF_CAP_LIST_PARTS)) {
        i = 0;
        end = v->nlisteners < HANDOFF_LEGACY_LISTENERS ? v->nlisteners
                                                       : HANDOFF_LEGACY_LISTENERS;
        handoff_msg_put_u32(m, end);
    } else if (put_list_head(m, v->nlisteners, HANDOFF_PART_LISTENERS, part, v->listeners, &i,
                             &end) != 0) {
        return -1;
    }
    for (; i < end; i++) {
        const struct handoff_listener_stats *l = &v->listeners[i];

        if (!handoff_str_ok(l->name, sizeof(l->name)))
            return -1;
        handoff_msg_put_str(m, l->name);
        handoff_msg_put_u64(m, l->active);
        handoff_msg_put_u64(m, l->total);
    }
    return 0;
}

static void get_listeners(struct handoff_dec *d, struct handoff_status *v, uint32_t part, int continuing,
                          uint32_t caps)
{
    uint32_t n;

    if (caps & HANDOFF_CAP_LIST_PARTS) {
        v->listeners = dec_list_part(d, "listeners", HANDOFF_PART_LISTENERS, part, continuing,
                                     &v->listeners_total, v->listeners, v->nlisteners,
                                     sizeof(*v->listeners), &n);
    } else {
        v->listeners = dec_legacy_list(d, "listeners", HANDOFF_LEGACY_LISTENERS, v->listeners,
                                       sizeof(*v->listeners), &n);
        v->listeners_total = n;
    }
    for (uint32_t i = 0; !d->err && i < n; i++) {
        struct handoff_listener_stats *l = &v->listeners[v->nlisteners];

        handoff_dec_str(d, "listener name", l->name, sizeof(l->name));
        handoff_dec_u64(d, "listener active", &l->active);
        handoff_dec_u64(d, "listener total", &l->total);
        if (!d->err)
            v->nlisteners++;
    }
}

/* STATUS extensions (parts layout only). */
enum status_ext { STATUS_EXT_HANDOFF = 1 };

static int dec_status_ext(struct handoff_dec *e, uint16_t tag, void *arg)
{
    struct handoff_status *v = arg;

    if (tag != STATUS_EXT_HANDOFF)
        return 0;
    handoff_dec_u64(e, "adopted", &v->adopted);
    handoff_dec_u64(e, "orphans", &v->orphans);
    handoff_dec_u64(e, "handed_over", &v->handed_over);
    return 1;
}

int handoff_encode_status(struct handoff_msg *m, uint32_t seq, const struct handoff_status *v,
                          uint32_t part, uint32_t caps)
{
    int parts = (caps & HANDOFF_CAP_LIST_PARTS) != 0;

    if (handoff_enc_begin(m, HANDOFF_STATUS, seq) == -1)
        return -1;
    if (part >= handoff_status_parts(v, caps))
        return handoff_enc_fail(m);
    if (parts)
        handoff_msg_put_u32(m, part);
    handoff_msg_put_u32(m, v->id);
    handoff_msg_put_u32(m, v->pid);
    handoff_msg_put_u64(m, v->active);
    handoff_msg_put_u64(m, v->total);
    handoff_msg_put_u64(m, v->bytes_in);
    handoff_msg_put_u64(m, v->bytes_out);
    /* The first release put tls_failures after the listeners. */
    if (parts)
        handoff_msg_put_u64(m, v->tls_failures);
    if (put_listeners(m, v, part, caps) != 0)
        return handoff_enc_fail(m);
    if (!parts)
        handoff_msg_put_u64(m, v->tls_failures);
    if (put_servers(m, &v->servers, part, caps) != 0)
        return handoff_enc_fail(m);
    /* Extensions only where the receiver reads them (the parts layout). */
    if (parts && (caps & HANDOFF_CAP_CONNS) && part == 0) {
        size_t body = handoff_ext_begin(m, STATUS_EXT_HANDOFF, 0);

        handoff_msg_put_u64(m, v->adopted);
        handoff_msg_put_u64(m, v->orphans);
        handoff_msg_put_u64(m, v->handed_over);
        handoff_ext_end(m, body);
    }
    return handoff_enc_end(m);
}

static int type_is_empty(uint16_t type)
{
    switch (type) {
    case HANDOFF_START:
    case HANDOFF_READY:
    case HANDOFF_STOP_ACCEPTING:
    case HANDOFF_DRAIN:
    case HANDOFF_RESUME_ACCEPTING:
        return 1;
    default:
        return 0;
    }
}

int handoff_encode_empty(struct handoff_msg *m, uint16_t type, uint32_t seq)
{
    if (handoff_enc_begin(m, type, seq) == -1)
        return -1;
    if (!type_is_empty(type))
        return handoff_enc_fail(m);
    return handoff_enc_end(m);
}

/* Received messages */

void handoff_in_free(struct handoff_in *in)
{
    unsigned i;

    for (i = 0; i < in->nfds && i < HANDOFF_MAX_FDS; i++) {
        if (in->fds[i] >= 0)
            handoff_transport_close(in->fds[i]);
        in->fds[i] = -1;
    }
    in->nfds = 0;
    if (in->payload != NULL)
        handoff_cleanse(in->payload, in->hdr.len);
    free(in->payload);
    in->payload = NULL;
}

static int dec_hello_ext(struct handoff_dec *e, uint16_t tag, void *arg)
{
    struct handoff_hello *v = arg;

    if (tag != HELLO_EXT_CAPS) {
        if (v->unknown_exts++ == 0)
            v->unknown_tag = tag;
        return 0;
    }
    handoff_dec_u32(e, "capabilities", &v->caps);
    v->has_caps = !e->err;
    return 1;
}

int handoff_decode_hello(struct handoff_in *in, struct handoff_hello *v, char *why, size_t n)
{
    struct handoff_dec d;

    memset(v, 0, sizeof(*v));
    if (handoff_dec_begin(&d, in, HANDOFF_HELLO, 0, why, n) == -1)
        return -1;
    handoff_dec_u32(&d, "pid", &v->pid);
    handoff_dec_str(&d, "version", v->version, sizeof(v->version));
    handoff_dec_exts(&d, dec_hello_ext, v);
    return handoff_dec_end(&d);
}

int handoff_decode_config(struct handoff_in *in, struct handoff_config *v, char *why,
                          size_t n)
{
    struct handoff_dec d;

    memset(v, 0, sizeof(*v));
    if (handoff_dec_begin(&d, in, HANDOFF_CONFIG, 0, why, n) == -1)
        return -1;
    handoff_dec_u32(&d, "generation", &v->generation);
    handoff_dec_str(&d, "path", v->path, sizeof(v->path));
    handoff_dec_bytes(&d, "text", &v->text, &v->textlen, HANDOFF_MAX_PAYLOAD);
    if (!d.err && v->textlen > 0 && memchr(v->text, '\0', v->textlen) != NULL)
        handoff_dec_fail(&d, "text contains a NUL byte");
    if (handoff_dec_end(&d) == -1) {
        v->text = NULL;
        v->textlen = 0;
        return -1;
    }
    return 0;
}

int handoff_decode_listener(struct handoff_in *in, struct handoff_listener *v, char *why,
                            size_t n)
{
    struct handoff_dec d;

    memset(v, 0, sizeof(*v));
    v->fd = -1;
    if (handoff_dec_begin(&d, in, HANDOFF_LISTENER, 1, why, n) == -1)
        return -1;
    handoff_dec_str(&d, "name", v->name, sizeof(v->name));
    handoff_dec_str(&d, "addr", v->addr, sizeof(v->addr));
    if (!d.err && in->fds[0] < 0)
        handoff_dec_fail(&d, "descriptor already taken");
    if (handoff_dec_end(&d) == -1)
        return -1;
    v->fd = in->fds[0];
    in->fds[0] = -1;
    return 0;
}

int handoff_decode_failed(struct handoff_in *in, struct handoff_failed *v, char *why,
                          size_t n)
{
    struct handoff_dec d;

    memset(v, 0, sizeof(*v));
    if (handoff_dec_begin(&d, in, HANDOFF_FAILED, 0, why, n) == -1)
        return -1;
    handoff_dec_str(&d, "reason", v->reason, sizeof(v->reason));
    return handoff_dec_end(&d);
}

int handoff_decode_status_req(struct handoff_in *in, struct handoff_status_req *v,
                              char *why, size_t n)
{
    struct handoff_dec d;

    memset(v, 0, sizeof(*v));
    if (handoff_dec_begin(&d, in, HANDOFF_STATUS_REQ, 0, why, n) == -1)
        return -1;
    handoff_dec_u32(&d, "id", &v->id);
    return handoff_dec_end(&d);
}

int handoff_decode_handle_ack(struct handoff_in *in, struct handoff_handle_ack *v, char *why,
                              size_t n)
{
    struct handoff_dec d;

    memset(v, 0, sizeof(*v));
    if (handoff_dec_begin(&d, in, HANDOFF_HANDLE_ACK, 0, why, n) == -1)
        return -1;
    handoff_dec_u32(&d, "messages", &v->messages);
    if (!d.err && v->messages == 0)
        handoff_dec_fail(&d, "acknowledges no message");
    return handoff_dec_end(&d);
}

int handoff_decode_status(struct handoff_in *in, struct handoff_status *v, uint32_t caps,
                          char *why, size_t n)
{
    struct handoff_status skipped = { 0 }, *t = v;
    int parts = (caps & HANDOFF_CAP_LIST_PARTS) != 0;
    struct handoff_dec d;
    uint32_t part = 0, id;
    int order = 0, rc;

    if (handoff_dec_begin(&d, in, HANDOFF_STATUS, 0, why, n) == -1) {
        handoff_status_free(v);
        return -1;
    }
    if (parts)
        handoff_dec_u32(&d, "part", &part);
    handoff_dec_u32(&d, "id", &id);
    if (parts)
        order = dec_part_order(&d, part, v->servers.parts);
    if (order == 0)
        handoff_status_free(v);
    else if (order < 0)
        t = &skipped;
    else if (!d.err && id != v->id)
        handoff_dec_fail(&d, "part %u of request %u continues request %u", (unsigned)part,
                 (unsigned)id, (unsigned)v->id);
    t->id = id;
    handoff_dec_u32(&d, "pid", &t->pid);
    handoff_dec_u64(&d, "active", &t->active);
    handoff_dec_u64(&d, "total", &t->total);
    handoff_dec_u64(&d, "bytes_in", &t->bytes_in);
    handoff_dec_u64(&d, "bytes_out", &t->bytes_out);
    if (parts)
        handoff_dec_u64(&d, "tls_failures", &t->tls_failures);
    get_listeners(&d, t, part, order > 0, caps);
    if (!parts)
        handoff_dec_u64(&d, "tls_failures", &t->tls_failures);
    get_servers(&d, &t->servers, part, order > 0, caps);
    if (parts)
        handoff_dec_exts(&d, dec_status_ext, t);
    rc = handoff_dec_end(&d);
    handoff_status_free(&skipped);
    if (rc == -1) {
        handoff_status_free(v);
        return -1;
    }
    if (t == v)
        v->servers.parts = part + 1;
    return 0;
}

int handoff_decode_empty(struct handoff_in *in, char *why, size_t n)
{
    struct handoff_dec d;

    if (!type_is_empty(in->hdr.type)) {
        snprintf(why, n, "expected an empty message (START, READY, STOP_ACCEPTING, "
                 "DRAIN or RESUME_ACCEPTING), got %s (type %u)",
                 handoff_type_name(in->hdr.type), (unsigned)in->hdr.type);
        return -1;
    }
    if (handoff_dec_begin(&d, in, in->hdr.type, 0, why, n) == -1)
        return -1;
    if (in->hdr.len != 0)
        handoff_dec_fail(&d, "expected an empty payload, got %u bytes", (unsigned)in->hdr.len);
    return handoff_dec_end(&d);
}

static void put_fd(struct handoff_msg *m, int32_t fd)
{
    handoff_msg_put_u32(m, fd < 0 ? UINT32_MAX : (uint32_t)fd);
}

static void put_state_exts(struct handoff_msg *m, const struct handoff_master_state *v);

int handoff_encode_master_state(struct handoff_msg *m, uint32_t seq,
                                const struct handoff_master_state *v)
{
    uint32_t i;

    if (handoff_enc_begin(m, HANDOFF_MASTER_STATE, seq) == -1)
        return -1;
    if (v->nsocks > HANDOFF_STATE_SOCKS_MAX || v->ngens > HANDOFF_STATE_GENS_MAX ||
        !handoff_str_ok(v->reply, sizeof(v->reply)) || !handoff_str_ok(v->path, sizeof(v->path)) ||
        v->ctl_fd < 0)
        return handoff_enc_fail(m);
    handoff_msg_put_u64(m, v->start_ms);
    handoff_msg_put_u32(m, v->last_gen);
    handoff_msg_put_u32(m, v->status_seq);
    put_fd(m, v->ctl_fd);
    put_fd(m, v->reply_fd);
    handoff_msg_put_str(m, v->reply);
    handoff_msg_put_str(m, v->path);
    handoff_msg_put_bytes(m, v->text, v->textlen);
    handoff_msg_put_u32(m, v->nsocks);
    for (i = 0; i < v->nsocks; i++) {
        const struct handoff_state_sock *s = &v->socks[i];

        if (!handoff_str_ok(s->name, sizeof(s->name)) || !handoff_str_ok(s->addr, sizeof(s->addr)) || s->fd < 0)
            return handoff_enc_fail(m);
        handoff_msg_put_str(m, s->name);
        handoff_msg_put_str(m, s->addr);
        put_fd(m, s->fd);
    }
    handoff_msg_put_u32(m, v->ngens);
    for (i = 0; i < v->ngens; i++) {
        const struct handoff_state_gen *g = &v->gens[i];

        if (!handoff_str_ok(g->version, sizeof(g->version)))
            return handoff_enc_fail(m);
        handoff_msg_put_u32(m, g->id);
        handoff_msg_put_u32(m, g->pid);
        handoff_msg_put_u32(m, g->state);
        handoff_msg_put_u32(m, g->seq);
        put_fd(m, g->fd);
        handoff_msg_put_u64(m, g->started_ms);
        handoff_msg_put_str(m, g->version);
        handoff_msg_put_bytes(m, g->pending, g->npending);
    }
    if (v->tickets.n > HANDOFF_TICKET_KEYS_MAX || !handoff_str_ok(v->exe, sizeof(v->exe)))
        return handoff_enc_fail(m);
    put_tickets(m, &v->tickets);
    put_state_exts(m, v);
    return handoff_enc_end(m);
}

static void dec_fd(struct handoff_dec *d, const char *field, int32_t *fd, int optional)
{
    uint32_t v = 0;

    handoff_dec_u32(d, field, &v);
    if (d->err)
        return;
    if (v == UINT32_MAX && optional)
        *fd = -1;
    else if (v > INT32_MAX)
        handoff_dec_fail(d, "%s: descriptor %u out of range", field, (unsigned)v);
    else
        *fd = (int32_t)v;
}

/* MASTER_STATE extensions (see message.h). */
enum state_ext { STATE_EXT_EXE = 1, STATE_EXT_IMAGE_FD, STATE_EXT_DEADLINES, STATE_EXT_CAPS };

static void put_state_exts(struct handoff_msg *m, const struct handoff_master_state *v)
{
    uint32_t n = 0;
    size_t body;

    if (v->exe[0] != '\0') {
        body = handoff_ext_begin(m, STATE_EXT_EXE, 0);
        handoff_msg_put_str(m, v->exe);
        handoff_ext_end(m, body);
    }
    if (v->image_fd >= 0) {
        body = handoff_ext_begin(m, STATE_EXT_IMAGE_FD, 0);
        put_fd(m, v->image_fd);
        handoff_ext_end(m, body);
    }
    for (uint32_t i = 0; i < v->ngens; i++)
        n += v->gens[i].caps != 0;
    if (n > 0) {
        body = handoff_ext_begin(m, STATE_EXT_CAPS, 0);
        handoff_msg_put_u32(m, n);
        for (uint32_t i = 0; i < v->ngens; i++) {
            if (v->gens[i].caps == 0)
                continue;
            handoff_msg_put_u32(m, v->gens[i].id);
            handoff_msg_put_u32(m, v->gens[i].caps);
        }
        handoff_ext_end(m, body);
    }
    n = 0;
    for (uint32_t i = 0; i < v->ngens; i++)
        n += v->gens[i].drain_deadline_ms != 0;
    if (n == 0)
        return;
    body = handoff_ext_begin(m, STATE_EXT_DEADLINES, 0);
    handoff_msg_put_u32(m, n);
    for (uint32_t i = 0; i < v->ngens; i++) {
        if (v->gens[i].drain_deadline_ms == 0)
            continue;
        handoff_msg_put_u32(m, v->gens[i].id);
        handoff_msg_put_u64(m, v->gens[i].drain_deadline_ms);
    }
    handoff_ext_end(m, body);
}

/* A per-generation list in an extension: u32 n, then n entries that each
 * start with a generation id.  Returns the count, or 0 when d failed. */
static uint32_t dec_gen_list(struct handoff_dec *d, const struct handoff_master_state *v,
                             const char *what)
{
    uint32_t n = 0;

    handoff_dec_u32(d, what, &n);
    if (!d->err && n > v->ngens)
        handoff_dec_fail(d, "%s: %u entries for %u generations", what, (unsigned)n, (unsigned)v->ngens);
    return d->err ? 0 : n;
}

/* The carried generation an entry names. */
static struct handoff_state_gen *dec_gen_ref(struct handoff_dec *d, struct handoff_master_state *v,
                                             const char *what)
{
    uint32_t id = 0;

    handoff_dec_u32(d, what, &id);
    for (uint32_t k = 0; !d->err && k < v->ngens; k++)
        if (v->gens[k].id == id)
            return &v->gens[k];
    handoff_dec_fail(d, "%s for generation %u, which is not carried", what, (unsigned)id);
    return NULL;
}

static void dec_state_deadlines(struct handoff_dec *d, struct handoff_master_state *v)
{
    uint32_t n = dec_gen_list(d, v, "drain deadlines");

    for (uint32_t i = 0; !d->err && i < n; i++) {
        struct handoff_state_gen *g = dec_gen_ref(d, v, "drain deadline");
        uint64_t at;

        handoff_dec_u64(d, "drain deadline", &at);
        if (g != NULL && !d->err)
            g->drain_deadline_ms = at;
    }
}

static void dec_state_caps(struct handoff_dec *d, struct handoff_master_state *v)
{
    uint32_t n = dec_gen_list(d, v, "worker capabilities");

    for (uint32_t i = 0; !d->err && i < n; i++) {
        struct handoff_state_gen *g = dec_gen_ref(d, v, "capabilities");
        uint32_t caps;

        handoff_dec_u32(d, "capabilities", &caps);
        if (g != NULL && !d->err)
            g->caps = caps & HANDOFF_CAPS_OURS;
    }
}

static int dec_state_ext(struct handoff_dec *e, uint16_t tag, void *arg)
{
    struct handoff_master_state *v = arg;

    switch (tag) {
    case STATE_EXT_EXE:
        handoff_dec_str(e, "exe", v->exe, sizeof(v->exe));
        return 1;
    case STATE_EXT_IMAGE_FD:
        dec_fd(e, "image fd", &v->image_fd, 1);
        return 1;
    case STATE_EXT_DEADLINES:
        dec_state_deadlines(e, v);
        return 1;
    case STATE_EXT_CAPS:
        dec_state_caps(e, v);
        return 1;
    default:
        return 0;
    }
}

int handoff_decode_master_state(struct handoff_in *in, struct handoff_master_state *v,
                                char *why, size_t n)
{
    char field[64];
    struct handoff_dec d;
    uint32_t i;

    memset(v, 0, sizeof(*v));
    if (handoff_dec_begin(&d, in, HANDOFF_MASTER_STATE, 0, why, n) == -1)
        return -1;
    handoff_dec_u64(&d, "start_ms", &v->start_ms);
    handoff_dec_u32(&d, "last_gen", &v->last_gen);
    handoff_dec_u32(&d, "status_seq", &v->status_seq);
    dec_fd(&d, "ctl_fd", &v->ctl_fd, 0);
    dec_fd(&d, "reply_fd", &v->reply_fd, 1);
    handoff_dec_str(&d, "reply", v->reply, sizeof(v->reply));
    handoff_dec_str(&d, "path", v->path, sizeof(v->path));
    handoff_dec_bytes(&d, "text", &v->text, &v->textlen, HANDOFF_MAX_PAYLOAD);
    if (!d.err && v->textlen > 0 && memchr(v->text, '\0', v->textlen) != NULL)
        handoff_dec_fail(&d, "text contains a NUL byte");
    handoff_dec_u32(&d, "nsocks", &v->nsocks);
    if (!d.err && v->nsocks > HANDOFF_STATE_SOCKS_MAX)
        handoff_dec_fail(&d, "%u sockets (max %u)", (unsigned)v->nsocks, HANDOFF_STATE_SOCKS_MAX);
    for (i = 0; !d.err && i < v->nsocks; i++) {
        struct handoff_state_sock *s = &v->socks[i];

        snprintf(field, sizeof(field), "socket %u name", (unsigned)i);
        handoff_dec_str(&d, field, s->name, sizeof(s->name));
        snprintf(field, sizeof(field), "socket %u addr", (unsigned)i);
        handoff_dec_str(&d, field, s->addr, sizeof(s->addr));
        snprintf(field, sizeof(field), "socket %u fd", (unsigned)i);
        dec_fd(&d, field, &s->fd, 0);
    }
    handoff_dec_u32(&d, "ngens", &v->ngens);
    if (!d.err && v->ngens > HANDOFF_STATE_GENS_MAX)
        handoff_dec_fail(&d, "%u generations (max %u)", (unsigned)v->ngens, HANDOFF_STATE_GENS_MAX);
    for (i = 0; !d.err && i < v->ngens; i++) {
        struct handoff_state_gen *g = &v->gens[i];

        snprintf(field, sizeof(field), "generation %u", (unsigned)i);
        handoff_dec_u32(&d, field, &g->id);
        handoff_dec_u32(&d, field, &g->pid);
        handoff_dec_u32(&d, field, &g->state);
        handoff_dec_u32(&d, field, &g->seq);
        dec_fd(&d, field, &g->fd, 1);
        handoff_dec_u64(&d, field, &g->started_ms);
        handoff_dec_str(&d, field, g->version, sizeof(g->version));
        handoff_dec_bytes(&d, field, &g->pending, &g->npending, HANDOFF_MAX_PAYLOAD);
    }
    get_tickets(&d, &v->tickets, 0);
    v->image_fd = -1;
    handoff_dec_exts(&d, dec_state_ext, v);
    if (handoff_dec_end(&d) == -1) {
        v->nsocks = v->ngens = 0;
        return -1;
    }
    return 0;
}
