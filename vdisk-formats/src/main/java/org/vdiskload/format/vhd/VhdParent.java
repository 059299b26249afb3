package org.vdiskload.format.vhd;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Finds a differencing disk's parent file names among its parent locators, in the order Hyper-V tries them:
 * the relative Windows path (W2ru), then the absolute one (W2ku), then the Mac OS X URL (MacX). The chain
 * tries each in turn ({@link org.vdiskload.image.BackingRef#names()}), so a child moved away from its
 * parent still finds it by the absolute locator. A locator that cannot name a file on this host (a Windows
 * drive path) is passed over. If no locator is usable, the parent name of the header (a bare file name) is
 * looked for beside the child. Every present W2ru/W2ku/MacX locator is validated, used or not.
 */
final class VhdParent {
    private static final Pattern DRIVE = Pattern.compile("^[A-Za-z]:.*");
    private static final List<Integer> PREFERENCE = List.of(VhdParentLocator.W2RU, VhdParentLocator.W2KU, VhdParentLocator.MACX);

    private VhdParent() {}

    static List<String> fileNames(ImageFile file, VhdDynamicHeader header) throws IOException {
        String[] byPlatform = new String[PREFERENCE.size()];
        for (VhdParentLocator loc : header.locators()) {
            int rank = PREFERENCE.indexOf(loc.platformCode());
            if (rank < 0) continue; // deprecated Wi2r/Wi2k/"Mac " locators: not read
            String text = loc.readText(file);
            String usable = rank == 2 ? fromMacUrl(file, loc, text) : fromWindowsPath(text, rank == 0);
            if (usable != null && byPlatform[rank] == null) byPlatform[rank] = usable;
        }
        List<String> names = new ArrayList<>();
        for (String name : byPlatform) if (name != null && !names.contains(name)) names.add(name);
        if (!names.isEmpty()) return names;
        String name = header.parentName().replace('\\', '/');
        name = name.substring(name.lastIndexOf('/') + 1);
        if (name.isEmpty() || DRIVE.matcher(name).matches()) {
            throw ImageException.corrupt(file.path(), header.at() + VhdDynamicHeader.PARENT_NAME_OFFSET, "parent name",
                    "differencing disk names no parent file usable on this host");
        }
        return List.of(name);
    }

    /** A W2ru/W2ku path with '/' separators, or null if it names a Windows drive or share. */
    private static String fromWindowsPath(String text, boolean relative) {
        String p = text.replace('\\', '/');
        if (p.isEmpty() || DRIVE.matcher(p).matches() || p.startsWith("//")) return null;
        if (relative) {
            while (p.startsWith("./")) p = p.substring(2);
            if (p.startsWith("/")) return null;
        } else if (!p.startsWith("/")) {
            return null;
        }
        return p.isEmpty() ? null : p;
    }

    private static String fromMacUrl(ImageFile file, VhdParentLocator loc, String text) throws ImageException {
        try {
            URI uri = new URI(text);
            String host = uri.getHost();
            if (!"file".equalsIgnoreCase(uri.getScheme()) || (host != null && !host.equals("localhost"))
                    || uri.getPath() == null || uri.getPath().isEmpty()) {
                throw new URISyntaxException(text, "not a local file:// URL");
            }
            return uri.getPath();
        } catch (URISyntaxException e) {
            throw ImageException.corrupt(file.path(), loc.dataOffset(), "parent locator " + loc.index() + " (MacX) data",
                    "MacX parent locator is not a local file:// URL");
        }
    }
}
