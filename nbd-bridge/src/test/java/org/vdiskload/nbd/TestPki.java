package org.vdiskload.nbd;

import org.vdiskload.testing.Tools;

import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;

/**
 * Certificates for the TLS tests, made with openssl: a CA and a server certificate for localhost
 * (CN and SAN, with 127.0.0.1) in a directory laid out as libnbd's tls-certificates and qemu's
 * tls-creds-x509 expect: ca-cert.pem, server-cert.pem, server-key.pem (PKCS#8).
 */
record TestPki(Path dir) {

    /** A CA and a server certificate with a {@code keyAlgorithm} ("rsa" or "ec") key. */
    static TestPki create(Path dir, String keyAlgorithm) throws Exception {
        Files.createDirectories(dir);
        String ca = dir.resolve("ca-cert.pem").toString();
        String caKey = dir.resolve("ca-key.pem").toString();
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", caKey, "-out", ca, "-days", "2",
                "-subj", "/CN=vdiskload test CA");
        Path key = dir.resolve("server-key.pem");
        if (keyAlgorithm.equals("ec")) {
            openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key.toString());
        } else {
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key.toString());
        }
        Path csr = dir.resolve("server.csr");
        openssl("req", "-new", "-key", key.toString(), "-out", csr.toString(), "-subj", "/CN=localhost");
        Path ext = Files.writeString(dir.resolve("server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                + "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n");
        openssl("x509", "-req", "-in", csr.toString(), "-CA", ca, "-CAkey", caKey, "-CAcreateserial",
                "-out", dir.resolve("server-cert.pem").toString(), "-days", "2", "-extfile", ext.toString());
        return new TestPki(dir);
    }

    static void openssl(String... args) throws Exception {
        String[] cmd = new String[args.length + 1];
        cmd[0] = "openssl";
        System.arraycopy(args, 0, cmd, 1, args.length);
        Tools.check(cmd);
    }

    Path cert() {
        return dir.resolve("server-cert.pem");
    }

    Path key() {
        return dir.resolve("server-key.pem");
    }

    TlsCredentials credentials() throws Exception {
        return TlsCredentials.load(cert(), key());
    }

    /** A client context trusting only this CA. */
    SSLContext clientContext() throws Exception {
        KeyStore trust = KeyStore.getInstance("PKCS12");
        trust.load(null, null);
        try (InputStream in = Files.newInputStream(dir.resolve("ca-cert.pem"))) {
            trust.setCertificateEntry("ca", CertificateFactory.getInstance("X.509").generateCertificate(in));
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        SSLContext c = SSLContext.getInstance("TLS");
        c.init(null, tmf.getTrustManagers(), null);
        return c;
    }
}
