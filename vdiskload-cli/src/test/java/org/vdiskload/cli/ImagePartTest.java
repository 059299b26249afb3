package org.vdiskload.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** IMAGE[:PART] where an image's own name may hold ':'. */
class ImagePartTest {
    @TempDir
    Path dir;

    @Test
    void aSuffixIsThePartOnlyWhenTheWholeIsNoFile() throws IOException {
        Path plain = Files.createFile(dir.resolve("disk.qcow2"));
        Path colon = Files.createFile(dir.resolve("disk:2"));
        assertEquals(new ImagePart(plain, null), ImagePart.parse(plain.toString()));
        assertEquals(new ImagePart(plain, "2"), ImagePart.parse(plain + ":2"));
        assertEquals(new ImagePart(plain, "root"), ImagePart.parse(plain + ":root"));
        // the file named disk:2 is the image itself...
        assertEquals(new ImagePart(colon, null), ImagePart.parse(colon.toString()));
        // ...and disk:2:1 its partition 1
        assertEquals(new ImagePart(colon, "1"), ImagePart.parse(colon + ":1"));
    }

    @Test
    void missingFilesAreNamed() {
        for (String arg : new String[] {dir + "/none.qcow2", dir + "/none.qcow2:1", dir + "/disk.qcow2:", ""}) {
            IOException e = assertThrows(IOException.class, () -> ImagePart.parse(arg), arg);
            assertEquals(arg.isEmpty() ? "an empty IMAGE" : arg + ": no such file", e.getMessage());
        }
    }
}
