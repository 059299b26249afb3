package org.vdiskload.nbd;

import java.io.IOException;

/** The client broke the protocol in a way that cannot be answered: the server drops the connection. */
final class ProtocolException extends IOException {
    ProtocolException(String message) {
        super(message);
    }
}
