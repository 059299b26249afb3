package org.vdiskload.nbd;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;

import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Loading the server's certificate and key: PKCS#8 RSA and EC work; anything else is one line naming the file and the fix. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TlsCredentialsTest {
    @TempDir
    static Path dir;
    TestPki rsa;
    TestPki ec;

    @BeforeAll
    void make() throws Exception {
        rsa = TestPki.create(dir.resolve("rsa"), "rsa");
        ec = TestPki.create(dir.resolve("ec"), "ec");
    }

    private String failure(Path cert, Path key) {
        IOException e = assertThrows(IOException.class, () -> TlsCredentials.load(cert, key));
        assertTrue(!e.getMessage().contains("\n"), e.getMessage());
        return e.getMessage();
    }

    @Test
    void anEcKeyServesTls() {
        assertTimeoutPreemptively(Duration.ofSeconds(30), () -> {
            byte[] content = new byte[1 << 16];
            for (int i = 0; i < content.length; i++) content[i] = (byte) (i * 5);
            Path sock = dir.resolve("ec.sock");
            try (DiskImage d = Images.open(Files.write(dir.resolve("ec.raw"), content), OpenOptions.DEFAULTS.withFormat("raw"));
                 NbdServer server = NbdServer.start(List.of(Export.of("d", d)), UnixDomainSocketAddress.of(sock),
                         NbdServer.Options.defaults().withTls(TlsCredentials.fromDirectory(ec.dir())).withLog(l -> { }));
                 TestClient c = new TestClient(sock)) {
                c.greet(Nbd.FLAG_C_FIXED_NEWSTYLE);
                assertTrue(c.startTls(ec.clientContext()));
                assertEquals(content.length, c.info(Nbd.OPT_GO, "d").size());
                assertArrayEquals(content, c.read(0, content.length, 0));
            }
        });
    }

    @Test
    void traditionalKeysNameTheConversion() throws Exception {
        Path pkcs1 = dir.resolve("rsa-pkcs1.pem");
        TestPki.openssl("pkey", "-in", rsa.key().toString(), "-traditional", "-out", pkcs1.toString());
        assertTrue(Files.readString(pkcs1).contains("BEGIN RSA PRIVATE KEY"));
        String m = failure(rsa.cert(), pkcs1);
        assertTrue(m.startsWith(pkcs1 + ": ") && m.contains("openssl pkcs8 -topk8 -nocrypt -in " + pkcs1), m);
        Path sec1 = dir.resolve("ec-sec1.pem");
        TestPki.openssl("ec", "-in", ec.key().toString(), "-out", sec1.toString());
        assertTrue(Files.readString(sec1).contains("BEGIN EC PRIVATE KEY"));
        m = failure(ec.cert(), sec1);
        assertTrue(m.startsWith(sec1 + ": ") && m.contains("openssl pkcs8 -topk8 -nocrypt"), m);
    }

    @Test
    void anEncryptedKeyNamesTheDecryption() throws Exception {
        Path encrypted = dir.resolve("encrypted.pem");
        TestPki.openssl("pkcs8", "-topk8", "-in", rsa.key().toString(), "-passout", "pass:secret", "-out", encrypted.toString());
        String m = failure(rsa.cert(), encrypted);
        assertTrue(m.startsWith(encrypted + ": ") && m.contains("encrypted") && m.contains("openssl pkcs8 -in"), m);
    }

    @Test
    void unreadableOrWrongFilesAreNamed() throws Exception {
        Path missing = dir.resolve("nope.pem");
        assertEquals(missing + ": cannot read the private key: no such file", failure(rsa.cert(), missing));
        assertEquals(missing + ": cannot read the certificate chain: no such file", failure(missing, rsa.key()));
        assertTrue(failure(rsa.key(), rsa.key()).startsWith(rsa.key() + ": not a PEM certificate chain"));
        assertTrue(failure(rsa.cert(), rsa.cert()).startsWith(rsa.cert() + ": no PEM private key"));
        Path binary = Files.write(dir.resolve("binary.pem"), new byte[] {(byte) 0xff, (byte) 0xfe, 0, 1});
        assertEquals(binary + ": cannot read the private key: not a PEM text file", failure(rsa.cert(), binary));
        assertEquals(ec.key() + ": this private key does not belong to the certificate in " + rsa.cert(), failure(rsa.cert(), ec.key()));
        IOException e = assertThrows(IOException.class, () -> TlsCredentials.fromDirectory(dir.resolve("absent")));
        assertTrue(e.getMessage().contains("server-cert.pem and server-key.pem"), e.getMessage());
    }
}
