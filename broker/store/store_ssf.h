/*
 * store_ssf.h - the SSF event streams receivers manage (docs/signals.md,
 * "Stream management") in Redis: one key family under the hash tag {ssf}
 * (wire/wire.h, ZTB_WIRE_SSF_*), so every script is single-slot.
 *
 * A stream is one field of ZTB_WIRE_SSF_STREAMS_KEY: its id and its record
 * (JSON written by ssf_stream.c, which names its owner, the receiver's agent
 * name). ZTB_WIRE_SSF_OWNERS_KEY counts each owner's streams, so the
 * per-receiver limit holds atomically. Every change that names an owner is
 * checked against the record's owner inside the script: a receiver cannot
 * change or delete another's stream, however it guesses ids.
 *
 * Must never: hand a record to anyone but ssf_stream.c's reader (it holds
 * the receiver's authorization_header, a secret).
 */
#ifndef ZTB_BROKER_STORE_SSF_H
#define ZTB_BROKER_STORE_SSF_H

#include <stddef.h>

#include <ztb/error.h>

#define STORE_SSF_ID_MAX     40
#define STORE_SSF_RECORD_MAX 16384

/* 1 if id is a stream id as ztb makes them: "ssf_" and 22 base64url characters. */
int store_ssf_id_ok(const char *id);

/*
 * Add stream id with its record for owner, unless owner has max_per_owner
 * streams already (STATE) or there are max_total streams (TOO_LARGE).
 * EXISTS if the id is taken; UNAVAILABLE if Redis cannot answer.
 */
ztb_err store_ssf_create(const char *owner, const char *id, const char *record,
                         unsigned max_per_owner, unsigned max_total);

/* The record of stream id (a new string the caller frees with
 * ztb_free_secret_str), or NOT_FOUND. */
ztb_err store_ssf_get(const char *id, char **record);

/* Replace the record of owner's stream id (NOT_FOUND if there is none or
 * it is another owner's). */
ztb_err store_ssf_replace(const char *owner, const char *id, const char *record);

/* Delete owner's stream id (NOT_FOUND as above). */
ztb_err store_ssf_delete(const char *owner, const char *id);

/* Every stream's record: *records (n new strings, each and the array freed
 * with store_ssf_list_free). */
ztb_err store_ssf_list(char ***records, size_t *n);
void store_ssf_list_free(char **records, size_t n);

/* 1 in *allowed if stream id may have a verification event now, and then
 * none for the next ms milliseconds. */
ztb_err store_ssf_verify_throttle(const char *id, unsigned ms, int *allowed);

/* Give back the slot store_ssf_verify_throttle took, for a verification
 * that was not sent after all (the delivery queue refused it). */
ztb_err store_ssf_verify_release(const char *id);

#endif /* ZTB_BROKER_STORE_SSF_H */
