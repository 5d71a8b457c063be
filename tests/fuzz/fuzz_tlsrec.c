/*
 * fuzz_tlsrec.c - baton's TLS record layer (proxy/tls_record.h) after the
 * handshake: proxy_tlsrec_start on fuzz-chosen fields, proxy_tlsrec_read on
 * fuzz-chosen records and on valid records of fuzz-chosen content (so the
 * post-handshake parser sees authentic ciphertext), and the write side.
 *
 * Two states A and B face each other: A's write direction is B's read
 * direction and the other way round (same keys, same sequence numbers).
 *
 * Input: [suite][mode][seqs][ku_after][48 bytes of key material][ops...]
 *   suite    index into the carried suites (mod their number)
 *   mode     bit 0: B's role; bits 1-4: flags for B (start may refuse);
 *            bits 5-7: max_frag 512 << (n mod 6)
 *   seqs     bits 0-3 the A-to-B sequence number, 4-7 the B-to-A one;
 *            15 means 2^64 - 3 (exhaustion)
 * A is always valid; B gets the fuzz-chosen flags and max_frag.
 *   ku_after A's proactive KeyUpdate after that many records (0: default)
 * ops, each one byte then its operands:
 *   0 raw record: a 5-byte header and as many bytes as its length says
 *     (or what is left) go to B as they are
 *   1 [type][len] sealed by A as one record of that content type, to B
 *   2 [len2][bit] A writes application data; B reads every record
 *     (one bit flipped first if bit is odd)
 *   3 [len2] B writes application data (and what it owes); A reads it
 *   4 [level][desc] A sends an alert to B
 *   5 B flushes what it owes; A reads it
 * Operands and data come from the input; data bytes follow the operands.
 *
 * Properties: start either refuses with a reason and leaves the state
 * cleansed, or keys it; a refused read says why; DATA is at most 2^14 bytes
 * inside the record; CLOSED sets PEER_CLOSED; a write produces exactly
 * write_bound bytes and fails only after CLOSE_SENT; while nothing forged
 * has reached B, everything A writes reaches it intact, and everything B
 * writes always reaches A intact (B's answers to forged requests are
 * genuine).
 */
#include <string.h>

#include "fuzz.h"
#include "tls_record_int.h"

static const uint16_t suites[][2] = {
    { 0x0304, 0x1301 }, { 0x0304, 0x1302 }, { 0x0304, 0x1303 },
    { 0x0303, 0xc02b }, { 0x0303, 0xc02f }, { 0x0303, 0x009e }, { 0x0303, 0xc02c },
    { 0x0303, 0xc030 }, { 0x0303, 0x009f }, { 0x0303, 0xcca9 }, { 0x0303, 0xcca8 },
    { 0x0303, 0xccaa },
};

#define BUF_MAX (4 * (PROXY_TLSREC_HDR + PROXY_TLSREC_BODY_MAX + 64) + 65536)

static uint8_t buf[BUF_MAX], data[65536];
static char why[256];

struct input {
    const uint8_t *p;
    size_t n;
};

