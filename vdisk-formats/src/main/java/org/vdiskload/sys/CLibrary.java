package org.vdiskload.sys;

import com.sun.jna.NativeLibrary;

/**
 * Loads native libraries for JNA by their soname, which the dynamic linker finds on its own. Every JNA
 * use in vdiskload goes through here, so that the first one skips JNA's own search path:
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

    /** The C library itself, for direct mapping ({@link com.sun.jna.Native#register(Class, NativeLibrary)}). */
    static NativeLibrary instance() {
        return NativeLibrary.getInstance(SONAME);
    }

    /** Another library by its soname (e.g. "libdeflate.so.0"), loaded the same way; throws where it is missing. */
    public static NativeLibrary library(String soname) {
        return NativeLibrary.getInstance(soname);
    }
}
