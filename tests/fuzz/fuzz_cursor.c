/*
 * fuzz_cursor.c - drive the cursor with a program read from the input.
 *
 * The first half of the input is a list of operations, the second the data
 * they read. Checks, through the cursor's own functions only: the position
 * never passes the end, a failed operation never moves the cursor, and
 * every span lies inside the data.
 */
#include <stdint.h>
#include <stdlib.h>

#include "common/cursor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_span(const uint8_t *data, size_t len, ztb_span s)
{
    if (s.len == 0)
        return;
    if (s.ptr < data || s.ptr + s.len > data + len)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t half = size / 2;
    const uint8_t *ops = data;
    ztb_cursor c;
    ztb_cursor_init(&c, data + half, size - half);
    for (size_t i = 0; i + 1 < half; i += 2) {
        uint8_t op = ops[i] % 12, arg = ops[i + 1];
        size_t before = ztb_cursor_mark(&c);
        ztb_err rv = ZTB_OK;
        ztb_span s = {0};
        uint8_t tmp[256];
        uint8_t b8;
        uint16_t b16;
        uint32_t b32;
        switch (op) {
        case 0: rv = ztb_cursor_read(&c, tmp, arg); break;
        case 1: rv = ztb_cursor_read_u8(&c, &b8); break;
        case 2: rv = ztb_cursor_read_u16be(&c, &b16); break;
        case 3: rv = ztb_cursor_read_u32be(&c, &b32); break;
        case 4: rv = ztb_cursor_skip(&c, arg % 2 ? arg : SIZE_MAX - arg); break;
        case 5: rv = ztb_cursor_take(&c, arg, &s); break;
        case 6: rv = ztb_cursor_take_until(&c, arg, &s); break;
        case 7: rv = ztb_cursor_expect(&c, ops, arg % (i + 1)); break;
        case 8: rv = ztb_cursor_peek_u8(&c, &b8); break;
        case 9: rv = ztb_cursor_unread(&c, arg % 2 ? arg : SIZE_MAX - arg); break;
        case 10:
            s = ztb_cursor_since(&c, arg);
            if (s.len > 0 && s.ptr + s.len != ztb_cursor_ahead(&c).ptr)
                abort();
            break;
        default: ztb_cursor_take_rest(&c, &s); break;
        }
        size_t pos = ztb_cursor_mark(&c);
        if (pos > size - half || ztb_cursor_remaining(&c) != size - half - pos)
            abort();
        if (rv != ZTB_OK && pos != before)
            abort();
        if (rv == ZTB_OK)
            check_span(data + half, size - half, s);
    }
    return 0;
}
