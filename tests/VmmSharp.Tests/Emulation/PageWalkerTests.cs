using VmmSharp.Emulation;
using VmmSharp.Guests;
using VmmSharp.Kvm;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Emulation;

/// <summary>The fallback's own page walk: against KVM_TRANSLATE on a real guest, and each paging mode's rules.</summary>
public class PageWalkerTests
{
    private const ulong P = 1, W = 2, U = 4, PS = 0x80, NX = 1UL << 63;

    [Fact]
    public void FourLevelWalkAgreesWithKvmTranslate()
    {
        using var guest = FallbackGuest.Create(GuestMode.Long64, GuestPaging.FourLevel, a => a.ExitWith(0));
        // One 2 MiB page split into 4 KiB pages, every other one present.
        const ulong split = 0x2000_0000, table = 0x90000;
        for (ulong i = 0; i < 512; i++)
        {
            guest.Memory.Write(table + (i * 8), i % 2 == 0 ? (0x100000 + (i * 0x1000)) | P | W : 0UL);
        }
        guest.Memory.Write(TinyGuestLayout.Pml4 + 0x2000 + ((split >> 21) * 8), table | P | W);
        guest.RunToStop();
        KvmVcpu vcpu = guest.Run.Vcpu.Vcpu;
        vcpu.GetSregs(out KvmSregs sregs);
        var context = PagingContext.From(sregs.Cr0, sregs.Cr3, sregs.Cr4, sregs.Efer, 0);
        var space = new GuestPhysicalSpace(guest.Memory);
        Assert.Equal(PagingMode.FourLevel, context.Mode);

        ulong[] addresses = [0x8000, 0x40123, 0x3fff_fff8, split, split + 0x1abc, split + 0x2345, split + 0x1f_f000, 0x4000_0000, 0x7fff_ffff_f000];
        foreach (ulong linear in addresses)
        {
            ulong? kvm = vcpu.Translate(linear);
            bool ours = PageWalker.Translate(space, context, linear, AccessKind.Read, out ulong physical, out uint error);
            Assert.True(kvm.HasValue == ours, $"0x{linear:x}: KVM {(kvm.HasValue ? $"0x{kvm:x}" : "unmapped")}, walk {(ours ? $"0x{physical:x}" : $"#PF 0x{error:x}")}");
            if (ours)
            {
                Assert.Equal(kvm!.Value, physical);
            }
        }
    }

    [Fact]
    public void FiveLevelWalkUsesBits56To48()
    {
        var m = new FakePhysicalSpace(1 << 20);
        ulong linear = (3UL << 48) | (5UL << 39) | (7UL << 30) | (9UL << 21) | (11UL << 12) | 0x123;
        m.Write64(0x1000 + (3 * 8), 0x2000 | P | W);
        m.Write64(0x2000 + (5 * 8), 0x3000 | P | W);
        m.Write64(0x3000 + (7 * 8), 0x4000 | P | W);
        m.Write64(0x4000 + (9 * 8), 0x5000 | P | W);
        m.Write64(0x5000 + (11 * 8), 0x7_7000 | P | W);
        var context = new PagingContext(PagingMode.FiveLevel, 0x1000);

        Assert.True(PageWalker.Translate(m, context, linear, AccessKind.Write, out ulong physical, out _));
        Assert.Equal(0x7_7123UL, physical);
        Assert.Equal(0x60UL, m.Read64(0x5000 + (11 * 8)) & 0x60); // accessed and dirty set on the leaf
        Assert.Equal(0x20UL, m.Read64(0x1000 + (3 * 8)) & 0x60); // accessed only above it
    }

    [Fact]
    public void PaeWalkTranslatesThroughThePdpteAndHonoursNx()
    {
        var m = new FakePhysicalSpace(1 << 20);
        m.Write64(0x1000 + (2 * 8), 0x2000 | P); // PDPTE 2
        m.Write64(0x2000 + (3 * 8), 0x20_0000 | P | W | PS | NX); // a 2 MiB page, not executable
        ulong linear = (2UL << 30) | (3UL << 21) | 0x1234;
        var context = new PagingContext(PagingMode.Pae, 0x1000, NoExecute: true);

        Assert.True(PageWalker.Translate(m, context, linear, AccessKind.Read, out ulong physical, out _));
        Assert.Equal(0x20_1234UL, physical);
        Assert.False(PageWalker.Translate(m, context, linear, AccessKind.Fetch, out _, out uint error));
        Assert.Equal(0x11u, error); // present, instruction fetch
    }

    [Fact]
    public void ThirtyTwoBitWalkHandlesLargeAndSmallPages()
    {
        var m = new FakePhysicalSpace(1 << 20);
        m.Write32(0x1000 + (1 * 4), 0x0040_0000 | (uint)(P | W | PS)); // 4 MiB page for 0x400000
        m.Write32(0x1000 + (0 * 4), 0x2000 | (uint)(P | W | U));
        m.Write32(0x2000 + (5 * 4), 0x8000 | (uint)(P | U)); // read-only user page for 0x5000
        var context = new PagingContext(PagingMode.Bits32, 0x1000, WriteProtect: true, LargePages: true);

        Assert.True(PageWalker.Translate(m, context, 0x0045_6789, AccessKind.Read, out ulong large, out _));
        Assert.Equal(0x45_6789UL, large);
        Assert.True(PageWalker.Translate(m, context, 0x5abc, AccessKind.User, out ulong small, out _));
        Assert.Equal(0x8abcUL, small);
        Assert.False(PageWalker.Translate(m, context, 0x5abc, AccessKind.Write, out _, out uint error));
        Assert.Equal(0x3u, error); // present, write: CR0.WP makes the read-only page read-only for the kernel too
    }

    [Fact]
    public void UserAccessToASupervisorPageFaultsWithTheUserBit()
    {
        var m = new FakePhysicalSpace(1 << 20);
        m.Write64(0x1000, 0x2000 | P | W); // PML4E without U
        m.Write64(0x2000, 0x3000 | P | W | U);
        m.Write64(0x3000, 0x4000 | P | W | U);
        m.Write64(0x4000, 0x5000 | P | W | U);
        var context = new PagingContext(PagingMode.FourLevel, 0x1000);

        Assert.True(PageWalker.Translate(m, context, 0x10, AccessKind.Read, out _, out _));
        Assert.False(PageWalker.Translate(m, context, 0x10, AccessKind.User | AccessKind.Write, out _, out uint error));
        Assert.Equal(0x7u, error); // present, write, user
    }

    [Fact]
    public void AReservedBitFaultsWithRsvd()
    {
        var m = new FakePhysicalSpace(1 << 20);
        m.Write64(0x1000, 0x2000 | P | W | NX); // XD set while EFER.NXE is clear: reserved
        var context = new PagingContext(PagingMode.FourLevel, 0x1000);

        Assert.False(PageWalker.Translate(m, context, 0x10, AccessKind.Read, out _, out uint error));
        Assert.Equal(0x9u, error); // present, reserved
    }

    [Fact]
    public void ANotPresentEntryFaultsWithoutThePresentBit()
    {
        var m = new FakePhysicalSpace(1 << 20);
        var context = new PagingContext(PagingMode.FourLevel, 0x1000);

        Assert.False(PageWalker.Translate(m, context, 0x10, AccessKind.Write, out _, out uint error));
        Assert.Equal(0x2u, error);
    }

    [Fact]
    public void PageTablesOutsideRamFaultInsteadOfReadingHostMemory()
    {
        var m = new FakePhysicalSpace(1 << 16);
        var context = new PagingContext(PagingMode.FourLevel, 0xdead_0000);

        Assert.False(PageWalker.Translate(m, context, 0x10, AccessKind.Read, out _, out uint error));
        Assert.Equal(0x9u, error);
    }
}
