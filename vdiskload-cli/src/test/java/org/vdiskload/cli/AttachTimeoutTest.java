package org.vdiskload.cli;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** VDISKLOAD_ATTACH_TIMEOUT: how long attaching waits for the devices (the initramfs sets it for slow boots). */
class AttachTimeoutTest {
    @Test
    void unsetOrEmptyIsTheDefault() throws IOException {
        assertEquals(Losetup.TIMEOUT, Losetup.timeout(null));
        assertEquals(Losetup.TIMEOUT, Losetup.timeout(""));
    }

    @Test
    void wholeSecondsOverrideIt() throws IOException {
        assertEquals(Duration.ofSeconds(600), Losetup.timeout("600"));
        assertEquals(Duration.ofSeconds(1), Losetup.timeout("1"));
        assertEquals(Duration.ofSeconds(86_400), Losetup.timeout("86400"));
    }

    @Test
    void anythingElseIsOneLineNamingIt() {
        for (String bad : new String[] {"0", "-5", "10s", "86401", "999999", "1.5"}) {
            IOException e = assertThrows(IOException.class, () -> Losetup.timeout(bad));
            assertEquals("VDISKLOAD_ATTACH_TIMEOUT=" + bad + ": want whole seconds, 1 to 86400", e.getMessage());
        }
        assertEquals("VDISKLOAD_ATTACH_TIMEOUT=\\x1b[2J: want whole seconds, 1 to 86400",
                assertThrows(IOException.class, () -> Losetup.timeout("\u001b[2J")).getMessage());
    }
}
