/* SPDX-License-Identifier: MIT */
/*
 * sock_bytes.h - the bytes written to a TCP socket so far (acknowledged by
 * the peer, plus what is still in the send queue), for the access log's
 * bytes_out: the difference between a request's start and its end counts
 * every byte of its answer, headers and a stream's events included. Two
 * system calls; only used while log.access is on.
 *
 * Threading: any thread holding the socket.
 */
#ifndef CRIER_SOCK_BYTES_H
#define CRIER_SOCK_BYTES_H

#include <stdint.h>

/* Bytes written to the TCP socket fd since it opened; 0 when unknown. */
uint64_t sock_bytes_written(int fd);

#endif
