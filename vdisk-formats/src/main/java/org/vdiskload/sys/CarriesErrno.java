package org.vdiskload.sys;

/** A failure that knows the errno it stands for (or 0: its cause knows); read by {@link Errno#of}. */
public interface CarriesErrno {
    int errno();
}
