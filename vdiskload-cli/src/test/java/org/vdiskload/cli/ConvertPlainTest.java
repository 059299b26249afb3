package org.vdiskload.cli;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

/** convert's plain form, parsed without picocli, must mean exactly what picocli makes of it; the rest goes to picocli. */
class ConvertPlainTest {
    /** Every field the command reads, as picocli fills them from {@code args} (without the leading "convert"). */
    private static List<Object> picocli(String... args) {
        ConvertCommand c = new ConvertCommand();
        new CommandLine(c).parseArgs(args);
        return fields(c);
    }

    private static List<Object> fields(ConvertCommand c) {
        return Arrays.asList(c.image.format, c.image.snapshot, c.image.backingFormat, c.image.allowRefs.directories,
                c.outputFormat, c.options, c.compress, c.reuse, c.progress, c.source, c.target);
    }

    private static void assertSameAsPicocli(String... args) {
        ConvertCommand plain = ConvertCommand.parsePlain(args);
        assertNotNull(plain, String.join(" ", args));
        assertEquals(picocli(Arrays.copyOfRange(args, 1, args.length)), fields(plain), String.join(" ", args));
    }

    @Test
    void plainFormsParseAsPicocliDoes() {
        assertSameAsPicocli("convert", "a.raw", "b.raw");
        assertSameAsPicocli("convert", "-f", "raw", "-O", "qcow2", "a.raw", "b.qcow2");
        assertSameAsPicocli("convert", "--format", "qcow2", "-O", "vpc", "-o", "subformat=dynamic,force_size=on", "a", "b");
        assertSameAsPicocli("convert", "-c", "-p", "-O", "qcow2", "-o", "compression_type=zstd", "a", "b");
        assertSameAsPicocli("convert", "a", "-n", "-O", "raw", "b");
        assertSameAsPicocli("convert", "--snapshot", "s1", "--backing-format", "raw", "-f", "qcow2", "a", "b");
        assertSameAsPicocli("convert", "--allow-refs", "/srv/base", "-O", "qcow2", "--allow-refs", "../bases", "a", "b");
    }

    @Test
    void everythingElseIsLeftToPicocli() {
        String[][] others = {
                {"info", "a"},
                {"convert"},
                {"convert", "a"},
                {"convert", "a", "b", "c"},
                {"convert", "--help"},
                {"convert", "-h", "a", "b"},
                {"convert", "-cp", "a", "b"},
                {"convert", "-Oqcow2", "a", "b"},
                {"convert", "-O=qcow2", "a", "b"},
                {"convert", "-O", "qcow2", "-O", "raw", "a", "b"},
                {"convert", "-f", "raw", "--format", "raw", "a", "b"},
                {"convert", "-c", "-c", "a", "b"},
                {"convert", "a", "b", "-O"},
                {"convert", "-O", "-c", "a", "b"},
                {"convert", "-O", "nosuch", "a", "b"},
                {"convert", "@args"},
                {"convert", "-o", "@opts", "a", "b"},
                {"convert", "--", "a", "b"},
                {"convert", "-", "b"},
                {"convert", "a\0", "b"},
                {"convert", "a", "b", "--allow-refs"},
                {"convert", "--allow-refs", "-c", "a", "b"},
                {"convert", "--allow-refs=/srv", "a", "b"},
        };
        for (String[] args : others) assertNull(ConvertCommand.parsePlain(args), String.join(" ", args));
    }
}
