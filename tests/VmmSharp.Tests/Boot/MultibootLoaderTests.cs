using VmmSharp.Arch.X86;
using VmmSharp.Boot;
using VmmSharp.Memory;
using Xunit;

namespace VmmSharp.Tests.Boot;

public class MultibootLoaderTests
{
    private static byte[] ElfKernel(uint flags = 0x3) =>
        new ElfBuilder(is64: false) { Entry = 0x100010 }
            .Load(0x100000, [.. TestImages.MultibootHeader(flags), .. TestImages.Pattern(0x1000 - 12)], memSize: 0x2800).Build();

    private static BootRequest Request(byte[] kernel, byte[]? initrd = null) =>
        new(kernel, "/boot/kernel.elf") { CommandLine = "debug=1", Initrd = initrd, InitrdPath = "/boot/initrd.img" };

    [Fact]
    public void EntryIsProtectedModeWithTheMagicInEaxAndTheMbiInEbx()
    {
        using GuestMemory memory = BootTestMemory.Ram(64);
        BootResult r = MultibootLoader.Load(memory, Request(ElfKernel()));
        Assert.Equal(KernelFormat.Multiboot, r.Format);
        Assert.Equal(X86CpuMode.Protected32, r.EntryState.Mode);
        Assert.Equal(0x2BADB002UL, r.EntryState.Rax);
        Assert.Equal(Layout.MultibootInfo, r.EntryState.Rbx);
        Assert.Equal(0x100010UL, r.EntryState.Rip);
        Assert.Equal(0UL, r.EntryState.Cr0 & 0x8000_0000);
    }

    [Fact]
    public void TheMbiCarriesMemoryCommandLineModulesAndMap()
    {
        using GuestMemory memory = BootTestMemory.Ram(64);
        MultibootLoader.Load(memory, Request(ElfKernel(), TestImages.Pattern(0x1234)));
        ulong mbi = Layout.MultibootInfo;
        uint flags = memory.Read<uint>(mbi);
        Assert.Equal(0x1U | 0x4 | 0x8 | 0x40, flags & 0x4d);
        Assert.Equal(639U, memory.Read<uint>(mbi + 4));
        Assert.Equal((64U << 10) - 1024, memory.Read<uint>(mbi + 8));
        Assert.Equal("/boot/kernel.elf debug=1", memory.ReadCString(memory.Read<uint>(mbi + 16)));
        Assert.Equal(1U, memory.Read<uint>(mbi + 20));
        Assert.Equal((uint)Layout.MultibootModuleList, memory.Read<uint>(mbi + 24));
        Assert.Equal(MultibootLoader.BootLoaderName, memory.ReadCString(memory.Read<uint>(mbi + 64)));
    }

    [Fact]
    public void TheMemoryMapEntriesHaveSize20AndFollowTheE820Map()
    {
        using GuestMemory memory = BootTestMemory.Ram(64);
        BootResult r = MultibootLoader.Load(memory, Request(ElfKernel()));
        uint length = memory.Read<uint>(Layout.MultibootInfo + 44);
        uint at = memory.Read<uint>(Layout.MultibootInfo + 48);
        Assert.Equal((uint)(24 * r.MemoryMap.Entries.Count), length);
        for (int i = 0; i < r.MemoryMap.Entries.Count; i++)
        {
            ulong e = at + (ulong)(i * 24);
            Assert.Equal(20U, memory.Read<uint>(e));
            Assert.Equal(r.MemoryMap.Entries[i].Address, memory.Read<ulong>(e + 4));
            Assert.Equal(r.MemoryMap.Entries[i].Size, memory.Read<ulong>(e + 12));
            Assert.Equal((uint)r.MemoryMap.Entries[i].Type, memory.Read<uint>(e + 20));
        }
    }

    [Fact]
    public void TheInitrdIsModuleZeroPageAlignedAfterTheKernelWithItsPathAsCommandLine()
    {
        byte[] initrd = TestImages.Pattern(0x1234, 5);
        using GuestMemory memory = BootTestMemory.Ram(64);
        BootResult r = MultibootLoader.Load(memory, Request(ElfKernel(), initrd));
        ulong mod = Layout.MultibootModuleList;
        uint start = memory.Read<uint>(mod);
        Assert.Equal(0x103000U, start); // kernel ends at 0x102800 (bss included), next page
        Assert.Equal(0U, start % 4096);
        Assert.Equal(start + 0x1234U, memory.Read<uint>(mod + 4));
        Assert.Equal("/boot/initrd.img", memory.ReadCString(memory.Read<uint>(mod + 8)));
        Assert.Equal(initrd, memory.ReadBytes(start, initrd.Length));
        Assert.Equal(start, r.InitrdAddress);
    }

