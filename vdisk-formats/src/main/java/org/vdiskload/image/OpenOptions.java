package org.vdiskload.image;

/**
 * How to open an image. Immutable; start from {@link #DEFAULTS} and use the withers.
 *
 * @param format         the top image's format, or null to detect it by content
 * @param snapshot       an internal snapshot (name or id) to read instead of the active layer, or null
 * @param backingFormat  the format to assume for a backing file the image does not name a format for,
 *                       or null (then only raw is accepted, and only if it does not look like a format)
 * @param cacheBytes     the metadata-cache budget per layer
 * @param writable       open for writing (the top layer only; backing files stay read-only)
 * @param withBacking    open the backing chain; false opens the top layer alone (for info, check,
 *                       resize: they must work when a backing file is missing)
 * @param flush          let writers flush to the disk where their crash safety needs it (and on
 *                       {@code flush()}); false is qemu's cache=unsafe, only for an image nobody
 *                       relies on until the caller is done with it: convert's new output
 * @param refs           which files the images' references may lead to (backing files, extents, parent
 *                       locators, layout sources), throughout the chain
 * @param metadataWriteThrough  writes return only once the metadata they changed is in the file
 *                       ({@link DiskImage#setMetadataWriteThrough}); for a writable open
 * @param repair         opened by check to repair it: a qcow2 marked corrupt opens for writing (qemu's BDRV_O_CHECK)
 * @param fullOverlapCheck  check writes against every metadata structure, also those that cost reading at open
 *                       (a qcow2's snapshot L2 tables: qemu's overlap-check=all); otherwise against the rest
 */
public record OpenOptions(String format, String snapshot, String backingFormat, long cacheBytes, boolean writable,
                          boolean withBacking, boolean flush, ReferencePolicy refs, boolean metadataWriteThrough,
                          boolean repair, boolean fullOverlapCheck) {

    public static final OpenOptions DEFAULTS = new OpenOptions(null, null, null, 32L << 20, false, true, true,
            ReferencePolicy.IMAGE_DIRECTORY, false, false, false);

    public OpenOptions withFormat(String f) { return new OpenOptions(f, snapshot, backingFormat, cacheBytes, writable, withBacking, flush, refs, metadataWriteThrough, repair, fullOverlapCheck); }
    public OpenOptions withSnapshot(String s) { return new OpenOptions(format, s, backingFormat, cacheBytes, writable, withBacking, flush, refs, metadataWriteThrough, repair, fullOverlapCheck); }
    public OpenOptions withBackingFormat(String f) { return new OpenOptions(format, snapshot, f, cacheBytes, writable, withBacking, flush, refs, metadataWriteThrough, repair, fullOverlapCheck); }
    public OpenOptions withCacheBytes(long b) { return new OpenOptions(format, snapshot, backingFormat, b, writable, withBacking, flush, refs, metadataWriteThrough, repair, fullOverlapCheck); }
    public OpenOptions withWritable(boolean w) { return new OpenOptions(format, snapshot, backingFormat, cacheBytes, w, withBacking, flush, refs, metadataWriteThrough, repair, fullOverlapCheck); }
    public OpenOptions withBacking(boolean b) { return new OpenOptions(format, snapshot, backingFormat, cacheBytes, writable, b, flush, refs, metadataWriteThrough, repair, fullOverlapCheck); }
    public OpenOptions withFlush(boolean f) { return new OpenOptions(format, snapshot, backingFormat, cacheBytes, writable, withBacking, f, refs, metadataWriteThrough, repair, fullOverlapCheck); }
    public OpenOptions withRefs(ReferencePolicy r) { return new OpenOptions(format, snapshot, backingFormat, cacheBytes, writable, withBacking, flush, r, metadataWriteThrough, repair, fullOverlapCheck); }
    public OpenOptions withMetadataWriteThrough(boolean w) { return new OpenOptions(format, snapshot, backingFormat, cacheBytes, writable, withBacking, flush, refs, w, repair, fullOverlapCheck); }
    public OpenOptions withRepair(boolean r) { return new OpenOptions(format, snapshot, backingFormat, cacheBytes, writable, withBacking, flush, refs, metadataWriteThrough, r, fullOverlapCheck); }
    public OpenOptions withFullOverlapCheck(boolean f) { return new OpenOptions(format, snapshot, backingFormat, cacheBytes, writable, withBacking, flush, refs, metadataWriteThrough, repair, f); }
}
