/* SPDX-License-Identifier: MIT */
/*
 * client_addr.c - the client address for log lines (see client_addr.h).
 */
#include "common/client_addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* Copies text[0..len) into out when it is an IPv4 or IPv6 literal. */
static bool copy_if_ip(const char *text, size_t len, char *out, size_t cap)
{
    char buf[INET6_ADDRSTRLEN + 1];
    unsigned char bin[sizeof(struct in6_addr)];
    while (len && (*text == ' ' || *text == '\t')) {
        text++;
        len--;
    }
    while (len && (text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    if (!len || len >= sizeof(buf) || len >= cap)
        return false;
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, bin) != 1 && inet_pton(AF_INET6, buf, bin) != 1)
        return false;
    memcpy(out, buf, len + 1);
    return true;
}

static void peer_text(const struct sockaddr *peer, char *out, size_t cap)
{
    const void *a = NULL;
    if (peer && peer->sa_family == AF_INET)
        a = &((const struct sockaddr_in *)(const void *)peer)->sin_addr;
    else if (peer && peer->sa_family == AF_INET6)
        a = &((const struct sockaddr_in6 *)(const void *)peer)->sin6_addr;
    if (!a || !inet_ntop(peer->sa_family, a, out, (socklen_t)cap))
        snprintf(out, cap, "unknown");
}

void client_addr_format(const struct sockaddr *peer, const char *x_real_ip,
                        const char *x_forwarded_for, bool trust, char *out, size_t cap)
{
    if (!cap)
        return;
    if (trust && x_real_ip && copy_if_ip(x_real_ip, strlen(x_real_ip), out, cap))
        return;
    if (trust && x_forwarded_for) {
        const char *last = strrchr(x_forwarded_for, ',');
        last = last ? last + 1 : x_forwarded_for;
        if (copy_if_ip(last, strlen(last), out, cap))
            return;
    }
    peer_text(peer, out, cap);
}
