package org.vdiskload.attach;

import org.vdiskload.text.Printable;

import java.util.Locale;

/**
 * A file system {@code vdiskload mount} or {@code tar} may pick on an attached image: one of its partitions
 * (number from 1) or, on a disk without a partition table, the whole disk (number 0).
 *
 * @param device        the device to mount (/dev/qcow0p2, /dev/qcow0)
 * @param partitionType GPT: the type GUID in lower case; MBR: the type byte as two hex digits; "" for the whole disk
 * @param partitionName GPT: the partition's name; "" otherwise
 * @param type          the file-system type blkid found ("ext4", "vfat"), "" if none
 * @param label         the file system's label, "" if none
 * @param uuid          the file system's UUID (or FAT serial), "" if none
 */
public record FileSystemCandidate(int number, String device, long size, String partitionType, String partitionName,
                                  String type, String label, String uuid) {
    public boolean wholeDisk() {
        return number == 0;
    }

    public boolean hasFileSystem() {
        return !type.isEmpty();
    }

    /** "partition 2" or "the whole disk". */
    public String what() {
        return wholeDisk() ? "the whole disk" : "partition " + number;
    }

    /** One item of a listing: {@code 2 (30 MiB, ext4, label "root", name "root")}; image text escaped. */
    public String describe() {
        StringBuilder b = new StringBuilder(wholeDisk() ? "whole disk" : Integer.toString(number));
        b.append(" (").append(humanSize(size)).append(", ").append(hasFileSystem() ? Printable.of(type) : "no file system");
        if (!label.isEmpty()) b.append(", label \"").append(Printable.of(label)).append('"');
        if (!partitionName.isEmpty()) b.append(", name \"").append(Printable.of(partitionName)).append('"');
        return b.append(')').toString();
    }

    static String humanSize(long bytes) {
        String[] units = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
        double v = bytes;
        int u = 0;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return u == 0 ? bytes + " B" : (v == Math.floor(v) ? String.format(Locale.ROOT, "%.0f %s", v, units[u]) : String.format(Locale.ROOT, "%.1f %s", v, units[u]));
    }
}
