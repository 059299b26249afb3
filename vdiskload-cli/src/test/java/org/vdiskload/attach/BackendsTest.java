package org.vdiskload.attach;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The registry's choices, on backends whose availability the test sets: auto takes the first that is there. */
class BackendsTest {
    /** A backend kind that only answers for its name and availability: the registry asks nothing else. */
    private record Named(String name, boolean available) implements Backend.Kind {
        @Override
        public Backend create(StateDir state) {
            throw new UnsupportedOperationException("not started by these tests");
        }

        @Override
        public void releaseOrphan(Attachment a, StateDir state) {
        }
    }

    private final Named kmod = new Named("kmod", false), nbd = new Named("nbd", true), fuse = new Named("fuse", true);
    private final Backends backends = new Backends(List.of(kmod, nbd, fuse));

    @Test
    void autoTakesTheFirstAvailableInOrder() throws Exception {
        assertSame(nbd, backends.choose("auto"));
        assertSame(fuse, new Backends(List.of(new Named("nbd", false), fuse)).choose("auto"));
        IOException none = assertThrows(IOException.class, () -> new Backends(List.of(kmod, new Named("nbd", false))).choose("auto"));
        assertEquals("no backend can attach images on this system (tried kmod, nbd)", none.getMessage());
    }

    @Test
    void aNamedBackendIsTakenAsAskedAvailableOrNot() throws Exception {
        assertSame(kmod, backends.choose("kmod"), "its own start says why it cannot run");
        assertSame(fuse, backends.named("fuse"));
        assertEquals(List.of("kmod", "nbd", "fuse"), backends.names());
        IOException e = assertThrows(IOException.class, () -> backends.named("ublk"));
        assertEquals("no backend named 'ublk' (built: kmod, nbd, fuse)", e.getMessage());
    }

    @Test
    void namesAreUnique() {
        assertThrows(IllegalArgumentException.class, () -> new Backends(List.of(nbd, new Named("nbd", false))));
        assertThrows(IllegalArgumentException.class, () -> new Backends(List.of(new Named("auto", true))));
    }
}
