/*
 * fuzz_wire.c - the handoff wire format (handoff/wire.c): header decoding,
 * the bounds-checked getters, and the message builder.
 *
 * Input: [nops][nops getter ops][payload]
 *   - the first 16 bytes are also decoded as a header; a header that decodes
 *     must encode back to the same bytes;
 *   - the getter ops run on the payload and are checked against a model of
 *     the format (what each getter must return, and that a failed reader
 *     stays failed);
 *   - the payload is then read as a builder program whose message must come
 *     back field for field through the getters, or fail exactly when the
 *     model says it exceeds a limit.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "wire.h"

/* --- header ------------------------------------------------------------- */

static void fuzz_header(const uint8_t *data, size_t size)
{
    struct handoff_hdr h;
    uint8_t again[HANDOFF_HDR_LEN];
    char why[256] = "";
    int frames;

    if (size < HANDOFF_HDR_LEN)
        return;
    /* Only framing is judged: any type (known or not) and any flags pass. */
    frames = data[0] == HANDOFF_MAGIC >> 8 && data[1] == (HANDOFF_MAGIC & 0xff) &&
             data[2] == HANDOFF_WIRE_VERSION && data[3] <= HANDOFF_MAX_FDS &&
             ((uint32_t)data[12] << 24 | (uint32_t)data[13] << 16 | (uint32_t)data[14] << 8 |
              data[15]) <= HANDOFF_MAX_PAYLOAD;
    if (handoff_hdr_decode(data, &h, why, sizeof(why)) == 0) {
        FUZZ_ASSERT(frames);
        FUZZ_ASSERT(h.magic == HANDOFF_MAGIC && h.version == HANDOFF_WIRE_VERSION);
        FUZZ_ASSERT(h.nfds <= HANDOFF_MAX_FDS && h.len <= HANDOFF_MAX_PAYLOAD);
        FUZZ_ASSERT(handoff_type_known(h.type) ==
                    (strcmp(handoff_type_name(h.type), "UNKNOWN") != 0));
        handoff_hdr_encode(&h, again);
        FUZZ_ASSERT(memcmp(again, data, HANDOFF_HDR_LEN) == 0);
    } else {
        FUZZ_ASSERT(!frames && why[0] != '\0');
    }
}

/* --- getters against a model --------------------------------------------- */

static uint64_t be_get(const uint8_t *p, size_t n)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static const uint32_t bytes_max[8] = { 0, 1, 2, 16, 255, 4096, HANDOFF_MAX_PAYLOAD, UINT32_MAX };
static const size_t str_buflen[8] = { 0, 1, 2, 3, 16, 64, HANDOFF_STR_MAX, HANDOFF_STR_MAX + 2 };

/* What the next getter must do: the model's reader. */
struct model {
    const uint8_t *p;
    size_t         len, off;
    int            failed;
};

/* Takes n bytes in the model, or marks it failed. */
static const uint8_t *model_take(struct model *m, size_t n)
{
    const uint8_t *p;

    if (m->failed || n > m->len - m->off) {
        m->failed = 1;
        return NULL;
    }
    p = m->p + m->off;
    m->off += n;
    return p;
}

static void op_int(struct handoff_reader *r, struct model *m, size_t width)
{
    const uint8_t *want = model_take(m, width);
    uint8_t v8;
    uint16_t v16;
    uint32_t v32;
    uint64_t v64;
    int rc;

    switch (width) {
    case 1:
        rc = handoff_get_u8(r, &v8);
        v64 = v8;
        break;
    case 2:
        rc = handoff_get_u16(r, &v16);
        v64 = v16;
        break;
    case 4:
        rc = handoff_get_u32(r, &v32);
        v64 = v32;
        break;
    default:
        rc = handoff_get_u64(r, &v64);
        break;
    }
    FUZZ_ASSERT(rc == (want != NULL ? 0 : -1));
    FUZZ_ASSERT(v64 == (want != NULL ? be_get(want, width) : 0));
}

