package org.vdiskload.format.vdi;

import org.vdiskload.image.ReferencePolicy;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;
import org.xml.sax.SAXException;
import org.xml.sax.helpers.DefaultHandler;

import javax.xml.XMLConstants;
import javax.xml.parsers.DocumentBuilder;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.parsers.ParserConfigurationException;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.UUID;

/**
 * A VirtualBox machine file's media registry: {@code <HardDisk uuid="{...}" location="..."/>} elements
 * (nested under their parents) in {@code MediaRegistry/HardDisks}, each location relative to the
 * {@code .vbox} file's directory or absolute. Parsed with the JDK's parser, with DOCTYPEs, external
 * entities and external DTDs refused: the file is as untrusted as the image beside it.
 */
final class VboxRegistry {
    /** A machine file is a few KiB; a larger one is not read. */
    private static final int MAX_BYTES = 16 << 20;

    private VboxRegistry() {}

    /**
     * The locations {@code vbox} gives the disk {@code uuid}, as absolute paths, those that exist; none when
     * the rule does not let {@code child} read {@code vbox}, or it is no machine file.
     */
    static List<Path> locations(Path child, Path vbox, UUID uuid, ReferencePolicy refs) throws IOException {
        byte[] xml;
        try (ImageFile f = refs.open(child, vbox.toString(), "VirtualBox machine file", false, false)) {
            if (f.size() > MAX_BYTES) return List.of();
            ByteBuffer b = ByteBuffer.allocate((int) f.size());
            f.readFully(b, 0, "machine file");
            xml = b.array();
        } catch (ImageException e) {
            return List.of();
        }
        NodeList disks;
        try {
            disks = parser().parse(new ByteArrayInputStream(xml)).getElementsByTagName("HardDisk");
        } catch (SAXException | IOException e) {
            return List.of(); // not a machine file we can read: the directories were looked in all the same
        }
        List<Path> found = new ArrayList<>();
        String want = uuid.toString();
        for (int i = 0; i < disks.getLength(); i++) {
            Element disk = (Element) disks.item(i);
            String id = disk.getAttribute("uuid").toLowerCase(Locale.ROOT).replace("{", "").replace("}", "");
            String location = disk.getAttribute("location");
            if (!id.equals(want) || location.isEmpty() || location.indexOf('\0') >= 0) continue;
            try {
                Path p = vbox.toAbsolutePath().getParent().resolve(location.replace('\\', '/')).normalize();
                if (Files.exists(p)) found.add(p);
            } catch (InvalidPathException e) {
                // a location no path can be made of names nothing
            }
        }
        return found;
    }

    private static DocumentBuilder parser() throws IOException {
        try {
            DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
            f.setFeature(XMLConstants.FEATURE_SECURE_PROCESSING, true);
            f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
            f.setFeature("http://xml.org/sax/features/external-general-entities", false);
            f.setFeature("http://xml.org/sax/features/external-parameter-entities", false);
            f.setFeature("http://apache.org/xml/features/nonvalidating/load-external-dtd", false);
            f.setAttribute(XMLConstants.ACCESS_EXTERNAL_DTD, "");
            f.setAttribute(XMLConstants.ACCESS_EXTERNAL_SCHEMA, "");
            f.setXIncludeAware(false);
            f.setExpandEntityReferences(false);
            DocumentBuilder b = f.newDocumentBuilder();
            b.setErrorHandler(new DefaultHandler()); // fails on a fatal error, prints nothing
            return b;
        } catch (ParserConfigurationException e) {
            throw new IOException("the JDK's XML parser cannot be made safe: " + e.getMessage(), e);
        }
    }
}
