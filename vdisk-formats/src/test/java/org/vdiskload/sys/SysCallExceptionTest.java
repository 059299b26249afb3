package org.vdiskload.sys;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A failed C library call and the errno it carries. */
class SysCallExceptionTest {
    @TempDir
    Path dir;

    @Test
    void aFailedCallCarriesItsErrnoAndNamesTheCall() throws Exception {
        Libc.require();
        Path missing = dir.resolve("missing");
        assertEquals(-1, Libc.open(missing.toString(), Libc.O_RDONLY | Libc.O_CLOEXEC));
        SysCallException e = Libc.failure("open " + missing);
        assertEquals(Errno.ENOENT, e.errno());
        assertEquals("open " + missing, e.call());
        assertTrue(e.getMessage().startsWith("open " + missing + ": ") && e.getMessage().endsWith(" (errno 2)"), e.getMessage());
    }
}
