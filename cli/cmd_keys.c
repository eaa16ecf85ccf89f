/* cmd_keys.c - `ztbctl keys`. Being implemented; see the keys issue. */
#include "ztbctl.h"

int cmd_keys(struct ztbctl *ctl, int argc, char **argv)
{
    (void)ctl;
    (void)argc;
    ztbctl_err("%s: not available in this build", argv[0]);
    return ZTBCTL_EXIT_FAIL;
}
