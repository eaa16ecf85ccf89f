/* version.c - ztb_version(): the version libztb was built as (ZTB_VERSION_STRING,
 * from the generated <ztb/version.h>). */
#include <ztb/ztb.h>

const char *ztb_version(void)
{
    return ZTB_VERSION_STRING;
}
