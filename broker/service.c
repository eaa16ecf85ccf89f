/*
 * service.c - sd_notify messages to the service manager (see service.h).
 *
 * sd_notify(0, ...) leaves $NOTIFY_SOCKET in the environment: the broker
 * sends again at stop and for every watchdog ping. Children (the signer,
 * the private redis-server) inherit it; with the unit's default
 * NotifyAccess=main systemd ignores anything they might send.
 */
#include <stdio.h>

#include <string.h>
#include <syslog.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include "broker/service.h"
#include "common/log.h"

void service_ready(unsigned port)
{
    (void)sd_notifyf(0, "READY=1\nSTATUS=serving on port %u", port);
}

void service_stopping(void)
{
    (void)sd_notify(0, "STOPPING=1\nSTATUS=draining");
}

void service_reloading(int reloading)
{
    (void)sd_notify(0, reloading ? "RELOADING=1" : "READY=1");
}

uint64_t service_watchdog_interval_ms(void)
{
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return 0;
    return usec / 2000 > 0 ? usec / 2000 : 1;
}

void service_watchdog(void)
{
    (void)sd_notify(0, "WATCHDOG=1");
}

static int syslog_priority(ztb_log_level level)
{
    switch (level) {
    case ZTB_LOG_DEBUG: return LOG_DEBUG;
    case ZTB_LOG_INFO: return LOG_INFO;
    case ZTB_LOG_WARN: return LOG_WARNING;
    default: return LOG_ERR;
    }
}

/* The line without its '\n'. */
static int line_len(const char *line, size_t len)
{
    if (len > 0 && line[len - 1] == '\n')
        len--;
    return (int)len;
}

static void to_syslog(ztb_log_level level, const char *line, size_t len)
{
    syslog(syslog_priority(level), "%.*s", line_len(line, len), line);
}

static void to_journald(ztb_log_level level, const char *line, size_t len)
{
    (void)sd_journal_send("MESSAGE=%.*s", line_len(line, len), line, "PRIORITY=%d",
                          syslog_priority(level), "SYSLOG_IDENTIFIER=ztb-broker", NULL);
}

ztb_err service_log_target(const char *target)
{
    if (strcmp(target, "stderr") == 0) {
        ztb_log_set_sink(NULL);
    } else if (strcmp(target, "syslog") == 0) {
        openlog("ztb-broker", LOG_PID | LOG_NDELAY, LOG_DAEMON);
        ztb_log_set_sink(to_syslog);
    } else if (strcmp(target, "journald") == 0) {
        ztb_log_set_sink(to_journald);
    } else {
        return ZTB_ERR_INVALID_ARG;
    }
    return ZTB_OK;
}
