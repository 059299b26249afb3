package org.vdiskload.nbd;

import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.cert.Certificate;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.spec.InvalidKeySpecException;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The server's TLS identity: an X.509 certificate chain and its private key, both PEM (the key
 * unencrypted PKCS#8, RSA or EC). Offers TLS 1.3 and 1.2 only; client certificates are not asked for.
 */
public final class TlsCredentials {
    private static final List<String> PROTOCOLS = List.of("TLSv1.3", "TLSv1.2");
    private static final Pattern PEM = Pattern.compile("-----BEGIN ([A-Z0-9 ]+)-----([^-]*)-----END \\1-----");
    private static final char[] NO_PASSWORD = new char[0];

    private final SSLContext context;
    private final String[] protocols;

    private TlsCredentials(SSLContext context) {
        this.context = context;
        List<String> supported = Arrays.asList(context.getSupportedSSLParameters().getProtocols());
        this.protocols = PROTOCOLS.stream().filter(supported::contains).toArray(String[]::new);
    }

    /**
     * Loads a certificate chain (the server's certificate first) and its private key. Anything
     * wrong is an IOException whose message names the file and, where there is one, the fix.
     */
    public static TlsCredentials load(Path certificateChain, Path privateKey) throws IOException {
        Certificate[] chain = certificates(certificateChain);
        PrivateKey key = privateKey(privateKey);
        checkPair(key, chain[0], privateKey, certificateChain);
        try {
            KeyStore store = KeyStore.getInstance("PKCS12");
            store.load(null, null);
            store.setKeyEntry("server", key, NO_PASSWORD, chain);
            KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(store, NO_PASSWORD);
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(kmf.getKeyManagers(), null, null);
            return new TlsCredentials(context);
        } catch (GeneralSecurityException e) {
            throw new IOException(certificateChain + ": cannot use this certificate and key: " + e.getMessage(), e);
        }
    }

    /** The files of a qemu-style credentials directory: server-cert.pem and server-key.pem. */
    public static TlsCredentials fromDirectory(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) throw new IOException(dir + ": not a directory (expected server-cert.pem and server-key.pem in it)");
        return load(dir.resolve("server-cert.pem"), dir.resolve("server-key.pem"));
    }

    /** A server-side engine for one connection. */
    SSLEngine newEngine() {
        SSLEngine engine = context.createSSLEngine();
        engine.setUseClientMode(false);
        engine.setEnabledProtocols(protocols);
        return engine;
    }

    private static String text(Path file, String what) throws IOException {
        try {
            return Files.readString(file, StandardCharsets.US_ASCII);
        } catch (IOException e) {
            throw new IOException(file + ": cannot read the " + what + ": " + reason(e), e);
        }
    }

    private static String reason(IOException e) {
        return e instanceof java.nio.file.NoSuchFileException ? "no such file"
                : e instanceof java.nio.file.AccessDeniedException ? "permission denied"
                : e instanceof java.nio.charset.CharacterCodingException ? "not a PEM text file"
                : e.getMessage() != null ? e.getMessage() : e.toString();
    }

    private static Certificate[] certificates(Path file) throws IOException {
        String pem = text(file, "certificate chain");
        try {
            CertificateFactory f = CertificateFactory.getInstance("X.509");
            Certificate[] chain = f.generateCertificates(new ByteArrayInputStream(pem.getBytes(StandardCharsets.US_ASCII)))
                    .toArray(Certificate[]::new);
            if (chain.length == 0) throw new CertificateException("no certificate");
            return chain;
        } catch (CertificateException e) {
            throw new IOException(file + ": not a PEM certificate chain (-----BEGIN CERTIFICATE-----)", e);
        }
    }

    private static PrivateKey privateKey(Path file) throws IOException {
        Matcher m = PEM.matcher(text(file, "private key"));
        while (m.find()) {
            switch (m.group(1)) {
                case "PRIVATE KEY" -> {
                    return pkcs8(file, m.group(2));
                }
                case "RSA PRIVATE KEY", "EC PRIVATE KEY" -> throw new IOException(file + ": "
                        + (m.group(1).startsWith("RSA") ? "an RSA key in PKCS#1 format" : "an EC key in SEC1 format")
                        + ", not PKCS#8; convert it with: openssl pkcs8 -topk8 -nocrypt -in " + file + " -out KEY.pem");
                case "ENCRYPTED PRIVATE KEY" -> throw new IOException(file + ": the private key is encrypted; decrypt it with: openssl pkcs8 -in "
                        + file + " -out KEY.pem");
                default -> { }
            }
        }
        throw new IOException(file + ": no PEM private key (-----BEGIN PRIVATE KEY-----) in it");
    }

    private static PrivateKey pkcs8(Path file, String base64) throws IOException {
        byte[] der;
        try {
            der = Base64.getMimeDecoder().decode(base64.trim());
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": the private key is not valid base64", e);
        }
        for (String algorithm : List.of("RSA", "EC")) {
            try {
                return KeyFactory.getInstance(algorithm).generatePrivate(new PKCS8EncodedKeySpec(der));
            } catch (InvalidKeySpecException e) {
                // try the next algorithm
            } catch (GeneralSecurityException e) {
                throw new IOException(file + ": " + e.getMessage(), e);
            }
        }
        throw new IOException(file + ": not an RSA or EC private key in PKCS#8");
    }

    /** A key that is not the certificate's would only show up as every client's handshake failing: say so now. */
    private static void checkPair(PrivateKey key, Certificate cert, Path keyFile, Path certFile) throws IOException {
        String algorithm = key.getAlgorithm().equals("EC") ? "SHA256withECDSA" : "SHA256withRSA";
        byte[] probe = "vdiskload".getBytes(StandardCharsets.US_ASCII);
        try {
            Signature s = Signature.getInstance(algorithm);
            s.initSign(key);
            s.update(probe);
            byte[] signature = s.sign();
            Signature v = Signature.getInstance(algorithm);
            v.initVerify(cert.getPublicKey());
            v.update(probe);
            if (v.verify(signature)) return;
        } catch (GeneralSecurityException e) {
            // a key of another algorithm than the certificate's: does not match either
        }
        throw new IOException(keyFile + ": this private key does not belong to the certificate in " + certFile);
    }
}
