/* cmd_ca.c - `ztbctl ca`. Being implemented; see the ca issue. */
#include "ztbctl.h"

int cmd_ca(struct ztbctl *ctl, int argc, char **argv)
{
    (void)ctl;
    (void)argc;
    ztbctl_err("%s: not available in this build", argv[0]);
    return ZTBCTL_EXIT_FAIL;
}
