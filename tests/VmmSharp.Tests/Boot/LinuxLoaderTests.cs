using System.Buffers.Binary;
using VmmSharp.Arch.X86;
using VmmSharp.Boot;
using VmmSharp.Memory;
using Xunit;

namespace VmmSharp.Tests.Boot;

public class LinuxLoaderTests
{
    private const ulong Zp = Layout.ZeroPage;

    private static BootRequest Request(byte[] kernel, byte[]? initrd = null, string cmdline = "console=ttyS0 root=/dev/vda") =>
        new(kernel, "/boot/vmlinuz") { CommandLine = cmdline, Initrd = initrd };

    private static InvalidKernelImageException Refused(byte[] kernel, ulong mib = 64, byte[]? initrd = null)
    {
        using GuestMemory memory = BootTestMemory.Ram(mib);
        return Assert.Throws<InvalidKernelImageException>(() => LinuxLoader.Load(memory, Request(kernel, initrd)));
    }

    [Fact]
    public void ARelocatableKernelLoadsAtItsPreferredAddressAndEntersInLongModeAt0x200()
    {
        byte[] image = TestImages.BzImage();
        using GuestMemory memory = BootTestMemory.Ram(64);
        BootResult r = LinuxLoader.Load(memory, Request(image));
        Assert.Equal(0x1000000UL, r.KernelStart);
        Assert.Equal(0x1020000UL, r.KernelEnd); // init_size
        Assert.Equal(image[0xa00..], memory.ReadBytes(0x1000000, 0x3000));
        X86EntryState s = r.EntryState;
        Assert.Equal(X86CpuMode.Long64, s.Mode);
        Assert.Equal(0x1000200UL, s.Rip);
        Assert.Equal(Zp, s.Rsi);
        Assert.Equal(0UL, s.Rflags & 0x200);
        Assert.Equal(0x10, s.Cs.Selector);
        Assert.Equal(0x18, s.Ds.Selector);
    }

    [Fact]
    public void ANonRelocatableKernelLoadsAtOneMiB()
    {
        using GuestMemory memory = BootTestMemory.Ram(64);
        BootResult r = LinuxLoader.Load(memory, Request(TestImages.BzImage(relocatable: false)));
        Assert.Equal(0x100000UL, r.KernelStart);
        Assert.Equal(0x100200UL, r.EntryState.Rip);
    }

    [Fact]
    public void ANonRelocatableKernelRunsAtItsPreferredAddressSoItsInitSizeCountsFromThere()
    {
        using GuestMemory memory = BootTestMemory.Ram(64);
        BootResult r = LinuxLoader.Load(memory, Request(TestImages.BzImage(relocatable: false, prefAddress: 0x1000000, initSize: 0x20000)));
        Assert.Equal(0x100000UL, r.KernelStart);
        Assert.Equal(0x1020000UL, r.KernelEnd);
    }

    [Fact]
    public void ARelocatableKernelRunsAtItsPreferredAddressAlignedUpToKernelAlignment()
    {
        using GuestMemory memory = BootTestMemory.Ram(64);
        BootResult r = LinuxLoader.Load(memory, Request(TestImages.BzImage(prefAddress: 0x1100000, initSize: 0x20000)));
        Assert.Equal(0x1200000UL, r.KernelStart);
        Assert.Equal(0x1220000UL, r.KernelEnd);
        Assert.Equal(0x1200200UL, r.EntryState.Rip);
    }

    [Fact]
    public void BeforeProtocol210ThereIsNoPreferredAddressAndARelocatableKernelRunsAtOneMiBAligned()
    {
        using GuestMemory memory = BootTestMemory.Ram(64);
        BootResult r = LinuxLoader.Load(memory, Request(TestImages.BzImage(version: 0x209, prefAddress: 0x1000000)));
        Assert.Equal(0x200000UL, r.KernelStart);
    }