static void op_bytes(struct handoff_reader *r, struct model *m, uint32_t max)
{
    const uint8_t *lenp = model_take(m, 4), *want = NULL, *got;
    uint32_t len = lenp != NULL ? (uint32_t)be_get(lenp, 4) : 0, n;
    int rc;

    if (lenp != NULL && len > max)
        m->failed = 1;
    else if (lenp != NULL)
        want = model_take(m, len);
    rc = handoff_get_bytes(r, &got, &n, max);
    FUZZ_ASSERT(rc == (want != NULL ? 0 : -1));
    if (want != NULL)
        FUZZ_ASSERT(got == want && n == len);
    else
        FUZZ_ASSERT(got == NULL && n == 0);
}

static void op_str(struct handoff_reader *r, struct model *m, size_t buflen)
{
    static char buf[HANDOFF_STR_MAX + 3];   /* the largest buflen, and a guard byte */
    const uint8_t *lenp = model_take(m, 2), *want = NULL;
    size_t len = lenp != NULL ? (size_t)be_get(lenp, 2) : 0;
    int rc;

    if (lenp != NULL && (len > HANDOFF_STR_MAX || len >= buflen))
        m->failed = 1;
    else if (lenp != NULL && (want = model_take(m, len)) != NULL &&
             memchr(want, '\0', len) != NULL) {
        want = NULL;
        m->failed = 1;
    }
    memset(buf, 'x', sizeof(buf));
    rc = handoff_get_str(r, buf, buflen);
    FUZZ_ASSERT(rc == (want != NULL ? 0 : -1));
    if (want != NULL)
        FUZZ_ASSERT(memcmp(buf, want, len) == 0 && buf[len] == '\0');
    else if (buflen > 0)
        FUZZ_ASSERT(buf[0] == '\0');
    /* Nothing is written past the buffer the caller gave. */
    FUZZ_ASSERT(buf[buflen] == 'x');
}

static void fuzz_getters(const uint8_t *ops, size_t nops, const uint8_t *payload, size_t len)
{
    struct handoff_reader r;
    struct model m = { payload, len, 0, 0 };

    handoff_reader_init(&r, len > 0 ? payload : NULL, len);
    for (size_t i = 0; i < nops; i++) {
        unsigned kind = ops[i] & 7, param = ops[i] >> 5;

        switch (kind) {
        case 0: op_int(&r, &m, 1); break;
        case 1: op_int(&r, &m, 2); break;
        case 2: op_int(&r, &m, 4); break;
        case 3: op_int(&r, &m, 8); break;
        case 4: op_bytes(&r, &m, bytes_max[param]); break;
        case 5: op_str(&r, &m, str_buflen[param]); break;
        default:
            FUZZ_ASSERT((handoff_reader_done(&r) == 0) == (!m.failed && m.off == m.len));
            break;
        }
        FUZZ_ASSERT(r.off <= r.len);
        FUZZ_ASSERT(!!r.failed == !!m.failed);
        if (!m.failed)
            FUZZ_ASSERT(r.off == m.off);
    }
    FUZZ_ASSERT((handoff_reader_done(&r) == 0) == (!m.failed && m.off == m.len));
}

/* --- builder round trip -------------------------------------------------- */

enum put_kind { PUT_U8, PUT_U16, PUT_U32, PUT_U64, PUT_BYTES, PUT_STR, PUT_FD, PUT_BIG };

struct put {
    enum put_kind  kind;
    uint64_t       v;          /* integer, fd, or length of BYTES/STR */
    const uint8_t *p;          /* BYTES/STR content; NULL: zeros / 'a's */
};

/* Reads the next n program bytes (fewer at the end). */
static const uint8_t *prog_take(const uint8_t **p, const uint8_t *end, size_t *n)
{
    const uint8_t *start = *p;

    if (*n > (size_t)(end - start))
        *n = (size_t)(end - start);
    *p += *n;
    return start;
}

static uint64_t prog_int(const uint8_t **p, const uint8_t *end, size_t width)
{
    size_t n = width;
    const uint8_t *q = prog_take(p, end, &n);

    return be_get(q, n);
}

