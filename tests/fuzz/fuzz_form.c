/*
 * fuzz_form.c - the urlencoded form parser on arbitrary bodies. Checks, beyond
 * memory safety: no two parameters share a name, every value is as long as
 * it says, nothing decoded contains a NUL, every name and value is valid
 * UTF-8, and every refusal has a description.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/http/form.h"
#include "common/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const allowed[] = {"grant_type", "scope", "a", "b", "c", NULL};
    struct form f;
    const char *const *lists[] = {allowed, NULL};
    for (int k = 0; k < 2; k++) {
        if (form_parse(&f, data, size, lists[k]) != ZTB_OK) {
            if (form_error(&f)[0] == '\0')
                abort();
            continue;
        }
        for (size_t i = 0; i < f.n; i++) {
            if (strlen(f.p[i].value) != f.p[i].value_len)
                abort();
            if (!ztb_utf8_valid(f.p[i].value, f.p[i].value_len) ||
                !ztb_utf8_valid(f.p[i].name, strlen(f.p[i].name)))
                abort();
            for (size_t j = i + 1; j < f.n; j++)
                if (strcmp(f.p[i].name, f.p[j].name) == 0)
                    abort();
        }
        form_free(&f);
    }
    return 0;
}
