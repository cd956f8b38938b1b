/* SPDX-License-Identifier: MIT */
/*
 * sock_bytes.c - bytes written to a socket (sock_bytes.h): Linux's
 * tcp_info.tcpi_bytes_acked (4.2 and later; glibc's netinet/tcp.h lacks the
 * field, hence linux/tcp.h) and SIOCOUTQ.
 */
#include "common/sock_bytes.h"

#include <linux/sockios.h>
#include <netinet/in.h>
#include <stddef.h>
#include <linux/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

uint64_t sock_bytes_written(int fd)
{
    struct tcp_info ti = {0};
    socklen_t len = sizeof(ti);
    int queued = 0;
    if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof(ti.tcpi_bytes_acked))
        return 0;
    if (ioctl(fd, SIOCOUTQ, &queued) != 0 || queued < 0)
        queued = 0;
    return (uint64_t)ti.tcpi_bytes_acked + (uint64_t)queued;
}
