package org.vdiskload.formats;

import org.vdiskload.format.layout.LayoutFormat;
import org.vdiskload.format.qcow.QcowFormat;
import org.vdiskload.format.qcow2.Qcow2Format;
import org.vdiskload.format.raw.RawFormat;
import org.vdiskload.format.vdi.VdiFormat;
import org.vdiskload.format.vhd.VhdFormat;
import org.vdiskload.format.vhdx.VhdxFormat;
import org.vdiskload.format.vmdk.VmdkFormat;
import org.vdiskload.image.ImageFormat;

import java.util.List;
import java.util.function.Supplier;

/**
 * The library's formats, in probe order: the one place above every {@code format} package that knows them
 * all. {@code image.Images} looks this class up by name, so the contract's package imports no format (the
 * library's layers import downwards only). A plain list, not {@code ServiceLoader}: its lookup opens every jar
 * of the class path for a provider file (19 for the CLI), about 20 ms of a one-shot command's 80 ms start-up,
 * to find the formats this jar holds anyway.
 */
public final class Formats implements Supplier<List<ImageFormat>> {
    @Override
    public List<ImageFormat> get() {
        return List.of(new RawFormat(), new QcowFormat(), new VdiFormat(), new VhdFormat(), new Qcow2Format(),
                new VmdkFormat(), new VhdxFormat(), new LayoutFormat());
    }
}