    [Fact]
    public void ARelocatableKernelWhoseInitSizeFromThePreferredAddressPassesRamEndIsRefused()
    {
        // Loading it at 1 MiB instead would not help: it moves up to pref_address before decompressing.
        InvalidKernelImageException e = Refused(TestImages.BzImage(prefAddress: 0xF00000, initSize: 0x600000), mib: 20);
        Assert.Contains("runs at its pref_address aligned to kernel_alignment (init_size), needs 0x600000 bytes at 0x1000000 but guest RAM ends at 0x1400000",
            e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ANonRelocatableKernelWhoseInitSizeFromThePreferredAddressPassesRamEndIsRefused()
    {
        InvalidKernelImageException e = Refused(TestImages.BzImage(relocatable: false, prefAddress: 0x1000000, initSize: 0x1000000), mib: 24);
        Assert.Contains("non-relocatable kernel, which runs at its pref_address (init_size), needs 0x1000000 bytes at 0x1000000 but guest RAM ends at 0x1800000",
            e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheInitrdNeverOverlapsWhereTheKernelRuns()
    {
        // Placed as high as possible, this initrd would start at 0x1200000, inside [0x1000000, 0x1400000) where the kernel runs.
        InvalidKernelImageException e = Refused(TestImages.BzImage(relocatable: false, prefAddress: 0x1000000, initSize: 0x400000),
            mib: 64, initrd: new byte[0x2E00000]);
        Assert.Contains("between the kernel's end at 0x1400000 and 0x4000000", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AKernelAlignmentThatIsNotAPowerOfTwoIsRefused()
    {
        byte[] image = TestImages.BzImage();
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(0x230), 0x300000);
        InvalidKernelImageException e = Refused(image);
        Assert.Contains("kernel_alignment 0x300000 is not a power of two", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void APreferredAddressAtTheTopOfTheAddressSpaceIsRefusedWithoutOverflow()
    {
        InvalidKernelImageException e = Refused(TestImages.BzImage(prefAddress: 0xFFFF_FFFF_FFF0_0000));
        Assert.Contains("pref_address 0xfffffffffff00000 is beyond any guest RAM", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SetupSectsZeroMeansFour()
    {
        byte[] image = TestImages.BzImage(setupSects: 0);
        using GuestMemory memory = BootTestMemory.Ram(64);
        LinuxLoader.Load(memory, Request(image));
        Assert.Equal(image[0xa00..0xa10], memory.ReadBytes(0x1000000, 16));
    }

    [Fact]
    public void TheZeroPageHoldsTheImagesSetupHeaderWithTheLoaderFields()
    {
        byte[] image = TestImages.BzImage();
        using GuestMemory memory = BootTestMemory.Ram(64);
        LinuxLoader.Load(memory, Request(image));
        Assert.Equal(image[0x1f1..0x210], memory.ReadBytes(Zp + 0x1f1, 0x210 - 0x1f1));
        Assert.Equal(0x53726448U, memory.Read<uint>(Zp + 0x202));
        Assert.Equal((ushort)0x20f, memory.Read<ushort>(Zp + 0x206));
        Assert.Equal(0xff, memory.Read<byte>(Zp + 0x210));
        Assert.Equal(0x81, memory.Read<byte>(Zp + 0x211));
        Assert.Equal((ushort)(0xe000 - 0x200), memory.Read<ushort>(Zp + 0x224));
        Assert.Equal((uint)Layout.CommandLine, memory.Read<uint>(Zp + 0x228));
        Assert.Equal(0U, memory.Read<uint>(Zp + 0xc8));
        Assert.Equal(0x1000000UL, memory.Read<ulong>(Zp + 0x258));
        Assert.Equal("console=ttyS0 root=/dev/vda", memory.ReadCString(memory.Read<uint>(Zp + 0x228)));
    }

    [Fact]
    public void TheZeroPageCarriesTheE820Table()
    {
        using GuestMemory memory = new(Layout.RamRegions(5UL << 30));
        BootResult r = LinuxLoader.Load(memory, Request(TestImages.BzImage()));
        Assert.Equal(4, memory.Read<byte>(Zp + 0x1e8));
        for (int i = 0; i < 4; i++)
        {
            ulong e = Zp + 0x2d0 + (ulong)(i * 20);
            Assert.Equal(r.MemoryMap.Entries[i].Address, memory.Read<ulong>(e));
            Assert.Equal(r.MemoryMap.Entries[i].Size, memory.Read<ulong>(e + 8));
            Assert.Equal((uint)r.MemoryMap.Entries[i].Type, memory.Read<uint>(e + 16));
        }
        Assert.Equal(4UL << 30, memory.Read<ulong>(Zp + 0x2d0 + (3 * 20)));
    }

    [Fact]
    public void TheInitrdGoesAsHighAsPossibleBelowLowRamEndPageAligned()
    {
        byte[] initrd = TestImages.Pattern(0x1234, 4);
        using GuestMemory memory = BootTestMemory.Ram(64);
        BootResult r = LinuxLoader.Load(memory, Request(TestImages.BzImage(), initrd));
        Assert.Equal(0x3ffe000UL, r.InitrdAddress);
        Assert.Equal(0x3ffe000U, memory.Read<uint>(Zp + 0x218));
        Assert.Equal(0x1234U, memory.Read<uint>(Zp + 0x21c));
        Assert.Equal(0U, memory.Read<uint>(Zp + 0xc0));
        Assert.Equal(initrd, memory.ReadBytes(0x3ffe000, initrd.Length));
    }

    [Fact]
    public void TheInitrdStaysBelowInitrdAddrMax()
    {
        using GuestMemory memory = BootTestMemory.Ram(64);
        BootResult r = LinuxLoader.Load(memory, Request(TestImages.BzImage(initrdAddrMax: 0x1ffffff), TestImages.Pattern(0x1234)));
        Assert.Equal(0x1ffe000UL, r.InitrdAddress);
    }

    [Fact]
    public void TheInitrdStaysBelowTheMmioHoleWhenRamGoesAboveFourGiB()
    {
        using GuestMemory memory = new(Layout.RamRegions(5UL << 30));
        BootResult r = LinuxLoader.Load(memory, Request(TestImages.BzImage(initrdAddrMax: 0xffffffff), TestImages.Pattern(0x2000)));
        Assert.Equal(0xBFFFE000UL, r.InitrdAddress);
    }

    [Fact]
    public void AnOldBootProtocolIsRefusedWithItsVersion()
    {
        InvalidKernelImageException e = Refused(TestImages.BzImage(version: 0x203));
        Assert.Contains("unsupported Linux boot protocol 2.03; need 2.06 or later", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AKernelWithoutA64BitEntryIsRefused()
    {
        InvalidKernelImageException e = Refused(TestImages.BzImage(xloadflags: 0x2));
        Assert.Contains("xloadflags 0x2 lacks XLF_KERNEL_64", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AWrongBootFlagIsRefused()
    {
        byte[] image = TestImages.BzImage();
        image[0x1fe] = 0x12;
        InvalidKernelImageException e = Refused(image);
        Assert.Contains("boot_flag at 0x1fe is 0xaa12, expected 0xaa55", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WrongMagicIsRefused()
    {
        byte[] image = TestImages.BzImage();
        image[0x205] = (byte)'X';
        InvalidKernelImageException e = Refused(image);
        Assert.Contains("0x58726448", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AZImageIsRefused()
    {
        InvalidKernelImageException e = Refused(TestImages.BzImage(loadflags: 0));
        Assert.Contains("loadflags 0x0 without LOADED_HIGH", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SetupSectorsPastTheFileAreTruncated()
    {
        byte[] image = TestImages.BzImage(payloadSize: 0x100)[..0x800];
        InvalidKernelImageException e = Refused(image);
        Assert.Contains("truncated: setup_sects 4 puts the protected-mode kernel at 0xa00 but the file has 0x800 bytes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AHeaderCutShortIsTruncated()
    {
        InvalidKernelImageException e = Refused(TestImages.BzImage()[..0x240]);
        Assert.Contains("truncated: the setup header ends at 0x26c but the file has 0x240 bytes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AKernelLargerThanRamIsRefusedWithSizesAndRamEnd()
    {
        InvalidKernelImageException e = Refused(TestImages.BzImage(initSize: 0x3000000), mib: 32);
        Assert.Contains("needs 0x3000000 bytes at 0x1000000 but guest RAM ends at 0x2000000", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnInitrdLargerThanRamIsRefused()
    {
        InvalidKernelImageException e = Refused(TestImages.BzImage(), mib: 32, initrd: new byte[0x2000000]);
        Assert.Contains("initrd of 0x2000000 bytes does not fit", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ACommandLineLongerThanCmdlineSizeIsRefused()
    {
        using GuestMemory memory = BootTestMemory.Ram(64);
        ArgumentException e = Assert.Throws<ArgumentException>(() =>
            LinuxLoader.Load(memory, Request(TestImages.BzImage(cmdlineSize: 16), cmdline: new string('x', 17))));
        Assert.Contains("17 bytes exceeds the limit of 16 bytes", e.Message, StringComparison.Ordinal);
        Assert.Contains("cmdline_size is 16", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ACommandLineOfExactlyCmdlineSizeFits()
    {
        using GuestMemory memory = BootTestMemory.Ram(64);
        LinuxLoader.Load(memory, Request(TestImages.BzImage(cmdlineSize: 16), cmdline: new string('x', 16)));
        Assert.Equal(new string('x', 16), memory.ReadCString(Layout.CommandLine));
    }
}
