package org.vdiskload.format.qcow2;

/** A range of the image file: a structure's bytes, or clusters to drop a reference from. */
record HostRange(long offset, long length) {
    long end() {
        return offset + length;
    }
}