/* Parses the builder program; returns the number of puts. */
static size_t parse_program(const uint8_t *p, const uint8_t *end, struct put *puts)
{
    size_t n = 0, big = 0;

    while (p < end) {
        struct put *u = &puts[n++];
        size_t len;

        u->kind = (enum put_kind)(*p++ & 7);
        u->p = NULL;
        switch (u->kind) {
        case PUT_U8: u->v = prog_int(&p, end, 1); break;
        case PUT_U16: u->v = prog_int(&p, end, 2); break;
        case PUT_U32: u->v = prog_int(&p, end, 4); break;
        case PUT_U64: u->v = prog_int(&p, end, 8); break;
        case PUT_FD: u->v = (uint64_t)(int64_t)(int8_t)prog_int(&p, end, 1); break;
        case PUT_BYTES:
        case PUT_STR:
            len = (size_t)prog_int(&p, end, 1);
            u->p = prog_take(&p, end, &len);
            u->v = len;
            break;
        case PUT_BIG:
            /* Odd: a long string of 'a's; even: a large block of zeros.
             * At most two, to bound the memory one input takes. */
            u->v = prog_int(&p, end, 1);
            u->kind = u->v & 1 ? PUT_STR : PUT_BYTES;
            u->v = prog_int(&p, end, 2) << (u->kind == PUT_STR ? 0 : 6);
            if (++big > 2)
                n--;
            break;
        }
    }
    return n;
}

/* The builder's limits: returns the payload bytes u adds, or -1 if it fails. */
static long long model_put(const struct put *u, unsigned *nfds)
{
    switch (u->kind) {
    case PUT_U8: return 1;
    case PUT_U16: return 2;
    case PUT_U32: return 4;
    case PUT_U64: return 8;
    case PUT_BYTES: return u->v > HANDOFF_MAX_PAYLOAD ? -1 : 4 + (long long)u->v;
    case PUT_STR: return u->v > HANDOFF_STR_MAX ? -1 : 2 + (long long)u->v;
    case PUT_FD:
        if ((int64_t)u->v < 0 || *nfds >= HANDOFF_MAX_FDS)
            return -1;
        (*nfds)++;
        return 0;
    default:
        return -1;
    }
}

static void do_put(struct handoff_msg *m, const struct put *u, char *tmp, const uint8_t *zeros)
{
    switch (u->kind) {
    case PUT_U8: handoff_msg_put_u8(m, (uint8_t)u->v); break;
    case PUT_U16: handoff_msg_put_u16(m, (uint16_t)u->v); break;
    case PUT_U32: handoff_msg_put_u32(m, (uint32_t)u->v); break;
    case PUT_U64: handoff_msg_put_u64(m, u->v); break;
    case PUT_FD: handoff_msg_add_fd(m, (int)(int64_t)u->v); break;
    case PUT_BYTES: handoff_msg_put_bytes(m, u->p != NULL ? (const void *)u->p : zeros, u->v); break;
    case PUT_STR:
        /* The builder takes a C string; a NUL in the content ends it. */
        if (u->p != NULL)
            memcpy(tmp, u->p, u->v);
        else
            memset(tmp, 'a', u->v);
        tmp[u->v] = '\0';
        handoff_msg_put_str(m, tmp);
        break;
    default:
        break;
    }
}

