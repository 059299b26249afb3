package org.vdiskload.cli;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class VdisktabTest {
    private static final Path TAB = Path.of("/etc/vdisktab");

    private static Vdisktab parse(String text) throws IOException {
        return Vdisktab.parse(TAB, text);
    }

    private static String error(String text) {
        return assertThrows(IOException.class, () -> parse(text)).getMessage();
    }

    @Test
    void linesBecomeAttachArguments() throws IOException {
        Vdisktab t = parse("""
                # images attached at boot
                /srv/data.vmdk   ro,backend=kmod

                \t/srv/scratch.qcow2\tsnapshot
                /srv/plain.vdi
                /srv/with\\040space.vhdx allow-refs=/srv/bases,allow-refs=/srv/more\\040bases
                """);
        assertEquals(4, t.entries().size());
        assertEquals(List.of("--read-only", "--backend=kmod", "/srv/data.vmdk"), t.entries().get(0).attachArguments());
        assertEquals(List.of("--snapshot", "--backend=auto", "/srv/scratch.qcow2"), t.entries().get(1).attachArguments());
        assertEquals(List.of("--backend=auto", "/srv/plain.vdi"), t.entries().get(2).attachArguments());
        assertEquals(List.of("--backend=auto", "--allow-refs=/srv/bases", "--allow-refs=/srv/more bases", "/srv/with space.vhdx"),
                t.entries().get(3).attachArguments());
        assertEquals(6, t.entries().get(3).line());
        assertEquals(Path.of("/srv/with space.vhdx"), t.find(Path.of("/srv/./with space.vhdx")).orElseThrow().image());
        assertTrue(t.find(Path.of("/srv/other.vdi")).isEmpty());
    }

    @Test
    void emptyTableHasNoEntries() throws IOException {
        assertEquals(List.of(), parse("").entries());
        assertEquals(List.of(), parse("# nothing\n\n   \n").entries());
    }

    @Test
    void badLinesNameTheLineAndTheProblem() {
        assertEquals("/etc/vdisktab: line 2: image path \"disk.vdi\" is not absolute", error("# x\ndisk.vdi\n"));
        assertEquals("/etc/vdisktab: line 1: unknown option \"rox\" (ro, snapshot, backend=, allow-refs=, defaults)", error("/a.vdi rox"));
        assertEquals("/etc/vdisktab: line 1: backend \"loop\": choose auto, kmod, nbd or fuse", error("/a.vdi backend=loop"));
        assertEquals("/etc/vdisktab: line 1: ro and snapshot exclude each other", error("/a.vdi ro,snapshot"));
        assertEquals("/etc/vdisktab: line 1: expected IMAGE [OPTIONS], found 3 fields (write a space in a path as \\040)",
                error("/my disk.vdi ro"));
        assertEquals("/etc/vdisktab: line 3: /./a.vdi is listed on line 1 already", error("/a.vdi\n/b.vdi\n/./a.vdi ro\n"));
        assertEquals("/etc/vdisktab: line 1: allow-refs directory \"bases\" is not absolute", error("/a.vdi allow-refs=bases"));
        assertEquals("/etc/vdisktab: line 1: unknown option \"\" (ro, snapshot, backend=, allow-refs=, defaults)", error("/a.vdi ro,"));
    }

    @Test
    void badEscapesAreRefusedAndControlCharactersNotPrintedRaw() {
        assertTrue(error("/a\\04.vdi").contains("bad escape in \"/a\\04.vdi\""));
        assertTrue(error("/a\\400.vdi").contains("bad escape"));
        assertTrue(error("/a\\000.vdi").contains("only ASCII characters other than NUL"));
        assertTrue(error("/a.vdi ro\u001b[2J").contains("\\x1b[2J"));
    }
}
