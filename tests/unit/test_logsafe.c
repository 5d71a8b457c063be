/*
 * test_logsafe.c - escaping of outside values for log lines: every byte
 * value, each mode, hostile strings (a forged log line, escape sequences),
 * and the bound (cut only between escapes, marked with "...").
 */
#include <stdio.h>
#include <string.h>

#include "logsafe.h"
#include "testutil.h"

static char out[4096];

static const char *esc(const void *p, size_t n, enum proxy_logsafe_mode mode)
{
    proxy_logsafe_mem(out, sizeof(out), p, n, mode);
    return out;
}

/* Only printable ASCII (and '\n' where the mode keeps it). */
static int printable(const char *s, int newline_ok)
{
    for (; *s != '\0'; s++)
        if (((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e) && !(newline_ok && *s == '\n'))
            return 0;
    return 1;
}

/* Reverses the escaping (for round trips); returns the length. */
static size_t unescape(const char *s, unsigned char *dst)
{
    size_t n = 0;
    unsigned v;

    while (*s != '\0') {
        if (s[0] == '\\' && s[1] == 'x' && sscanf(s + 2, "%2x", &v) == 1) {
            dst[n++] = (unsigned char)v;
            s += 4;
        } else if (s[0] == '\\' && s[1] != '\0') {
            dst[n++] = (unsigned char)s[1];
            s += 2;
        } else {
            dst[n++] = (unsigned char)*s++;
        }
    }
    return n;
}

static void test_each_byte(void)
{
    char want[8];
    int bad = 0;

    for (unsigned c = 0; c < 256; c++) {
        unsigned char b = (unsigned char)c;

        if (c == '\\' || c == '"')
            snprintf(want, sizeof(want), "\\%c", (char)c);
        else if (c < 0x20 || c > 0x7e)
            snprintf(want, sizeof(want), "\\x%02x", c);
        else
            snprintf(want, sizeof(want), "%c", (char)c);
        if (strcmp(esc(&b, 1, PROXY_LOGSAFE_TEXT), want) != 0) {
            printf("byte 0x%02x: got '%s', want '%s'\n", c, out, want);
            bad++;
        }
    }
    CHECK_U64(bad, 0);
}

static void test_modes(void)
{
    CHECK_STR(esc("a b", 3, PROXY_LOGSAFE_TEXT), "a b");
    CHECK_STR(esc("a b", 3, PROXY_LOGSAFE_FIELD), "a\\x20b");
    CHECK_STR(esc("a\nb\r", 4, PROXY_LOGSAFE_TEXT), "a\\x0ab\\x0d");
    CHECK_STR(esc("a\nb\r", 4, PROXY_LOGSAFE_LINES), "a\nb\\x0d");
    /* A Windows path in an error reads as written at a terminal; control
     * bytes are still escaped there. */
    CHECK_STR(esc("C:\\x \"y\"\n\x1b", 10, PROXY_LOGSAFE_TERMINAL), "C:\\x \"y\"\n\\x1b");
    CHECK_STR(esc("C:\\x", 4, PROXY_LOGSAFE_LINES), "C:\\\\x");
    CHECK_STR(esc("x=\"1\" \\", 7, PROXY_LOGSAFE_FIELD), "x=\\\"1\\\"\\x20\\\\");
    /* The filter leaves escapes made earlier as they are. */
    CHECK_STR(esc("sni=a\\x0ab \"q\"\n", 15, PROXY_LOGSAFE_FILTER), "sni=a\\x0ab \"q\"\\x0a");
    CHECK_STR(esc("a\0b", 3, PROXY_LOGSAFE_TEXT), "a\\x00b");
    CHECK_STR(esc("", 0, PROXY_LOGSAFE_FIELD), "");
    CHECK_STR(proxy_logsafe(out, sizeof(out), NULL, PROXY_LOGSAFE_FIELD), "-");
    CHECK_STR(proxy_logsafe(out, sizeof(out), "h2", PROXY_LOGSAFE_FIELD), "h2");
}

static void test_hostile(void)
{
    static const char forged[] =
        "h2\n2026-01-01T00:00:00.000Z baton[1] info: access client=203.0.113.66:1 "
        "listener=web\x1b[2K\x1b]0;title\x07\x9b" "31m\xc2\x9b\xff\xfe\x7f";
    unsigned char back[sizeof(forged)];
    size_t n;

    esc(forged, sizeof(forged) - 1, PROXY_LOGSAFE_FIELD);
    CHECK(printable(out, 0));
    CHECK(strchr(out, ' ') == NULL);
    CHECK(strstr(out, "\\x0a2026-01-01T00:00:00.000Z\\x20baton[1]") != NULL);
    CHECK(strstr(out, "\\x1b[2K\\x1b]0;title\\x07\\x9b31m\\xc2\\x9b\\xff\\xfe\\x7f") != NULL);
    n = unescape(out, back);
    CHECK_U64(n, sizeof(forged) - 1);
    CHECK(memcmp(back, forged, sizeof(forged) - 1) == 0);
    esc(forged, sizeof(forged) - 1, PROXY_LOGSAFE_LINES);
    CHECK(printable(out, 1));
    CHECK(strstr(out, "h2\n2026") != NULL);
}

static void test_bound(void)
{
    char small[16], big[70000];
    unsigned char back[70000];
    size_t n;

    /* Fits exactly: no marker. */
    CHECK_U64(proxy_logsafe_mem(small, sizeof(small), "0123456789abcde", 15, PROXY_LOGSAFE_TEXT),
              15);
    CHECK_STR(small, "0123456789abcde");
    /* One byte too many: cut, marked, still within the buffer. */
    CHECK_U64(proxy_logsafe_mem(small, sizeof(small), "0123456789abcdef", 16, PROXY_LOGSAFE_TEXT),
              15);
    CHECK_STR(small, "0123456789ab...");
    /* Never inside an escape: whole \xHH or nothing. */
    proxy_logsafe_mem(small, sizeof(small), "abcdefghij\n\n\n", 13, PROXY_LOGSAFE_TEXT);
    CHECK_STR(small, "abcdefghij...");
    proxy_logsafe_mem(small, sizeof(small), "abcdefgh\n\n", 10, PROXY_LOGSAFE_TEXT);
    CHECK_STR(small, "abcdefgh\\x0a...");
    /* 8 backslashes: 6 escaped ones fit with the marker. */
    proxy_logsafe_mem(small, sizeof(small), "\\\\\\\\\\\\\\\\", 8, PROXY_LOGSAFE_TEXT);
    CHECK_STR(small, "\\\\\\\\\\\\\\\\\\\\\\\\...");
    /* Tiny buffers. */
    CHECK_U64(proxy_logsafe_mem(small, 1, "abc", 3, PROXY_LOGSAFE_TEXT), 0);
    CHECK_STR(small, "");
    CHECK_U64(proxy_logsafe_mem(small, 3, "abc", 3, PROXY_LOGSAFE_TEXT), 2);
    CHECK_STR(small, "..");
    CHECK_U64(proxy_logsafe_mem(small, 0, "abc", 3, PROXY_LOGSAFE_TEXT), 0);
    /* 64 KiB of controls into a value's room. */
    memset(big, '\n', sizeof(big));
    n = proxy_logsafe_mem(out, PROXY_LOGSAFE_BUF, big, 65536, PROXY_LOGSAFE_FIELD);
    CHECK(n < PROXY_LOGSAFE_BUF);
    CHECK_U64(strlen(out), n);
    CHECK(printable(out, 0));
    CHECK(n >= 3 && strcmp(out + n - 3, "...") == 0);
    CHECK_U64((n - 3) % 4, 0);
    /* A value that fits round-trips exactly. */
    for (size_t i = 0; i < 65536; i++)
        big[i] = (char)(i * 7 + 3);
    n = proxy_logsafe_mem(big + 65536, 4 * 256 + 1, big, 256, PROXY_LOGSAFE_FIELD);
    CHECK(n <= 4 * 256);
    CHECK_U64(unescape(big + 65536, back), 256);
    CHECK(memcmp(back, big, 256) == 0);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    test_each_byte();
    test_modes();
    test_hostile();
    test_bound();
    return test_summary("test_logsafe");
}
