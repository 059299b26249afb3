package org.vdiskload.format.raw;

import org.vdiskload.image.CreateOptions;
import org.vdiskload.image.ImageCreator;
import org.vdiskload.image.ImageFormat;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.OpenContext;
import org.vdiskload.image.ProbeData;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Holes;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/** A raw image: the file is the disk. Every file probes as raw, with the lowest score. */
public final class RawFormat implements ImageFormat {
    @Override
    public String name() {
        return "raw";
    }

    @Override
    public List<String> aliases() {
        return List.of("img");
    }

    @Override
    public int probe(ProbeData data) {
        return FALLBACK;
    }

    @Override
    public ImageLayer open(ImageFile file, OpenContext context) throws IOException {
        return new RawLayer(file);
    }

    @Override
    public Optional<ImageCreator> creator() {
        return Optional.of(RawFormat::create);
    }

    /** qemu-img create -f raw: a sparse file; preallocation=falloc reserves space, full writes zeros. */
    private static List<Path> create(long size, CreateOptions options) throws IOException {
        Path target = options.target();
        String prealloc = options.takeChoice("preallocation", "off", "off", "falloc", "full");
        options.requireAllTaken("raw");
        if (options.backingFile() != null) throw ImageException.invalid(target, "raw images have no backing file");
        try (RandomAccessFile f = new RandomAccessFile(target.toFile(), "rw")) {
            f.setLength(0);
            f.setLength(size);
            if (prealloc.equals("full")) writeZeros(f.getChannel(), size);
        } catch (java.io.FileNotFoundException e) {
            throw ImageException.invalid(target, "cannot create: " + e.getMessage());
        }
        if (prealloc.equals("falloc") && !Holes.allocate(target, 0, size)) {
            throw ImageException.unsupported(target, "preallocation=falloc: the file system cannot reserve space");
        }
        return List.of(target);
    }

    private static void writeZeros(FileChannel ch, long size) throws IOException {
        ByteBuffer zeros = ByteBuffer.allocateDirect(1 << 20);
        for (long pos = 0; pos < size; ) {
            zeros.clear().limit((int) Math.min(zeros.capacity(), size - pos));
            pos += ch.write(zeros, pos);
        }
    }
}
