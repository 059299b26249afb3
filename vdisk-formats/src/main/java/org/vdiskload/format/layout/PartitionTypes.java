package org.vdiskload.format.layout;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;

/** Friendly partition type names, as GPT type GUIDs (UEFI spec, Discoverable Partitions Spec) and MBR type bytes. */
final class PartitionTypes {
    private PartitionTypes() {}

    private record Type(String guid, int mbr) {}

    /** -1: no MBR equivalent. */
    private static final Map<String, Type> NAMES = new LinkedHashMap<>();

    static {
        NAMES.put("linux", new Type("0FC63DAF-8483-4772-8E79-3D69D8477DE4", 0x83));
        NAMES.put("esp", new Type("C12A7328-F81F-11D2-BA4B-00A0C93EC93B", 0xEF));
        NAMES.put("swap", new Type("0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", 0x82));
        NAMES.put("home", new Type("933AC7E1-2EB4-4F13-B844-0E14E2AEF915", 0x83));
        NAMES.put("srv", new Type("3B8F8425-20E0-4F3B-907F-1A25A76F98E8", 0x83));
        NAMES.put("var", new Type("4D21B016-B534-45C2-A9FB-5C16E091FD2D", 0x83));
        NAMES.put("linux-root-x86-64", new Type("4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", 0x83));
        NAMES.put("linux-root-arm64", new Type("B921B045-1DF0-41C3-AF44-4C6F280D3FAE", 0x83));
        NAMES.put("linux-usr-x86-64", new Type("8484680C-9521-48C6-9C11-B0720656F69E", 0x83));
        NAMES.put("linux-lvm", new Type("E6D6D379-F507-44C2-A23C-238F2A3DF928", 0x8E));
        NAMES.put("linux-raid", new Type("A19D880F-05FC-4D3B-A006-743F0F84911E", 0xFD));
        NAMES.put("bios-boot", new Type("21686148-6449-6E6F-744E-656564454649", -1));
        NAMES.put("basic-data", new Type("EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", 0x07));
    }

    static final String DEFAULT = "linux";

    /** The GPT type GUID for a friendly name or a GUID; null if unknown. */
    static UUID gpt(String type) {
        Type t = NAMES.get(type.toLowerCase(Locale.ROOT));
        if (t != null) return UUID.fromString(t.guid);
        if (type.matches("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")) return UUID.fromString(type);
        return null;
    }

    /** The MBR type byte for a friendly name or "0xNN"; -1 if unknown or without an MBR equivalent. */
    static int mbr(String type) {
        Type t = NAMES.get(type.toLowerCase(Locale.ROOT));
        if (t != null) return t.mbr;
        if (type.matches("0[xX][0-9a-fA-F]{1,2}")) {
            int b = Integer.parseInt(type.substring(2), 16);
            // 0 marks an unused entry; the extended types are the table's own business
            return b == 0 || b == 0x05 || b == 0x0F || b == 0x85 ? -1 : b;
        }
        return -1;
    }

    static String names() {
        return String.join(", ", NAMES.keySet());
    }
}