static unsigned take8(struct input *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static size_t take_bytes(struct input *in, uint8_t *out, size_t want)
{
    size_t n = want < in->n ? want : in->n;

    memcpy(out, in->p, n);
    memset(out + n, 0xa5, want - n);
    in->p += n;
    in->n -= n;
    return want;
}

static uint64_t seq_of(unsigned nibble)
{
    return nibble == 15 ? UINT64_MAX - 3 : nibble;
}

/* One side's state; `mine` keys its write direction, `theirs` its read. */
static void fill_state(struct proxy_tlsrec *r, int suite, int role, const uint8_t *mine,
                       const uint8_t *theirs, uint64_t wr_seq, uint64_t rd_seq)
{
    memset(r, 0, sizeof(*r));
    r->version = suites[suite][0];
    r->suite = suites[suite][1];
    r->role = (uint8_t)role;
    r->max_frag = PROXY_TLSREC_PT_MAX;
    memcpy(r->wr.secret, mine, PROXY_TLSREC_SECRET_MAX);
    memcpy(r->wr.key, mine, PROXY_TLSREC_KEY_MAX);
    memcpy(r->wr.iv, mine + 32, PROXY_TLSREC_IV_LEN);
    memcpy(r->rd.secret, theirs, PROXY_TLSREC_SECRET_MAX);
    memcpy(r->rd.key, theirs, PROXY_TLSREC_KEY_MAX);
    memcpy(r->rd.iv, theirs + 32, PROXY_TLSREC_IV_LEN);
    r->wr.seq = wr_seq;
    r->rd.seq = rd_seq;
    r->wr.nonce = wr_seq * 0x9e3779b97f4a7c15ull;
}

/* Reads one record and checks what any answer must satisfy. */
static enum proxy_tlsrec_rc read_one(struct proxy_tlsrec *r, uint8_t *rec, size_t len,
                                     uint8_t *out, size_t *outlen)
{
    uint8_t *pt = NULL, alert = 0xff;
    size_t ptlen = 0;
    enum proxy_tlsrec_rc rc;

    why[0] = '\0';
    rc = proxy_tlsrec_read(r, rec, len, &pt, &ptlen, &alert, why, sizeof(why));
    switch (rc) {
    case PROXY_TLSREC_DATA:
        FUZZ_ASSERT(ptlen <= PROXY_TLSREC_PT_MAX && alert == 0);
        FUZZ_ASSERT(ptlen == 0 || (pt >= rec && pt + ptlen <= rec + len));
        if (out != NULL) {
            memcpy(out + *outlen, pt, ptlen);
            *outlen += ptlen;
        }
        break;
    case PROXY_TLSREC_CONTROL:
        FUZZ_ASSERT(ptlen == 0 && alert == 0 && r->hslen <= PROXY_TLSREC_HS_MAX);
        break;
    case PROXY_TLSREC_CLOSED:
        FUZZ_ASSERT(r->flags & PROXY_TLSREC_F_PEER_CLOSED);
        break;
    case PROXY_TLSREC_FATAL:
        FUZZ_ASSERT(why[0] != '\0' && ptlen == 0);
        break;
    default:
        FUZZ_ASSERT(!"rc out of range");
    }
    return rc;
}

/* Reads every record of b[0..n) as the header lengths cut them; 1 if none
 * was FATAL. */
static int read_all(struct proxy_tlsrec *r, uint8_t *b, size_t n, uint8_t *out, size_t *outlen)
{
    size_t off = 0, len;

    *outlen = 0;
    while (off < n) {
        len = n - off < PROXY_TLSREC_HDR ? n - off
                                          : PROXY_TLSREC_HDR + ((size_t)b[off + 3] << 8 | b[off + 4]);
        if (off + len > n) {
            /* A flipped length: what is left goes as one record, refused. */
            FUZZ_ASSERT(read_one(r, b + off, n - off, out, outlen) == PROXY_TLSREC_FATAL);
            return 0;
        }
        if (read_one(r, b + off, len, out, outlen) == PROXY_TLSREC_FATAL)
            return 0;
        off += len;
    }
    return 1;
}

/* `from` writes len bytes of data; `to` reads them.  Returns 0 once the
 * pair is over (a side failed). */
static int write_and_read(struct proxy_tlsrec *from, struct proxy_tlsrec *to, size_t len,
                          int flip, unsigned flip_at, int forged)
{
    static uint8_t got[sizeof(data)];
    size_t bound = proxy_tlsrec_write_bound(from, len), gotlen;
    int closed = (from->flags & PROXY_TLSREC_F_CLOSE_SENT) != 0;
    ssize_t n = proxy_tlsrec_write(from, data, len, buf, sizeof(buf), why, sizeof(why));
    int ok;

    if (n < 0) {
        /* Closed, or a sequence number ran out. */
        FUZZ_ASSERT(closed || from->wr.seq > UINT64_MAX - 300);
        return 0;
    }
    FUZZ_ASSERT(!closed && (size_t)n == bound);
    if (flip && n > 0)
        buf[flip_at % (size_t)n] ^= (uint8_t)(1u << (flip_at % 8));
    ok = read_all(to, buf, (size_t)n, got, &gotlen);
    if (!flip && !forged && !(to->flags & PROXY_TLSREC_F_PEER_CLOSED) &&
        to->rd.seq < UINT64_MAX - 300) {
        FUZZ_ASSERT(ok);
        FUZZ_ASSERT(gotlen == len && memcmp(got, data, len) == 0);
    }
    return ok;
}

static int start_pair(struct proxy_tlsrec *a, struct proxy_tlsrec *b, struct input *in)
{
    static uint8_t zero[sizeof(struct proxy_tlsrec)];
    uint8_t keys[2][PROXY_TLSREC_SECRET_MAX];
    int suite = (int)(take8(in) % (sizeof(suites) / sizeof(suites[0])));
    unsigned mode = take8(in), seqs = take8(in), ku_after = take8(in);
    int role = mode & 1;

    take_bytes(in, keys[0], sizeof(keys[0]));
    memcpy(keys[1], keys[0], sizeof(keys[1]));
    keys[1][0] ^= 0x5a;
    fill_state(a, suite, !role, keys[0], keys[1], seq_of(seqs & 15), seq_of(seqs >> 4));
    fill_state(b, suite, role, keys[1], keys[0], seq_of(seqs >> 4), seq_of(seqs & 15));
    a->ku_after = ku_after;
    b->flags = (uint8_t)((mode >> 1) & 0x1f);
    b->max_frag = (uint16_t)(512u << ((mode >> 5) % 6));
    if (b->max_frag > PROXY_TLSREC_PT_MAX)
        b->max_frag = PROXY_TLSREC_PT_MAX;
    FUZZ_ASSERT(proxy_tlsrec_start(a, why, sizeof(why)) == 0);
    why[0] = '\0';
    if (proxy_tlsrec_start(b, why, sizeof(why)) != 0) {
        FUZZ_ASSERT(why[0] != '\0' && memcmp(b, zero, sizeof(zero)) == 0);
        proxy_tlsrec_free(a);
        return -1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t size)
{
    static struct proxy_tlsrec a, b;
    struct input in = { p, size };
    size_t len, gotlen;
    int forged = 0, live = 1;
    uint8_t msg[2];
    ssize_t n;

    if (size < 4 || start_pair(&a, &b, &in) != 0)
        return 0;
    for (int ops = 0; in.n > 0 && live && ops < 64; ops++) {
        switch (take8(&in) % 6) {
        case 0:         /* a raw record */
            take_bytes(&in, buf, PROXY_TLSREC_HDR);
            len = (size_t)buf[3] << 8 | buf[4];
            len = len < in.n ? len : in.n;
            take_bytes(&in, buf + PROXY_TLSREC_HDR, len);
            buf[3] = (uint8_t)(len >> 8);
            buf[4] = (uint8_t)len;
            live = read_one(&b, buf, PROXY_TLSREC_HDR + len, NULL, NULL) != PROXY_TLSREC_FATAL;
            forged = 1;
            break;
        case 1:         /* a sealed record of any content type */
            msg[0] = (uint8_t)take8(&in);
            len = take8(&in) * 4u;
            take_bytes(&in, data, len);
            n = proxy_tlsrec_seal(&a, msg[0], data, len, buf, sizeof(buf), why, sizeof(why));
            if (n < 0)
                live = 0;
            else
                live = read_one(&b, buf, (size_t)n, NULL, NULL) != PROXY_TLSREC_FATAL;
            forged |= msg[0] != PROXY_TLSREC_CT_APPDATA;
            break;
        case 2:         /* A's application data to B */
            len = take8(&in) << 8;
            len |= take8(&in);
            msg[1] = (uint8_t)take8(&in);
            take_bytes(&in, data, len);
            live = write_and_read(&a, &b, len, msg[1] & 1, (unsigned)msg[1] * 131u, forged);
            break;
        case 3:         /* B's application data (and what it owes) to A */
            len = take8(&in) << 4;
            take_bytes(&in, data, len);
            live = write_and_read(&b, &a, len, 0, 0, 0);
            break;
        case 4:         /* an alert from A */
            msg[0] = (uint8_t)take8(&in);
            msg[1] = (uint8_t)take8(&in);
            n = proxy_tlsrec_alert(&a, msg[0], msg[1], buf, sizeof(buf), why, sizeof(why));
            if (n > 0)
                live = read_all(&b, buf, (size_t)n, NULL, &gotlen);
            break;
        case 5:         /* what B owes, to A */
            n = proxy_tlsrec_flush_control(&b, buf, sizeof(buf), why, sizeof(why));
            FUZZ_ASSERT(n >= 0 || b.wr.seq > UINT64_MAX - 300);
            if (n > 0)
                live = read_all(&a, buf, (size_t)n, NULL, &gotlen);
            break;
        }
    }
    proxy_tlsrec_free(&a);
    proxy_tlsrec_free(&b);
    return 0;
}
