package org.vdiskload.format.vdi;

import org.vdiskload.image.BackingRef;
import org.vdiskload.image.ReferencePolicy;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.stream.Stream;

/**
 * Finds a differencing VDI's parent, which the child names by UUID only ({@code uuidLinkage}), where
 * VirtualBox keeps it: a VDI whose {@code uuidCreate} matches, in the child's directory or the one above
 * (VirtualBox puts snapshots in {@code Snapshots/} inside the machine's folder), or the location a
 * machine's {@code .vbox} file there gives that UUID in its media registry. Files are recognised by their
 * content, never by name. Every file read is a reference under the image's {@link ReferencePolicy} (a
 * device or a file outside the allowed directories is never read); a directory the rule does not allow
 * is not looked in, and the problem says so when nothing is found.
 *
 * <p>The result names the matching files, those whose {@code uuidModify} is the one the child recorded
 * first, then the registry's locations (unread: the chain opens them under the rule, and
 * {@link VdiLayer#checkBacking} checks the UUIDs of what it opened).
 */
final class VdiParentSearch {
    /** Files looked at per directory at most: a guard against a huge directory, far beyond a machine folder. */
    private static final int MAX_FILES = 4096;

    private final Path child;
    private final UUID parent;
    private final UUID parentModify;
    private final ReferencePolicy refs;
    private final List<Path> matching = new ArrayList<>();
    private final List<Path> modifiedMatching = new ArrayList<>();
    private final Set<Path> looked = new LinkedHashSet<>();

    private VdiParentSearch(Path child, VdiHeader header, ReferencePolicy refs) {
        this.child = child.toAbsolutePath().normalize();
        this.parent = header.uuidLinkage();
        this.parentModify = header.uuidParentModify();
        this.refs = refs;
    }

    /** The parent reference of the differencing image at {@code child}. */
    static BackingRef find(Path child, VdiHeader header, ReferencePolicy refs) throws IOException {
        return new VdiParentSearch(child, header, refs).run();
    }

    private BackingRef run() throws IOException {
        Path dir = child.getParent();
        List<Path> dirs = new ArrayList<>();
        dirs.add(dir);
        Path up = dir.getParent();
        boolean upRefused = up != null && !allowed(up);
        if (up != null && !upRefused) dirs.add(up);
        List<Path> registered = new ArrayList<>();
        List<Path> registries = new ArrayList<>();
        for (Path d : dirs) {
            for (Path f : files(d)) {
                if (f.getFileName().toString().endsWith(".vbox")) {
                    registries.add(f);
                    registered.addAll(VboxRegistry.locations(child, f, parent, refs));
                } else {
                    look(f);
                }
            }
        }
        Set<Path> names = new LinkedHashSet<>(matching);
        names.addAll(modifiedMatching);
        names.addAll(registered);
        if (!names.isEmpty()) {
            return new BackingRef(names.stream().map(p -> dir.relativize(p).toString()).toList(), "vdi");
        }
        StringBuilder why = new StringBuilder("parent VDI " + VdiUuid.text(parent) + " not found: no VDI with that UUID in ");
        why.append(ReferencePolicy.printable(dir.toString()));
        if (dirs.size() > 1) why.append(" or ").append(ReferencePolicy.printable(up.toString()));
        if (!registries.isEmpty()) why.append(" nor in the media registry of ").append(ReferencePolicy.printable(registries.toString()));
        if (upRefused) {
            why.append("; the directory above, ").append(ReferencePolicy.printable(up.toString()))
                    .append(", was not looked in: it is outside the image's directory; allow it with ").append(ReferencePolicy.FLAG)
                    .append(" ").append(ReferencePolicy.printable(up.toString())).append(" (or ").append(ReferencePolicy.ENVIRONMENT).append(")");
        }
        return BackingRef.unresolved(VdiUuid.text(parent), "vdi", why.toString());
    }

    /** Whether the reference rule lets the child lead into directory {@code d}. */
    private boolean allowed(Path d) {
        try {
            return refs.refusal(child, d.toRealPath()) == null;
        } catch (IOException e) {
            return false;
        }
    }

    /** The regular files of {@code d} (symbolic links to regular files included), by name; none if it cannot be listed. */
    private static List<Path> files(Path d) {
        try (Stream<Path> s = Files.list(d)) {
            return s.filter(Files::isRegularFile).sorted().limit(MAX_FILES).toList();
        } catch (IOException | RuntimeException e) {
            return List.of();
        }
    }

    /** Reads {@code f}'s VDI header if the rule allows it, noting it when its UUID is the parent's. */
    private void look(Path f) throws IOException {
        if (!looked.add(f)) return;
        try (ImageFile file = refs.open(child, f.toString(), "parent VDI", false, false)) {
            if (file.size() < VdiHeader.LENGTH) return;
            ByteBuffer b = file.readStruct(0, VdiHeader.LENGTH, ByteOrder.LITTLE_ENDIAN, "VDI header");
            if (b.getInt(VdiHeader.SIGNATURE_OFFSET) != VdiHeader.SIGNATURE || !VdiUuid.get(b, 0x188).equals(parent)) return;
            boolean sameModification = parentModify.equals(VdiUuid.NONE) || VdiUuid.get(b, 0x198).equals(parentModify);
            (sameModification ? matching : modifiedMatching).add(f);
        } catch (ImageException e) {
            // Refused by the rule (a link leading outside), gone meanwhile, unreadable: not a candidate.
        }
    }
}
