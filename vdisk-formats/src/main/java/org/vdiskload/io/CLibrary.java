package org.vdiskload.io;

import com.sun.jna.Library;
import com.sun.jna.Native;

/**
 * Loads the C library for JNA bindings. By its soname: given plain "c", JNA runs ldconfig in a child
 * process to find it, which costs a tenth of a second at every start.
 */
public final class CLibrary {
    private CLibrary() {}

    /** The C library bound to {@code type}, or null where it cannot be loaded. */
    public static <T extends Library> T load(Class<T> type) {
        for (String name : new String[] {"libc.so.6", "c"}) {
            try {
                return Native.load(name, type);
            } catch (UnsatisfiedLinkError | RuntimeException e) {
                // try the next name
            }
        }
        return null;
    }
}
