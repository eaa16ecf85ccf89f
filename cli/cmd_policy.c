/* cmd_policy.c - `ztbctl policy`. Being implemented; see the policy issue. */
#include "ztbctl.h"

int cmd_policy(struct ztbctl *ctl, int argc, char **argv)
{
    (void)ctl;
    (void)argc;
    ztbctl_err("%s: not available in this build", argv[0]);
    return ZTBCTL_EXIT_FAIL;
}
