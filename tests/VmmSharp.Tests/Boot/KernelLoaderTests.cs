using VmmSharp.Arch.X86;
using VmmSharp.Boot;
using VmmSharp.Memory;
using Xunit;

namespace VmmSharp.Tests.Boot;

public class KernelLoaderTests
{
    public static TheoryData<int> Formats => [0, 1, 2];

    private static (byte[] Image, KernelFormat Format) Kernel(int which) => which switch
    {
        0 => (TestImages.BzImage(), KernelFormat.BzImage),
        1 => (new ElfBuilder().Load(0x1000000, TestImages.Pattern(0x100)).Notes(TestImages.PvhNote(0x1000000)).Build(), KernelFormat.Pvh),
        _ => (new ElfBuilder(is64: false) { Entry = 0x100000 }.Load(0x100000, [.. TestImages.MultibootHeader(0), .. new byte[52]]).Build(), KernelFormat.Multiboot),
    };

    [Theory]
    [MemberData(nameof(Formats))]
    public void DetectsTheFormatLoadsItAndWritesTheMpTable(int which)
    {
        (byte[] image, KernelFormat format) = Kernel(which);
        using GuestMemory memory = BootTestMemory.Ram(64);
        BootResult r = KernelLoader.Load(memory, new BootRequest(image, "/k") { CpuCount = 4, CommandLine = "quiet" });
        Assert.Equal(format, r.Format);
        Assert.Equal(Layout.MpTable, r.MpTableAddress);
        Assert.Equal("_MP_"u8.ToArray(), memory.ReadBytes(Layout.MpTable, 4));
        Assert.EndsWith("quiet", memory.ReadCString(r.CommandLineAddress), StringComparison.Ordinal);
    }

    [Fact]
    public void ACpuCountOutOfRangeIsRefusedBeforeAnythingIsWritten()
    {
        using GuestMemory memory = BootTestMemory.Ram(64);
        Assert.Throws<ArgumentOutOfRangeException>(() => KernelLoader.Load(memory, new BootRequest(Kernel(0).Image) { CpuCount = 0 }));
        Assert.Equal(0UL, memory.Read<ulong>(Layout.ZeroPage + 0x200));
    }

    [Fact]
    public void AnUnknownImageIsRefused()
    {
        using GuestMemory memory = BootTestMemory.Ram(64);
        InvalidKernelImageException e = Assert.Throws<InvalidKernelImageException>(() => KernelLoader.Load(memory, new BootRequest(new byte[64])));
        Assert.Contains("first bytes: 00 00", e.Message, StringComparison.Ordinal);
    }
}
