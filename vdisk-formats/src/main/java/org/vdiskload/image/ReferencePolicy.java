package org.vdiskload.image;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.image.error.RefusedReference;
import org.vdiskload.io.ImageFile;
import org.vdiskload.text.Printable;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

/**
 * Which files an image may make vdiskload read or write through the names it stores: backing files, VMDK
 * extents, VHD/VHDX parent locators, the sources of a layout. A reference is followed only when its real
 * path (after {@code ..} and symbolic links) lies inside the directory of the image that names it
 * (subdirectories included) or inside a directory the user allowed ({@code --allow-refs DIR}). Without this
 * an image from a stranger reads host files into whatever it is converted to or served as: qemu's users had
 * OpenStack's CVE-2022-47951 (a VMDK flat extent naming a host file) and CVE-2024-32498 (a qcow2 external
 * data file). Devices, fifos and directories are refused whatever is allowed.
 *
 * <p>The rule is on paths: a hard link in the image's directory is that directory's file. Linux refuses to
 * make hard links to other users' files (fs.protected_hardlinks, on by default), and tar never extracts
 * one to a file outside what it extracts.
 */
public final class ReferencePolicy {
    /** The command-line flag that allows a directory: named in every refusal. */
    public static final String FLAG = "--allow-refs";
    /** The environment variable that allows directories, colon-separated. */
    public static final String ENVIRONMENT = "VDISKLOAD_ALLOW_REFS";
    /** Each image's own directory only: the default. */
    public static final ReferencePolicy IMAGE_DIRECTORY = new ReferencePolicy(List.of());

    /** Real paths of the directories allowed beyond each image's own. */
    private final List<Path> allowed;

    private ReferencePolicy(List<Path> allowed) {
        this.allowed = List.copyOf(allowed);
    }

    /** Each image's own directory and {@code directories} (which must exist; kept as their real paths). */
    public static ReferencePolicy allowing(Collection<Path> directories) throws ImageException {
        List<Path> real = new ArrayList<>();
        for (Path d : directories) {
            Path r;
            try {
                r = d.toRealPath();
            } catch (IOException e) {
                throw ImageException.invalid(d, "no such directory to allow references into (" + FLAG + ", " + ENVIRONMENT + ")");
            }
            if (!Files.isDirectory(r)) {
                throw ImageException.invalid(d, "is not a directory: only directories are allowed references (" + FLAG + ", " + ENVIRONMENT + ")");
            }
            if (!real.contains(r)) real.add(r);
        }
        return new ReferencePolicy(real);
    }

    /** The directories allowed beyond each image's own, as real paths. */
    public List<Path> allowed() {
        return allowed;
    }

    /**
     * Where a reference leads.
     *
     * @param path       the name resolved against the naming image's directory (what messages show)
     * @param real       its real path, or null when it cannot be had (see {@code unresolved})
     * @param unresolved why there is no real path ("no such file"...), or null
     */
    public record Target(Path path, Path real, String unresolved) {}

    /** Resolves {@code name}, stored in {@code image} as {@code field}; nothing is opened. */
    public static Target resolve(Path image, String name, String field) throws ImageException {
        Path path = OpenContext.resolve(image, name, field);
        try {
            return new Target(path, path.toRealPath(), null);
        } catch (NoSuchFileException e) {
            return new Target(path, null, "no such file");
        } catch (IOException e) {
            return new Target(path, null, "cannot resolve: " + e.getMessage());
        }
    }

    /**
     * Null if the rule lets {@code image} refer to the file whose real path is {@code real}; otherwise why
     * not, with the flag that would allow it.
     */
    public String refusal(Path image, Path real) {
        Path dir = directory(image);
        if (dir != null && real.startsWith(dir)) return null;
        for (Path a : allowed) if (real.startsWith(a)) return null;
        Path parent = real.getParent() == null ? real : real.getParent();
        return "resolves to " + printable(real.toString()) + ", outside the image's directory "
                + printable(String.valueOf(dir != null ? dir : image.toAbsolutePath().getParent()))
                + (allowed.isEmpty() ? "" : " and the directories allowed")
                + "; allow it with " + FLAG + " " + printable(parent.toString()) + " (or " + ENVIRONMENT + ")";
    }

    /**
     * Opens the file {@code image} names {@code name} (stored as {@code field}) if the rule allows it: the
     * one-line refusal ({@link RefusedReference}) otherwise. Devices, fifos and directories are refused
     * first, whatever is allowed. The file opened is the real path judged (a symbolic link changed since
     * is not followed again); it is named by {@code name} resolved, as the image names it.
     */
    public ImageFile open(Path image, String name, String field, boolean writable, boolean flush) throws IOException {
        Target t = resolve(image, name, field);
        if (t.real() == null) throw ImageException.invalid(t.path(), t.unresolved());
        ImageFile.requireReferenceable(t.path(), t.real());
        requireAllowed(image, name, field, t);
        return ImageFile.openReferenced(t.path(), t.real(), writable, flush);
    }

    /** Throws the refusal if the rule does not let {@code image} follow {@code target} (which exists). */
    public void requireAllowed(Path image, String name, String field, Target target) throws RefusedReference {
        String why = refusal(image, target.real());
        if (why != null) throw new RefusedReference(image, field + " \"" + printable(name) + "\" " + why);
    }

    /**
     * A backing reference as the chain would follow it, judged without opening anything.
     *
     * @param name    the name the chain would follow (of several, the first leading to a regular file
     *                the rule allows; if none does, the first refused, else the first)
     * @param path    that name resolved against the image's directory
     * @param refusal why it would not be followed (the rule, or not a regular file), or null
     */
    public record Judged(String name, Path path, String refusal) {}

    /** How {@code image}'s backing reference {@code ref} would be followed under this policy; nothing is opened. */
    public Judged judge(Path image, BackingRef ref) throws ImageException {
        if (ref.unresolved() != null) return new Judged(ref.name(), Path.of(ref.name()), ref.unresolved());
        Judged refused = null;
        Judged first = null;
        for (String name : ref.names()) {
            Target t = resolve(image, name, "backing file");
            if (first == null) first = new Judged(name, t.path(), null);
            if (t.real() == null) continue;
            String why = Files.isRegularFile(t.real()) ? refusal(image, t.real()) : ImageFile.NOT_REFERENCEABLE;
            if (why == null) return new Judged(name, t.path(), null);
            if (refused == null) refused = new Judged(name, t.path(), why);
        }
        return refused != null ? refused : first;
    }

    /** The real path of the directory {@code image}'s relative references resolve against, or null. */
    private static Path directory(Path image) {
        Path dir = image.toAbsolutePath().getParent();
        if (dir == null) return null;
        try {
            return dir.toRealPath();
        } catch (IOException e) {
            return null;
        }
    }

    /** Text from an image (or a path made from it) as it may be printed: {@link Printable#of}. */
    public static String printable(String s) {
        return Printable.of(s);
    }
}
