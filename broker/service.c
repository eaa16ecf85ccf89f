/*
 * service.c - sd_notify messages to the service manager (see service.h).
 *
 * sd_notify(0, ...) leaves $NOTIFY_SOCKET in the environment: the broker
 * sends again at stop and for every watchdog ping. Children (the signer,
 * the private redis-server) inherit it; with the unit's default
 * NotifyAccess=main systemd ignores anything they might send.
 */
#include <stdio.h>

#include <systemd/sd-daemon.h>

#include "broker/service.h"

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
