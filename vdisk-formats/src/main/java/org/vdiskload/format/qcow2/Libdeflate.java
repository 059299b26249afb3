package org.vdiskload.format.qcow2;

import com.sun.jna.Native;
import com.sun.jna.Pointer;
import org.vdiskload.sys.CLibrary;

/**
 * Raw deflate decoding with libdeflate (Debian's libdeflate0), through JNA's direct mapping: a whole
 * compressed cluster in one call, about twice as fast as zlib's inflate, which is what serving and
 * converting compressed qcow2 spend most of their time in. Optional: where the library is missing,
 * {@link #AVAILABLE} is false and callers inflate with java.util.zip.
 */
final class Libdeflate {
    private static final int SUCCESS = 0;

    /** Whether the library is loaded (and size_t is 64-bit, as the mapping below assumes). */
    static final boolean AVAILABLE = bind();

    private Libdeflate() {}

    private static native Pointer libdeflate_alloc_decompressor();

    private static native void libdeflate_free_decompressor(Pointer decompressor);

    /** With {@code actualOut} null, success means exactly {@code outAvail} bytes were decoded and the stream ended. */
    private static native int libdeflate_deflate_decompress(Pointer decompressor, byte[] in, long inBytes, byte[] out,
                                                            long outAvail, Pointer actualOut);

    private static boolean bind() {
        if (Native.SIZE_T_SIZE != 8) return false;
        try {
            Native.register(Libdeflate.class, CLibrary.library("libdeflate.so.0"));
            return true;
        } catch (UnsatisfiedLinkError | RuntimeException e) {
            return false;
        }
    }

    /**
     * Decodes the raw deflate stream at the start of {@code in} into all of {@code out}. True only when the
     * stream's final block ends exactly with {@code out} full (bytes after it in {@code in} are ignored);
     * anything else (bad data, a stream shorter or longer than {@code out}) is false, with {@code out}
     * undefined, for the caller to decide with zlib's rules.
     */
    static boolean decompressExactly(byte[] in, byte[] out) {
        Pointer d = libdeflate_alloc_decompressor();
        if (d == null) return false;
        try {
            return libdeflate_deflate_decompress(d, in, in.length, out, out.length, null) == SUCCESS;
        } finally {
            libdeflate_free_decompressor(d);
        }
    }
}
