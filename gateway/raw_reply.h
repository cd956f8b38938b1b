/* SPDX-License-Identifier: MIT */
/*
 * raw_reply.h - a JSON error answer written straight to a socket, for the
 * places that answer outside libmicrohttpd's response machinery: the
 * acceptor (before any library has the socket) and http.c's body limits
 * (a request cut off while its body is still arriving). Any thread; no
 * state.
 */
#ifndef CRIER_RAW_REPLY_H
#define CRIER_RAW_REPLY_H

/* Sends "HTTP/1.1 <status>" with Connection: close, extra_header (one
 * "Name: value" line, or NULL) and the body {"error": error}. Best effort:
 * one non-blocking send. */
void raw_reply_error(int fd, unsigned status, const char *extra_header, const char *error);

#endif
