/*
 * sdk-version - the smallest program built against an installed libztb:
 * prints the library version and one error description. Used by the test
 * that checks `cmake --install`, pkg-config and find_package(ztb).
 *
 *   cc main.c $(pkg-config --cflags --libs ztb) -o sdk-version
 */
#include <stdio.h>

#include <ztb/ztb.h>

int main(void)
{
    printf("libztb %s: %s\n", ztb_version(), ztb_strerror(ZTB_ERR_SIGNATURE));
    return 0;
}
