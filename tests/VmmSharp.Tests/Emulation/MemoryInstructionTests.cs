using Iced.Intel;
using VmmSharp.Guests;
using VmmSharp.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Emulation;

/// <summary>SSE moves KVM cannot emulate, carried out through the MMIO bus, and <c>clwb</c>'s address check.</summary>
public class MemoryInstructionTests
{
    [Theory]
    [MemberData(nameof(FallbackGuest.Modes), MemberType = typeof(FallbackGuest))]
    public void MovqLoadsFromAndStoresToMmioThroughTheBus(GuestMode mode, GuestPaging paging)
    {
        const int mmio = (int)FallbackGuest.MmioBase;
        using var guest = FallbackGuest.Create(mode, paging, a =>
        {
            a.movq(xmm1, __qword_ptr[mmio + 8]);
            a.movq(__qword_ptr[mmio + 0x20], xmm1);
            a.ExitWith(0);
        });
        Assert.Equal(0, guest.RunToStop().Status);

        // The device answers a read at offset o with bytes 0x10+o, 0x11+o…: the store writes back what was loaded.
        var write = Assert.Single(guest.Device.Writes);
        Assert.Equal(0x20UL, write.Offset);
        Assert.Equal(new byte[] { 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f }, write.Data);
        Assert.Equal(2, guest.Fallback.Statistics.Count(Mnemonic.Movq));
    }

    [Fact]
    public void MovqFromAnUnmappedPageRaisesAPageFault()
    {
        const ulong unmapped = 0x2000_0000;
        using var guest = FallbackGuest.Create(GuestMode.Long64, GuestPaging.FourLevel, a =>
        {
            a.mov(rsi, unmapped + 8);
            a.movq(xmm0, __qword_ptr[rsi]);
            a.ExitWith(0);
        });
        guest.Unmap64(unmapped);

        var result = guest.RunToStop();

        guest.AssertException(result, 14, guest.AddressOf(Mnemonic.Movq), errorCode: 0);
        Assert.Equal(unmapped + 8, guest.Recorded().Cr2);
    }

    [Theory]
    [MemberData(nameof(FallbackGuest.Modes), MemberType = typeof(FallbackGuest))]
    public void ClwbOnMappedMemoryIsANoOp(GuestMode mode, GuestPaging paging)
    {
        using var guest = FallbackGuest.Create(mode, paging, a =>
        {
            a.clwb(__byte_ptr[(int)TinyGuestLayout.Data]);
            a.ExitWith(0);
        });

        Assert.Equal(0, guest.RunToStop().Status);
        Assert.Equal(1, guest.Fallback.Statistics.Count(Mnemonic.Clwb));
    }

    [Fact]
    public void ClwbOnAnUnmappedPageRaisesAPageFault()
    {
        const ulong unmapped = 0x2000_0000;
        using var guest = FallbackGuest.Create(GuestMode.Long64, GuestPaging.FourLevel, a =>
        {
            a.mov(rsi, unmapped);
            a.clwb(__byte_ptr[rsi]);
            a.ExitWith(0);
        });
        guest.Unmap64(unmapped);

        guest.AssertException(guest.RunToStop(), 14, guest.AddressOf(Mnemonic.Clwb), errorCode: 0);
    }
}
