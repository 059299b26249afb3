package org.vdiskload.nbd;

import java.io.IOException;

/**
 * Carries out one validated request and sends its reply. Runs on a connection's worker threads,
 * several at once: implementations keep no per-request state in fields.
 * An IOException before any reply was sent becomes an error reply ({@link ErrorCodes}).
 */
@FunctionalInterface
interface CommandHandler {
    void handle(Request r, ReplyWriter out) throws IOException;
}
