/*
 * sdk-version - the smallest program built against an installed libztb:
 * prints the version it was compiled against (<ztb/version.h>), the one it
 * runs with (ztb_version()) and one error description. Used by the test
 * that checks `cmake --install`, pkg-config and find_package(ztb), shared
 * and static.
 *
 *   cc main.c $(pkg-config --cflags --libs ztb) -o sdk-version
 *   cc main.c $(pkg-config --cflags ztb) /usr/local/lib/libztb.a \
 *      $(pkg-config --static --libs-only-l ztb) -o sdk-version   (static)
 */
#include <stdio.h>
#include <string.h>

#include <ztb/ztb.h>

#if !defined(ZTB_VERSION_NUM) || ZTB_VERSION_NUM < ZTB_VERSION_ENCODE(0, 1, 0)
#error "needs libztb 0.1.0 or later"
#endif

int main(void)
{
    printf("libztb %s: %s\n", ztb_version(), ztb_strerror(ZTB_ERR_SIGNATURE));
    printf("compiled against %d.%d.%d (%s)\n", ZTB_VERSION_MAJOR, ZTB_VERSION_MINOR,
           ZTB_VERSION_PATCH, ZTB_VERSION_STRING);
    /* a program may refuse to run with another library than it was built for */
    return strcmp(ztb_version(), ZTB_VERSION_STRING) == 0 ? 0 : 1;
}
