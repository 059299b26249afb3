package org.vdiskload.sys;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The bindings load as a whole: one method JNA's direct mapping cannot bind leaves every call unbound. */
class LibcTest {
    @Test
    void everyCallIsBound() throws Exception {
        Libc.require();
        assertTrue(Libc.available());
    }

    @Test
    void aFailedCallLeavesItsErrno() {
        assertEquals(-1, Libc.prctl(-1, 0, 0, 0, 0));
        assertEquals(Errno.EINVAL, Libc.errno());
    }
}
