using VmmSharp.Arch.X86;
using VmmSharp.Boot;
using VmmSharp.Memory;
using Xunit;

namespace VmmSharp.Tests.Boot;

public class PvhLoaderTests
{
    private const ulong Entry = 0x1000100;

    private static byte[] Kernel(bool is64 = true) =>
        new ElfBuilder(is64).Load(0x1000000, TestImages.Pattern(0x2000), memSize: 0x3000, vaddr: 0xffff_ffff_8100_0000)
            .Notes(TestImages.PvhNote(Entry, is64 ? 8 : 4)).Build();

    private static BootRequest Request(byte[]? initrd = null) =>
        new(Kernel(), "/boot/vmlinux") { CommandLine = "console=ttyS0 panic=-1", Initrd = initrd };

    [Fact]
    public void StartInfoDescribesCommandLineMemoryMapAndModules()
    {
        using GuestMemory memory = BootTestMemory.Ram(64);
        BootResult r = PvhLoader.Load(memory, Request(TestImages.Pattern(0x1800)));
        Assert.Equal(Layout.PvhStartInfo, r.BootInfoAddress);
        ulong si = Layout.PvhStartInfo;
        Assert.Equal(0x336ec578U, memory.Read<uint>(si));
        Assert.Equal(1U, memory.Read<uint>(si + 4));
        Assert.Equal(0U, memory.Read<uint>(si + 8));
        Assert.Equal(1U, memory.Read<uint>(si + 12));
        Assert.Equal(Layout.PvhModuleList, memory.Read<ulong>(si + 16));
        Assert.Equal(Layout.CommandLine, memory.Read<ulong>(si + 24));
        Assert.Equal(0UL, memory.Read<ulong>(si + 32));
        Assert.Equal(Layout.PvhMemoryMap, memory.Read<ulong>(si + 40));
        Assert.Equal(3U, memory.Read<uint>(si + 48));
        Assert.Equal(0U, memory.Read<uint>(si + 52));
        Assert.Equal("console=ttyS0 panic=-1", memory.ReadCString(Layout.CommandLine));
    }

    [Fact]
    public void TheMemoryMapIsTheE820Map()
    {
        using GuestMemory memory = BootTestMemory.Ram(64);
        BootResult r = PvhLoader.Load(memory, Request());
        for (int i = 0; i < r.MemoryMap.Entries.Count; i++)
        {
            ulong at = Layout.PvhMemoryMap + (ulong)(i * 24);
            E820Entry e = r.MemoryMap.Entries[i];
            Assert.Equal(e.Address, memory.Read<ulong>(at));
            Assert.Equal(e.Size, memory.Read<ulong>(at + 8));
            Assert.Equal((uint)e.Type, memory.Read<uint>(at + 16));
            Assert.Equal(0U, memory.Read<uint>(at + 20));
        }
        Assert.Equal(E820Type.Reserved, r.MemoryMap.Entries[1].Type);
    }

    [Fact]
    public void TheInitrdIsModuleZeroAtTheTopOfLowRamPageAligned()
    {
        byte[] initrd = TestImages.Pattern(0x1800, 9);
        using GuestMemory memory = BootTestMemory.Ram(64);
        BootResult r = PvhLoader.Load(memory, Request(initrd));
        Assert.Equal(0x3ffe000UL, r.InitrdAddress);
        Assert.Equal(initrd, memory.ReadBytes(0x3ffe000, initrd.Length));
        Assert.Equal(0x3ffe000UL, memory.Read<ulong>(Layout.PvhModuleList));
        Assert.Equal(0x1800UL, memory.Read<ulong>(Layout.PvhModuleList + 8));
        Assert.Equal(0UL, memory.Read<ulong>(Layout.PvhModuleList + 16));
        Assert.Equal(0UL, memory.Read<ulong>(Layout.PvhModuleList + 24));
    }

    [Fact]
    public void WithoutAnInitrdThereAreNoModules()
    {
        using GuestMemory memory = BootTestMemory.Ram(64);
        BootResult r = PvhLoader.Load(memory, Request());
        Assert.Null(r.InitrdAddress);
        Assert.Equal(0U, memory.Read<uint>(Layout.PvhStartInfo + 12));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void EntryIsProtectedModeAtTheNoteWithEbxPointingAtStartInfo(bool is64)
    {
        using GuestMemory memory = BootTestMemory.Ram(64);
        BootResult r = PvhLoader.Load(memory, new BootRequest(Kernel(is64)));
        X86EntryState s = r.EntryState;
        Assert.Equal(KernelFormat.Pvh, r.Format);
        Assert.Equal(X86CpuMode.Protected32, s.Mode);
        Assert.Equal(Entry, s.Rip);
        Assert.Equal(Layout.PvhStartInfo, s.Rbx);
        Assert.Equal(1UL, s.Cr0 & 1);
        Assert.Equal(0UL, s.Cr0 & 0x8000_0000);
        Assert.Equal(0UL, s.Cr4);
        Assert.Equal(0x67U, s.Tr.Limit);
        Assert.Equal((0x1000000UL, 0x1003000UL), (r.KernelStart, r.KernelEnd));
        Assert.Equal(TestImages.Pattern(0x2000), memory.ReadBytes(0x1000000, 0x2000));
    }

    [Fact]
    public void AnInitrdLargerThanRamIsRefused()
    {
        using GuestMemory memory = BootTestMemory.Ram(32);
        InvalidKernelImageException e = Assert.Throws<InvalidKernelImageException>(() => PvhLoader.Load(memory, Request(new byte[40 << 20])));
        Assert.Contains("initrd of 0x2800000 bytes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AKernelLargerThanRamIsRefused()
    {
        using GuestMemory memory = BootTestMemory.Ram(16);
        InvalidKernelImageException e = Assert.Throws<InvalidKernelImageException>(() => PvhLoader.Load(memory, new BootRequest(
            new ElfBuilder().Load(0x1000000, TestImages.Pattern(16), memSize: 0x3000000).Notes(TestImages.PvhNote(Entry)).Build())));
        Assert.Contains("needs 0x3000000 bytes at 0x1000000 but", e.Message, StringComparison.Ordinal);
    }
}