static void read_back(struct handoff_reader *r, const struct put *u, char *tmp,
                      const uint8_t *zeros)
{
    const uint8_t *p;
    uint64_t v = 0;
    uint32_t n, v32;
    uint16_t v16;
    uint8_t v8;

    switch (u->kind) {
    case PUT_U8: FUZZ_ASSERT(handoff_get_u8(r, &v8) == 0); v = v8; break;
    case PUT_U16: FUZZ_ASSERT(handoff_get_u16(r, &v16) == 0); v = v16; break;
    case PUT_U32: FUZZ_ASSERT(handoff_get_u32(r, &v32) == 0); v = v32; break;
    case PUT_U64: FUZZ_ASSERT(handoff_get_u64(r, &v) == 0); break;
    case PUT_BYTES:
        FUZZ_ASSERT(handoff_get_bytes(r, &p, &n, HANDOFF_MAX_PAYLOAD) == 0 && n == u->v);
        FUZZ_ASSERT(n == 0 || memcmp(p, u->p != NULL ? u->p : zeros, n) == 0);
        return;
    case PUT_STR:
        FUZZ_ASSERT(handoff_get_str(r, tmp, HANDOFF_STR_MAX + 1) == 0);
        FUZZ_ASSERT(strlen(tmp) == (u->p != NULL ? strnlen((const char *)u->p, u->v) : u->v));
        if (u->p != NULL)
            FUZZ_ASSERT(memcmp(tmp, u->p, strlen(tmp)) == 0);
        return;
    default:
        return;
    }
    FUZZ_ASSERT(v == (u->kind == PUT_U64 ? u->v : u->v & ((1ull << (8 << u->kind)) - 1)));
}

/* STR puts of u->p content add strnlen bytes, not v. */
static long long put_size(const struct put *u, unsigned *nfds)
{
    struct put c = *u;

    if (c.kind == PUT_STR && c.p != NULL)
        c.v = strnlen((const char *)c.p, c.v);
    return model_put(&c, nfds);
}

static void fuzz_builder(const uint8_t *prog, size_t len)
{
    static char tmp[70000];
    static uint8_t *zeros;
    struct handoff_msg m;
    struct handoff_reader r;
    struct handoff_hdr h;
    struct put *puts;
    size_t nputs, i;
    unsigned nfds = 0;
    uint64_t total = 0;
    int failed = 0;
    uint16_t type;
    char why[256];

    if (len < 1)
        return;
    if (zeros == NULL && (zeros = calloc(1, (size_t)0xffff << 6)) == NULL)
        abort();
    type = prog[0];
    puts = calloc(len, sizeof(*puts));
    FUZZ_ASSERT(puts != NULL);
    nputs = parse_program(prog + 1, prog + len, puts);

    FUZZ_ASSERT(handoff_msg_init(&m, type, 7) == 0);
    /* Flags from the type byte: the defined bit alone survives. */
    handoff_msg_set_flags(&m, (uint16_t)(type * 0x0101u));
    for (i = 0; i < nputs; i++) {
        long long add = put_size(&puts[i], &nfds);

        do_put(&m, &puts[i], tmp, zeros);
        if (!failed && (add < 0 || total + (uint64_t)add > HANDOFF_MAX_PAYLOAD))
            failed = 1;
        else if (!failed)
            total += (uint64_t)add;
        FUZZ_ASSERT(!!m.failed == failed);
    }
    FUZZ_ASSERT(handoff_msg_finish(&m) == (failed ? -1 : 0));
    if (!failed) {
        FUZZ_ASSERT(m.len == HANDOFF_HDR_LEN + total && m.nfds == nfds);
        /* Whatever the type, what the builder finishes frames. */
        FUZZ_ASSERT(handoff_hdr_decode(m.buf, &h, why, sizeof(why)) == 0);
        FUZZ_ASSERT(h.type == type && h.seq == 7 && h.len == total && h.nfds == nfds);
        FUZZ_ASSERT(h.flags == ((type * 0x0101u) & HANDOFF_HDR_FLAGS_DEFINED));
        handoff_reader_init(&r, m.buf + HANDOFF_HDR_LEN, m.len - HANDOFF_HDR_LEN);
        for (i = 0; i < nputs; i++)
            read_back(&r, &puts[i], tmp, zeros);
        FUZZ_ASSERT(handoff_reader_done(&r) == 0);
    }
    handoff_msg_free(&m);
    free(puts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t nops, rest;
    uint8_t *payload;

    fuzz_header(data, size);
    if (size == 0)
        return 0;
    nops = data[0];
    if (nops > size - 1)
        nops = size - 1;
    rest = size - 1 - nops;
    payload = fuzz_dup(data + 1 + nops, rest);
    fuzz_getters(data + 1, nops, payload, rest);
    fuzz_builder(payload, rest);
    free(payload);
    return 0;
}
