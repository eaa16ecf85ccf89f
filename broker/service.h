/*
 * service.h - telling the service manager (systemd) how the broker is doing:
 * READY=1 once it serves, STOPPING=1 when it starts to drain, RELOADING=1
 * around a SIGHUP reload, and WATCHDOG=1 pings when the unit sets
 * WatchdogSec (libsystemd's sd_notify; without $NOTIFY_SOCKET every call is
 * a no-op, so the broker runs the same under any other supervisor).
 */
#ifndef ZTB_BROKER_SERVICE_H
#define ZTB_BROKER_SERVICE_H

#include <ztb/error.h>

#include <stdint.h>

/* READY=1 with a STATUS line naming the port. */
void service_ready(unsigned port);

/* STOPPING=1: the drain has begun. */
void service_stopping(void);

/* RELOADING=1 (reloading 1) or READY=1 again (0) around a SIGHUP reload. */
void service_reloading(int reloading);

/*
 * How often to send WATCHDOG=1, in milliseconds: half the unit's
 * WatchdogSec, or 0 when no watchdog is asked for.
 */
uint64_t service_watchdog_interval_ms(void);

/* WATCHDOG=1: the main loop is alive. */
void service_watchdog(void);

/*
 * Send the broker's log to target: "stderr" (the default: under systemd the
 * journal takes stderr anyway), "syslog" (syslog(3), facility daemon,
 * identifier ztb-broker) or "journald" (sd_journal_send: MESSAGE, PRIORITY,
 * SYSLOG_IDENTIFIER). INVALID_ARG for another name.
 */
ztb_err service_log_target(const char *target);

#endif /* ZTB_BROKER_SERVICE_H */
