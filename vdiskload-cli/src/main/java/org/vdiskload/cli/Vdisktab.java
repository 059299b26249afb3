package org.vdiskload.cli;

import org.vdiskload.text.Printable;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * /etc/vdisktab: the images attached at boot (by vdiskload-attach@.service, which the systemd generator
 * starts for each), one a line:
 * <pre>
 *   # IMAGE                      OPTIONS (comma-separated; optional)
 *   /srv/vm/data.vmdk            ro,backend=kmod
 *   /var/lib/images/scratch.qcow2 snapshot
 *   /srv/with\040space.vdi       allow-refs=/srv/bases
 * </pre>
 * Options: {@code ro}, {@code snapshot}, {@code backend=auto|kmod|nbd|fuse}, {@code allow-refs=DIR}
 * (repeatable), {@code defaults} (none of them). Paths are absolute; as in /etc/fstab, {@code \040} is a
 * space, {@code \011} a tab and {@code \134} a backslash. Blank lines and lines starting with # are skipped.
 */
public record Vdisktab(List<Entry> entries) {
    public static final Path DEFAULT = Path.of("/etc/vdisktab");
    private static final Set<String> BACKENDS = Set.of("auto", "kmod", "nbd", "fuse");

    /** One image and how to attach it. */
    public record Entry(int line, Path image, boolean readOnly, boolean snapshot, String backend, List<Path> allowRefs) {
        /** The arguments of {@code vdiskload} that attach it. */
        public List<String> attachArguments() {
            List<String> args = new ArrayList<>();
            if (readOnly) args.add("--read-only");
            if (snapshot) args.add("--snapshot");
            args.add("--backend=" + backend);
            for (Path dir : allowRefs) args.add("--allow-refs=" + dir);
            args.add(image.toString());
            return args;
        }
    }

    /** Parses {@code text}, read from {@code file}; a bad line fails naming the file, the line and the problem. */
    public static Vdisktab parse(Path file, String text) throws IOException {
        List<Entry> entries = new ArrayList<>();
        String[] lines = text.split("\n", -1);
        for (int i = 0; i < lines.length; i++) {
            String line = lines[i].strip();
            if (line.isEmpty() || line.startsWith("#")) continue;
            String[] fields = line.split("[ \t]+");
            if (fields.length > 2) throw bad(file, i + 1, "expected IMAGE [OPTIONS], found " + fields.length + " fields (write a space in a path as \\040)");
            Path image = Path.of(unescape(file, i + 1, fields[0]));
            if (!image.isAbsolute()) throw bad(file, i + 1, "image path " + quote(fields[0]) + " is not absolute");
            Entry e = options(file, i + 1, image, fields.length == 2 ? fields[1] : "defaults");
            for (Entry seen : entries) {
                if (seen.image().normalize().equals(image.normalize())) throw bad(file, i + 1, image + " is listed on line " + seen.line() + " already");
            }
            entries.add(e);
        }
        return new Vdisktab(List.copyOf(entries));
    }

    /** The entry for {@code image}, if the table lists it. */
    public Optional<Entry> find(Path image) {
        return entries.stream().filter(e -> e.image().normalize().equals(image.normalize())).findFirst();
    }

    private static Entry options(Path file, int line, Path image, String text) throws IOException {
        boolean readOnly = false;
        boolean snapshot = false;
        String backend = "auto";
        List<Path> refs = new ArrayList<>();
        for (String o : text.split(",", -1)) {
            if (o.equals("defaults")) continue;
            if (o.equals("ro")) readOnly = true;
            else if (o.equals("rw")) readOnly = false;
            else if (o.equals("snapshot")) snapshot = true;
            else if (o.startsWith("backend=") && BACKENDS.contains(o.substring(8))) backend = o.substring(8);
            else if (o.startsWith("backend=")) throw bad(file, line, "backend " + quote(o.substring(8)) + ": choose auto, kmod, nbd or fuse");
            else if (o.startsWith("allow-refs=") && o.length() > 11) {
                Path dir = Path.of(unescape(file, line, o.substring(11)));
                if (!dir.isAbsolute()) throw bad(file, line, "allow-refs directory " + quote(o.substring(11)) + " is not absolute");
                refs.add(dir);
            } else throw bad(file, line, "unknown option " + quote(o) + " (ro, snapshot, backend=, allow-refs=, defaults)");
        }
        if (readOnly && snapshot) throw bad(file, line, "ro and snapshot exclude each other");
        return new Entry(line, image, readOnly, snapshot, backend, List.copyOf(refs));
    }

    /** fstab's escapes: a backslash and three octal digits. */
    private static String unescape(Path file, int line, String s) throws IOException {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c != '\\') {
                b.append(c);
                continue;
            }
            if (i + 4 > s.length() || !s.substring(i + 1, i + 4).matches("[0-7]{3}")) {
                throw bad(file, line, "bad escape in " + quote(s) + ": write \\ and three octal digits (\\040 for a space)");
            }
            int v = Integer.parseInt(s.substring(i + 1, i + 4), 8);
            if (v == 0 || v > 0x7f) throw bad(file, line, "bad escape in " + quote(s) + ": only ASCII characters other than NUL");
            b.append((char) v);
            i += 3;
        }
        return b.toString();
    }

    private static String quote(String s) {
        return "\"" + Printable.of(s) + "\"";
    }

    private static IOException bad(Path file, int line, String problem) {
        return new IOException(file + ": line " + line + ": " + problem);
    }
}
