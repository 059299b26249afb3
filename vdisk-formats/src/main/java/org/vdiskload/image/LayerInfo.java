package org.vdiskload.image;

import java.util.List;
import java.util.Map;

/**
 * What {@code info} shows about one layer, in qemu-img info's terms.
 *
 * @param clusterSize    cluster / grain / block size, or null where the format has none
 * @param dirty          the format's dirty flag (qcow2 dirty bit, VHDX non-empty log), or null
 * @param formatSpecific qemu-img info's "format-specific" data (ordered), empty if none
 */
public record LayerInfo(String format, long virtualSize, Long clusterSize, Boolean dirty,
                        List<SnapshotInfo> snapshots, Map<String, Object> formatSpecific) {

    public static LayerInfo basic(String format, long virtualSize) {
        return new LayerInfo(format, virtualSize, null, null, List.of(), Map.of());
    }
}
