package org.vdiskload.io;

import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;

/**
 * Loads the C library for JNA bindings, by its soname, which the dynamic linker finds on its own.
 * Every JNA use in vdiskload goes through here, so that the first one skips JNA's own search path:
 * NativeLibrary's static initializer builds it (unless "jna.platform.library.path" is set) by running
 * {@code ldconfig -p} in a child process, tens of milliseconds at every start, for a path that a
 * library loaded by soname never needs.
 */
public final class CLibrary {
    private static final String SONAME = "libc.so.6";
    private static final String PLATFORM_PATH = "jna.platform.library.path";

    static {
        if (System.getProperty(PLATFORM_PATH) == null) System.setProperty(PLATFORM_PATH, "");
    }

    private CLibrary() {}

    /** The C library itself, for direct mapping ({@link Native#register(Class, NativeLibrary)}). */
    public static NativeLibrary instance() {
        return NativeLibrary.getInstance(SONAME);
    }

    /** Another library by its soname (e.g. "libdeflate.so.0"), loaded the same way; throws where it is missing. */
    public static NativeLibrary library(String soname) {
        return NativeLibrary.getInstance(soname);
    }

    /** The C library bound to {@code type}, or null where it cannot be loaded. */
    public static <T extends Library> T load(Class<T> type) {
        for (String name : new String[] {SONAME, "c"}) {
            try {
                return Native.load(name, type);
            } catch (UnsatisfiedLinkError | RuntimeException e) {
                // try the next name
            }
        }
        return null;
    }
}
