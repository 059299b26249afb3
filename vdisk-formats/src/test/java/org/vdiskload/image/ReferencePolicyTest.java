package org.vdiskload.image;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.image.error.RefusedReference;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The reference rule of the chain (issue 19), with {@link ScriptedFormat} layers: a backing file is followed
 * only inside the naming image's directory or a directory allowed. Each format's own references (extents,
 * parent locators, layout sources) and the commands are tested in the CLI's ReferenceRuleTest.
 */
class ReferencePolicyTest {
    @BeforeAll
    static void registerScriptedFormat() {
        Images.register(new ScriptedFormat());
    }

    @TempDir
    Path root;
    /** Where the images are. */
    Path images;
    /** A directory beside it, holding a file no image there may read by default. */
    Path outside;
    /** Another directory beside it. */
    Path other;

    @BeforeEach
    void directories() throws IOException {
        images = Files.createDirectories(root.resolve("images"));
        outside = Files.createDirectories(root.resolve("outside"));
        other = Files.createDirectories(root.resolve("other"));
        raw(outside.resolve("secret.raw"), 0x5e);
    }

    private static Path raw(Path p, int fill) throws IOException {
        byte[] b = new byte[4096];
        Arrays.fill(b, (byte) fill);
        return Files.write(p, b);
    }

    /** A scripted image over a raw backing file with these names. */
    private static Path scripted(Path p, String... backing) throws IOException {
        return scriptedOver("raw", p, backing);
    }

    private static Path scriptedOver(String backingFormat, Path p, String... backing) throws IOException {
        StringBuilder h = new StringBuilder(ScriptedFormat.MAGIC_LINE).append("size=4096\n");
        for (String b : backing) h.append("backing=").append(b).append('\n');
        h.append("backing-format=").append(backingFormat).append("\n\n");
        return Files.write(p, h.toString().getBytes(StandardCharsets.US_ASCII));
    }

    private static int firstByte(Path image, ReferencePolicy refs) throws IOException {
        try (DiskImage d = Images.open(image, OpenOptions.DEFAULTS.withRefs(refs))) {
            ByteBuffer b = ByteBuffer.allocate(1);
            d.read(b, 0);
            return b.get(0) & 0xff;
        }
    }

    private static RefusedReference refused(Path image, ReferencePolicy refs) {
        return assertThrows(RefusedReference.class, () -> firstByte(image, refs));
    }

    /** The one line: the image, the reference as stored, where it resolves to, the flag that allows it. */
    private static void assertNames(RefusedReference e, Path image, String reference, Path resolved) {
        String m = e.getMessage();
        assertFalse(m.contains("\n"), m);
        assertTrue(m.startsWith(image + ": backing file \"" + reference + "\" resolves to " + resolved + ", outside"), m);
        assertTrue(m.endsWith("allow it with --allow-refs " + resolved.getParent() + " (or VDISKLOAD_ALLOW_REFS)"), m);
    }

    @Test
    void sameDirectoryChainsOpenByRelativeOrAbsoluteName() throws IOException {
        raw(images.resolve("base.raw"), 0x11);
        assertEquals(0x11, firstByte(scripted(images.resolve("rel.img"), "base.raw"), ReferencePolicy.IMAGE_DIRECTORY));
        assertEquals(0x11, firstByte(scripted(images.resolve("abs.img"), images.resolve("base.raw").toString()), ReferencePolicy.IMAGE_DIRECTORY));
        // ./ and a detour through .. that ends inside are still inside
        assertEquals(0x11, firstByte(scripted(images.resolve("dot.img"), "./../images/base.raw"), ReferencePolicy.IMAGE_DIRECTORY));
    }

    @Test
    void aBaseInASubdirectoryOpens() throws IOException {
        Path bases = Files.createDirectories(images.resolve("bases"));
        raw(bases.resolve("base.raw"), 0x22);
        Path mid = scripted(bases.resolve("mid.img"), "base.raw");
        assertEquals(0x22, firstByte(scriptedOver("vdltest", images.resolve("top.img"), "bases/mid.img"), ReferencePolicy.IMAGE_DIRECTORY));
        assertEquals(0x22, firstByte(mid, ReferencePolicy.IMAGE_DIRECTORY));
    }

