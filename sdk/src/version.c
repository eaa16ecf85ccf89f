/* version.c - ztb_version(): the version libztb was built as. */
#include <ztb/ztb.h>

#ifndef ZTB_VERSION
#error "ZTB_VERSION must be defined by the build"
#endif

const char *ztb_version(void)
{
    return ZTB_VERSION;
}
