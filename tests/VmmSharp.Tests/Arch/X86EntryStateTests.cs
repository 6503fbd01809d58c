using VmmSharp.Arch.X86;
using VmmSharp.Memory;
using Xunit;

namespace VmmSharp.Tests.Arch;

public class X86EntryStateTests
{
    private static SegmentDescriptor GdtEntry(GuestMemory memory, X86EntryState s, SegmentDescriptor seg) =>
        SegmentDescriptor.FromGdtEntry(seg.Selector, memory.Read<ulong>(s.GdtBase + seg.Selector));

    [Fact]
    public void Protected32IsFlatWithPagingOff()
    {
        using var memory = GuestMemory.WithRam(4UL << 20);
        X86EntryState s = X86EntryState.Protected32(memory, 0x100000, eax: 0x2BADB002, ebx: 0x2000);
        Assert.Equal(X86CpuMode.Protected32, s.Mode);
        Assert.Equal(0x100000UL, s.Rip);
        Assert.Equal(0x2BADB002UL, s.Rax);
        Assert.Equal(0x2000UL, s.Rbx);
        Assert.Equal(0x2UL, s.Rflags);
        Assert.Equal(1UL, s.Cr0 & 1);
        Assert.Equal(0UL, s.Cr0 & 0x8000_0000);
        Assert.Equal(0UL, s.Cr4);
        Assert.Equal(0UL, s.Efer);
        Assert.Equal(0xffff_ffffU, s.Cs.Limit);
        Assert.True(s.Cs.DefaultBig);
        Assert.False(s.Cs.LongMode);
        Assert.Equal(s.Ds, s.Ss);
        Assert.Equal(s.Ds, s.Es);
    }

    [Theory]
    [InlineData(X86CpuMode.Protected32)]
    [InlineData(X86CpuMode.Long64)]
    public void TheGdtInMemoryHoldsTheSegmentsTheStateLoads(X86CpuMode mode)
    {
        using var memory = GuestMemory.WithRam(4UL << 20);
        X86EntryState s = mode == X86CpuMode.Protected32 ? X86EntryState.Protected32(memory, 0x100000) : X86EntryState.Long64(memory, 0x100200);
        Assert.Equal(Layout.Gdt, s.GdtBase);
        Assert.Equal(s.Cs, GdtEntry(memory, s, s.Cs));
        Assert.Equal(s.Ds, GdtEntry(memory, s, s.Ds));
        Assert.Equal(s.Tr, GdtEntry(memory, s, s.Tr));
        Assert.True(s.Tr.Selector + 15 <= s.GdtLimit, "the 16-byte TSS descriptor lies inside the GDT limit");
        Assert.Equal(0UL, memory.Read<ulong>(s.GdtBase));
    }

    [Fact]
    public void TrIsABusyTss()
    {
        using var memory = GuestMemory.WithRam(4UL << 20);
        X86EntryState s = X86EntryState.Protected32(memory, 0x100000);
        Assert.Equal(0xb, s.Tr.Type);
        Assert.False(s.Tr.CodeOrData);
        Assert.True(s.Tr.Present);
        Assert.Equal(0x67U, s.Tr.Limit);
        Assert.Equal(0UL, s.Tr.Base);
    }

    [Fact]
    public void Long64UsesTheBootProtocolSelectorsAndPaging()
    {
        using var memory = GuestMemory.WithRam(4UL << 20);
        X86EntryState s = X86EntryState.Long64(memory, 0x1000200, rsi: 0x7000, rsp: 0x6ff0);
        Assert.Equal(X86CpuMode.Long64, s.Mode);
        Assert.Equal(0x10, s.Cs.Selector);
        Assert.Equal(0x18, s.Ds.Selector);
        Assert.True(s.Cs.LongMode);
        Assert.False(s.Cs.DefaultBig);
        Assert.Equal(0x7000UL, s.Rsi);
        Assert.Equal(0x8000_0011UL, s.Cr0);
        Assert.Equal(0x20UL, s.Cr4);
        Assert.Equal(0x500UL, s.Efer);
        Assert.Equal(Layout.Pml4, s.Cr3);
        Assert.Equal(0x2UL, s.Rflags);
    }

    [Theory]
    [InlineData(0UL)]
    [InlineData(0x1000000UL)]
    [InlineData(0xC020_0000UL)]
    [InlineData(0xFFE0_0000UL)]
    public void PageTablesIdentityMapTheFirstFourGiB(ulong address)
    {
        using var memory = GuestMemory.WithRam(4UL << 20);
        X86EntryState s = X86EntryState.Long64(memory, 0x100200);
        ulong pml4e = memory.Read<ulong>(s.Cr3 + ((address >> 39) & 511) * 8);
        Assert.Equal(3UL, pml4e & 3);
        ulong pdpte = memory.Read<ulong>((pml4e & ~0xfffUL) + ((address >> 30) & 511) * 8);
        Assert.Equal(3UL, pdpte & 3);
        ulong pde = memory.Read<ulong>((pdpte & ~0xfffUL) + ((address >> 21) & 511) * 8);
        Assert.Equal(0x83UL, pde & 0xff);
        Assert.Equal(address, pde & ~0x1fffffUL);
    }
}