    @Test
    void anAbsoluteNameOutsideIsRefusedUnlessItsDirectoryIsAllowed() throws IOException {
        Path secret = outside.resolve("secret.raw");
        Path top = scripted(images.resolve("top.img"), secret.toString());
        assertNames(refused(top, ReferencePolicy.IMAGE_DIRECTORY), top, secret.toString(), secret.toRealPath());
        assertEquals(0x5e, firstByte(top, ReferencePolicy.allowing(List.of(outside))));
        assertNames(refused(top, ReferencePolicy.allowing(List.of(other))), top, secret.toString(), secret.toRealPath());
        // a parent of the directory allows it too (subdirectories included)
        assertEquals(0x5e, firstByte(top, ReferencePolicy.allowing(List.of(root))));
    }

    @Test
    void climbingOutWithDotDotIsRefused() throws IOException {
        Path top = scripted(images.resolve("top.img"), "../outside/secret.raw");
        Path secret = outside.resolve("secret.raw").toRealPath();
        assertNames(refused(top, ReferencePolicy.IMAGE_DIRECTORY), top, "../outside/secret.raw", secret);
        assertEquals(0x5e, firstByte(top, ReferencePolicy.allowing(List.of(outside))));
        refused(top, ReferencePolicy.allowing(List.of(other)));
    }

    @Test
    void aSymbolicLinkInTheImagesDirectoryIsJudgedByWhereItLeads() throws IOException {
        Files.createSymbolicLink(images.resolve("base.raw"), outside.resolve("secret.raw"));
        Path top = scripted(images.resolve("top.img"), "base.raw");
        assertNames(refused(top, ReferencePolicy.IMAGE_DIRECTORY), top, "base.raw", outside.resolve("secret.raw").toRealPath());
        assertEquals(0x5e, firstByte(top, ReferencePolicy.allowing(List.of(outside))));
        refused(top, ReferencePolicy.allowing(List.of(other)));
        // a linked directory too
        Files.createSymbolicLink(images.resolve("linked"), outside);
        refused(scripted(images.resolve("top2.img"), "linked/secret.raw"), ReferencePolicy.IMAGE_DIRECTORY);
    }

    @Test
    void theImagesDirectoryIsTheDirectoryItIsNamedIn() throws IOException {
        // Opened through a linked directory, the image's directory is where the link leads.
        raw(images.resolve("base.raw"), 0x33);
        scripted(images.resolve("top.img"), "base.raw");
        Path link = Files.createSymbolicLink(root.resolve("link"), images);
        assertEquals(0x33, firstByte(link.resolve("top.img"), ReferencePolicy.IMAGE_DIRECTORY));
    }

