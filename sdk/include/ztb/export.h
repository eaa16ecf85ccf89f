/*
 * ztb/export.h - symbol visibility for libztb.
 *
 * libztb is built with -fvisibility=hidden; only declarations marked ZTB_API
 * are exported from the shared library. ZTB_WUR marks results that must be
 * checked (everything that verifies something).
 */
#ifndef ZTB_EXPORT_H
#define ZTB_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define ZTB_API __attribute__((visibility("default")))
#define ZTB_WUR __attribute__((warn_unused_result))
#else
#define ZTB_API
#define ZTB_WUR
#endif

#endif /* ZTB_EXPORT_H */
