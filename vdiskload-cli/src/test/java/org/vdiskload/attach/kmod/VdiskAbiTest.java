package org.vdiskload.attach.kmod;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Java mirror of the module's ABI ({@link VdiskAbi}) against the header itself: a C program compiled
 * against kmod/include/uapi/linux/vdisk.h prints every constant the header defines and every struct's
 * size, field offsets and text-field sizes; the test compares them with VdiskAbi's, both ways (a name on
 * one side only fails too).
 */
class VdiskAbiTest {
    private static final Pattern DEFINE = Pattern.compile("^#define\\s+(VDISK_\\w+)\\s+\\S", Pattern.MULTILINE);
    private static final Pattern STRUCT = Pattern.compile("^struct (vdisk_\\w+) \\{\\n(.*?)^\\};", Pattern.MULTILINE | Pattern.DOTALL);
    private static final Pattern FIELD = Pattern.compile("^\\s*(__u8|__u16|__u32|__u64|__s32|char)\\s+(\\w+)(\\[[^\\]]+\\])?;", Pattern.MULTILINE);

    @TempDir
    Path dir;

    private static Path header() {
        Path repo = Path.of(System.getProperty("vdiskload.repo", "..")).toAbsolutePath();
        return repo.resolve("kmod/include/uapi/linux/vdisk.h");
    }

    /** The header's view: "const NAME VALUE", "size STRUCT N", "offset STRUCT.FIELD N", "len STRUCT.FIELD N". */
    private Map<String, String> fromC() throws IOException, InterruptedException {
        String h = Files.readString(header());
        StringBuilder c = new StringBuilder("""
                #include <stdio.h>
                #include <stddef.h>
                #include <linux/vdisk.h>
                #define CONST(x) _Generic((x) + 0, char *: printf("const %s %s\\n", #x, (char *)(size_t)(x)), \\
                                 default: printf("const %s %llu\\n", #x, (unsigned long long)(x)))
                int main(void) {
                """);
        Matcher d = DEFINE.matcher(h);
        while (d.find()) c.append("  CONST(").append(d.group(1)).append(");\n");
        Matcher s = STRUCT.matcher(h);
        while (s.find()) {
            String st = s.group(1);
            c.append("  printf(\"size %s %zu\\n\", \"").append(st).append("\", sizeof(struct ").append(st).append("));\n");
            Matcher f = FIELD.matcher(s.group(2));
            while (f.find()) {
                String field = f.group(2);
                c.append("  printf(\"offset %s.%s %zu\\n\", \"").append(st).append("\", \"").append(field)
                        .append("\", offsetof(struct ").append(st).append(", ").append(field).append("));\n");
                if (f.group(1).equals("char")) {
                    c.append("  printf(\"len %s.%s %zu\\n\", \"").append(st).append("\", \"").append(field)
                            .append("\", sizeof(((struct ").append(st).append(" *)0)->").append(field).append("));\n");
                }
            }
        }
        c.append("  return 0;\n}\n");
        Path src = Files.writeString(dir.resolve("abi.c"), c);
        Path exe = dir.resolve("abi");
        run(List.of("gcc", "-std=gnu11", "-Wall", "-Werror", "-I", header().getParent().getParent().toString(),
                "-o", exe.toString(), src.toString()));
        Map<String, String> out = new TreeMap<>();
        for (String line : run(List.of(exe.toString())).lines().toList()) {
            int space = line.lastIndexOf(' ');
            out.put(line.substring(0, space), line.substring(space + 1));
        }
        assertTrue(out.keySet().stream().anyMatch(k -> k.startsWith("size ")), "no struct found in " + header());
        return out;
    }

    /** VdiskAbi's view, in the same form. */
    private static Map<String, String> fromJava() throws IllegalAccessException {
        Map<String, String> out = new TreeMap<>();
        for (Field f : VdiskAbi.class.getDeclaredFields()) {
            if (!Modifier.isStatic(f.getModifiers()) || !f.getName().startsWith("VDISK_")) continue;
            f.setAccessible(true);
            out.put("const " + f.getName(), String.valueOf(f.get(null)));
        }
        for (Class<?> k : VdiskAbi.class.getDeclaredClasses()) {
            String st = "vdisk_" + k.getSimpleName().toLowerCase(Locale.ROOT);
            for (Field f : k.getDeclaredFields()) {
                f.setAccessible(true);
                String name = f.getName();
                String value = String.valueOf(f.getInt(null));
                if (name.equals("SIZE")) out.put("size " + st, value);
                else if (name.startsWith("LEN_")) out.put("len " + st + "." + field(name.substring(4)), value);
                else out.put("offset " + st + "." + field(name), value);
            }
        }
        return out;
    }

    private static String field(String javaName) {
        return (javaName.endsWith("_") ? javaName.substring(0, javaName.length() - 1) : javaName).toLowerCase(Locale.ROOT);
    }

    @Test
    void theJavaMirrorMatchesTheHeaderNameForNameAndOffsetForOffset() throws Exception {
        Map<String, String> c = fromC();
        Map<String, String> java = fromJava();
        List<String> differences = new ArrayList<>();
        Map<String, String> all = new LinkedHashMap<>(c);
        java.forEach(all::putIfAbsent);
        for (String key : all.keySet()) {
            String cv = c.get(key), jv = java.get(key);
            if (cv == null) differences.add(key + ": in VdiskAbi (" + jv + "), not in the header");
            else if (jv == null) differences.add(key + ": in the header (" + cv + "), not in VdiskAbi");
            else if (!cv.equals(jv)) differences.add(key + ": header " + cv + ", VdiskAbi " + jv);
        }
        assertEquals(List.of(), differences);
        assertTrue(c.size() > 100, "only " + c.size() + " items compared");
    }

    private static String run(List<String> command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), command + " did not finish");
        assertEquals(0, p.exitValue(), command + " failed:\n" + out);
        return out;
    }
}