    [Fact]
    public void TheAoutKludgeLoadsByTheHeaderAddressesAndZeroesTheBss()
    {
        // Header at file offset 0x10, which the fields say loads at 0x200010: the load starts at file offset 0.
        byte[] image = new byte[0x1800];
        TestImages.Pattern(0x1800, 2).CopyTo(image, 0);
        TestImages.MultibootHeader(0x10000, (0x200010, 0x200000, 0x201000, 0x203000, 0x200040)).CopyTo(image, 0x10);
        using GuestMemory memory = BootTestMemory.Ram(64);
        memory.Fill(0x200000, 0x4000, 0xee);
        BootResult r = MultibootLoader.Load(memory, Request(image));
        Assert.Equal(image[..0x1000], memory.ReadBytes(0x200000, 0x1000));
        Assert.All(memory.ReadBytes(0x201000, 0x2000), b => Assert.Equal(0, b));
        Assert.Equal(0xee, memory.Read<byte>(0x203000));
        Assert.Equal(0x200040UL, r.EntryState.Rip);
        Assert.Equal((0x200000UL, 0x203000UL), (r.KernelStart, r.KernelEnd));
    }

    [Fact]
    public void AnAoutKludgeLoadPastTheFileIsTruncated()
    {
        byte[] image = new byte[0x800];
        TestImages.MultibootHeader(0x10000, (0x200000, 0x200000, 0x201000, 0, 0x200040)).CopyTo(image, 0);
        using GuestMemory memory = BootTestMemory.Ram(64);
        InvalidKernelImageException e = Assert.Throws<InvalidKernelImageException>(() => MultibootLoader.Load(memory, Request(image)));
        Assert.Contains("truncated: Multiboot load_end_addr 0x201000", e.Message, StringComparison.Ordinal);
        Assert.Contains("0x800 bytes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnElf64WithoutTheKludgeIsRefused()
    {
        byte[] image = new ElfBuilder().Load(0x100000, [.. TestImages.MultibootHeader(0), .. new byte[20]]).Build();
        using GuestMemory memory = BootTestMemory.Ram(64);
        InvalidKernelImageException e = Assert.Throws<InvalidKernelImageException>(() => MultibootLoader.Load(memory, Request(image)));
        Assert.Contains("ELF64", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownRequiredFlagsAreRefused()
    {
        using GuestMemory memory = BootTestMemory.Ram(64);
        InvalidKernelImageException e = Assert.Throws<InvalidKernelImageException>(() => MultibootLoader.Load(memory, Request(ElfKernel(0x8 | 0x3))));
        Assert.Contains("flags 0xb", e.Message, StringComparison.Ordinal);
        Assert.Contains("0x8", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WithoutArgumentsTheCommandLineIsThePath()
    {
        using GuestMemory memory = BootTestMemory.Ram(64);
        MultibootLoader.Load(memory, new BootRequest(ElfKernel(), "k"));
        Assert.Equal("k", memory.ReadCString(Layout.CommandLine));
        Assert.Equal(0U, memory.Read<uint>(Layout.MultibootInfo + 20));
    }

    [Fact]
    public void AnAoutKludgeThatLoadsNothingIsRefused()
    {
        // Found by fuzzing (fuzz target multiboot): load_end_addr = load_addr and no bss "loaded" an empty kernel.
        byte[] image = new byte[0x800];
        TestImages.MultibootHeader(0x10000, (0x200000, 0x200000, 0x200000, 0, 0x200000)).CopyTo(image, 0);
        using GuestMemory memory = BootTestMemory.Ram(64);
        InvalidKernelImageException e = Assert.Throws<InvalidKernelImageException>(() => MultibootLoader.Load(memory, Request(image)));
        Assert.Contains("loads nothing", e.Message, StringComparison.Ordinal);
    }
}