    @Test
    void devicesAndFifosStayRefusedWhateverIsAllowed() throws Exception {
        Path top = scripted(images.resolve("top.img"), "/dev/zero");
        ReferencePolicy dev = ReferencePolicy.allowing(List.of(Path.of("/dev")));
        for (ReferencePolicy p : List.of(ReferencePolicy.IMAGE_DIRECTORY, dev)) {
            ImageException e = assertThrows(ImageException.class, () -> firstByte(top, p));
            assertFalse(e instanceof RefusedReference, e.getMessage());
            assertTrue(e.getMessage().contains("is not a regular file"), e.getMessage());
        }
        Path fifo = outside.resolve("fifo");
        assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor());
        Path top2 = scripted(images.resolve("top2.img"), fifo.toString());
        ImageException e = assertThrows(ImageException.class, () -> firstByte(top2, ReferencePolicy.allowing(List.of(outside))));
        assertTrue(e.getMessage().contains("is not a regular file"), e.getMessage());
        Path top3 = scripted(images.resolve("top3.img"), "../outside");
        e = assertThrows(ImageException.class, () -> firstByte(top3, ReferencePolicy.allowing(List.of(root))));
        assertTrue(e.getMessage().contains("is not a regular file"), e.getMessage());
    }

    @Test
    void eachImageOfTheChainIsJudgedByItsOwnDirectory() throws IOException {
        // A base in a subdirectory may not climb back out of it, even into the top image's directory.
        Path bases = Files.createDirectories(images.resolve("bases"));
        raw(images.resolve("beside-top.raw"), 0x44);
        scripted(bases.resolve("mid.img"), "../beside-top.raw");
        Path top = scriptedOver("vdltest", images.resolve("top.img"), "bases/mid.img");
        RefusedReference e = refused(top, ReferencePolicy.IMAGE_DIRECTORY);
        assertTrue(e.getMessage().startsWith(bases.resolve("mid.img") + ": backing file \"../beside-top.raw\""), e.getMessage());
        assertEquals(0x44, firstByte(top, ReferencePolicy.allowing(List.of(images))));
    }

    @Test
    void theNamesOfAReferenceAreTriedInTurn() throws IOException {
        raw(images.resolve("second.raw"), 0x66);
        raw(images.resolve("first.raw"), 0x55);
        // the first that leads to a file is used; a missing one is passed over
        assertEquals(0x55, firstByte(scripted(images.resolve("a.img"), "first.raw", "second.raw"), ReferencePolicy.IMAGE_DIRECTORY));
        assertEquals(0x66, firstByte(scripted(images.resolve("b.img"), "gone.raw", "second.raw"), ReferencePolicy.IMAGE_DIRECTORY));
        // a refused name is passed over too, for a later one the rule allows
        Path secret = outside.resolve("secret.raw");
        Path c = scripted(images.resolve("c.img"), secret.toString(), "second.raw");
        assertEquals(0x66, firstByte(c, ReferencePolicy.IMAGE_DIRECTORY));
        // allowed, the refused name is the first that leads to a file
        assertEquals(0x5e, firstByte(c, ReferencePolicy.allowing(List.of(outside))));
        // nothing followable: the refusal, which says how to allow it
        Path d = scripted(images.resolve("d.img"), "gone.raw", secret.toString());
        assertNames(refused(d, ReferencePolicy.IMAGE_DIRECTORY), d, secret.toString(), secret.toRealPath());
        // nothing there at all: every name
        Path e = scripted(images.resolve("e.img"), "gone.raw", "/nonexistent/gone.raw");
        ImageException missing = assertThrows(ImageException.class, () -> firstByte(e, ReferencePolicy.IMAGE_DIRECTORY));
        assertEquals(e + ": cannot open backing file " + images.resolve("gone.raw") + ": no such file (nor at the other names the image"
                + " gives it: [/nonexistent/gone.raw])", missing.getMessage());
    }

    @Test
    void judgeSaysWhatTheChainWouldFollowWithoutOpeningIt() throws IOException {
        Path secret = outside.resolve("secret.raw");
        Path top = images.resolve("top.img");
        ReferencePolicy.Judged j = ReferencePolicy.IMAGE_DIRECTORY.judge(top, new BackingRef("../outside/secret.raw", "raw"));
        assertEquals("../outside/secret.raw", j.name());
        assertEquals(secret, j.path());
        assertTrue(j.refusal().startsWith("resolves to " + secret.toRealPath() + ", outside the image's directory " + images.toRealPath()), j.refusal());
        assertNull(ReferencePolicy.allowing(List.of(outside)).judge(top, new BackingRef("../outside/secret.raw", "raw")).refusal());
        raw(images.resolve("base.raw"), 1);
        j = ReferencePolicy.IMAGE_DIRECTORY.judge(top, new BackingRef(List.of(secret.toString(), "base.raw"), "vpc"));
        assertEquals("base.raw", j.name());
        assertNull(j.refusal());
        assertTrue(ReferencePolicy.IMAGE_DIRECTORY.judge(top, new BackingRef("/dev/null", "raw")).refusal().contains("not a regular file"));
        assertNull(ReferencePolicy.IMAGE_DIRECTORY.judge(top, new BackingRef("/nonexistent", "raw")).refusal());
    }

    @Test
    void allowedDirectoriesMustExistAndAreKeptAsRealPaths() throws IOException {
        Path link = Files.createSymbolicLink(root.resolve("to-outside"), outside);
        assertEquals(List.of(outside.toRealPath()), ReferencePolicy.allowing(List.of(link, outside)).allowed());
        ImageException e = assertThrows(ImageException.class, () -> ReferencePolicy.allowing(List.of(root.resolve("nope"))));
        assertTrue(e.getMessage().contains("no such directory"), e.getMessage());
        e = assertThrows(ImageException.class, () -> ReferencePolicy.allowing(List.of(outside.resolve("secret.raw"))));
        assertTrue(e.getMessage().contains("is not a directory"), e.getMessage());
    }

    @Test
    void namesFromImagesArePrintedEscaped() throws IOException {
        Path top = scripted(images.resolve("top.img"), "../outside/\u001b[2Jsecret");
        Files.copy(outside.resolve("secret.raw"), outside.resolve("\u001b[2Jsecret"));
        RefusedReference e = refused(top, ReferencePolicy.IMAGE_DIRECTORY);
        assertFalse(e.getMessage().contains("\u001b"), e.getMessage());
        assertTrue(e.getMessage().contains("\"../outside/\\x1b[2Jsecret\""), e.getMessage());
    }
}
