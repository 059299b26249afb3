package org.vdiskload.partition;

/**
 * One partition, numbered as the Linux kernel numbers it ({@code /dev/sdaN}); offsets in bytes from the start of the disk.
 *
 * @param type     GPT: the type GUID in lower-case canonical text; MBR: the type byte as two lower-case hex digits ("83", "0c")
 * @param name     GPT: the partition name; MBR: ""
 * @param bootable MBR: boot indicator 0x80; GPT: attribute bit 2 (legacy BIOS bootable)
 */
public record Partition(int number, long start, long length, String type, String name, boolean bootable) {}
