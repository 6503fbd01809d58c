using VmmSharp.Boot;
using Xunit;

namespace VmmSharp.Tests.Boot;

public class KernelImageTests
{
    [Fact]
    public void AMultibootHeaderMakesAMultibootKernel()
    {
        byte[] image = new byte[0x2000];
        TestImages.MultibootHeader(0x3).CopyTo(image, 0x40);
        Assert.Equal(KernelFormat.Multiboot, KernelImage.Detect(image));
    }

    [Fact]
    public void AnElfWithAMultibootHeaderIsMultibootEvenWithAPvhNote()
    {
        byte[] image = new ElfBuilder(is64: false).Load(0x100000, [.. TestImages.MultibootHeader(0), .. new byte[16]])
            .Notes(TestImages.PvhNote(0x100000, 4)).Build();
        Assert.Equal(KernelFormat.Multiboot, KernelImage.Detect(image));
    }

    [Fact]
    public void AMultibootMagicPastEightKiBIsNotAHeader()
    {
        byte[] image = new byte[0x3000];
        TestImages.MultibootHeader(0).CopyTo(image, 0x2000);
        Assert.Throws<InvalidKernelImageException>(() => KernelImage.Detect(image));
    }

    [Fact]
    public void AMultibootMagicWithABadChecksumIsNamedInTheError()
    {
        byte[] image = new byte[0x100];
        byte[] header = TestImages.MultibootHeader(0);
        header[8] ^= 1;
        header.CopyTo(image, 0x20);
        InvalidKernelImageException e = Assert.Throws<InvalidKernelImageException>(() => KernelImage.Detect(image));
        Assert.Contains("Multiboot magic at 0x20 has a bad checksum", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HdrSMakesABzImage() => Assert.Equal(KernelFormat.BzImage, KernelImage.Detect(TestImages.BzImage()));

    [Theory]
    [InlineData(true, 8)]
    [InlineData(false, 4)]
    public void AnElfWithAPvhNoteIsPvh(bool is64, int descSize)
    {
        byte[] image = new ElfBuilder(is64).Load(0x1000000, TestImages.Pattern(64)).Notes(TestImages.PvhNote(0x1000000, descSize)).Build();
        Assert.Equal(KernelFormat.Pvh, KernelImage.Detect(image));
    }

    [Fact]
    public void AnElfWithoutAPvhNoteIsRefused()
    {
        byte[] image = new ElfBuilder().Load(0x1000000, TestImages.Pattern(64)).Notes(TestImages.Note("GNU", 3, new byte[20])).Build();
        InvalidKernelImageException e = Assert.Throws<InvalidKernelImageException>(() => KernelImage.Detect(image));
        Assert.Contains("no PVH entry note", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnUnknownImageIsRefusedWithItsFirstBytes()
    {
        byte[] image = [0x4d, 0x5a, 0x90, 0x00, 0x03, 0x00, 0x00, 0x00];
        InvalidKernelImageException e = Assert.Throws<InvalidKernelImageException>(() => KernelImage.Detect(image));
        Assert.Contains("not a recognised kernel image (first bytes: 4d 5a 90 00 03", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnEmptyImageIsRefused()
    {
        InvalidKernelImageException e = Assert.Throws<InvalidKernelImageException>(() => KernelImage.Detect([]));
        Assert.Contains("empty", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AThreeByteImageIsCalledTruncated()
    {
        InvalidKernelImageException e = Assert.Throws<InvalidKernelImageException>(() => KernelImage.Detect([0x7f, 0x45, 0x4c]));
        Assert.Contains("truncated: 3 bytes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnElfCutInsideASegmentIsCalledTruncatedWithTheOffsets()
    {
        byte[] full = new ElfBuilder().Load(0x1000000, TestImages.Pattern(0x100)).Notes(TestImages.PvhNote(0x1000000)).Build();
        byte[] cut = full[..0x100];
        InvalidKernelImageException e = Assert.Throws<InvalidKernelImageException>(() => KernelImage.Detect(cut));
        Assert.Contains("truncated: ELF program header 0 ends at 0x1b0 but the file has 0x100 bytes", e.Message, StringComparison.Ordinal);
    }
}
