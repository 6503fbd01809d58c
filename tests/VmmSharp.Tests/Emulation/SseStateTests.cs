using Iced.Intel;
using VmmSharp.Guests;
using VmmSharp.Kvm;
using VmmSharp.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Emulation;

/// <summary><c>ldmxcsr</c>/<c>stmxcsr</c>, <c>xgetbv</c> and the <c>xsave</c>/<c>xrstor</c> family through the fallback.</summary>
public class SseStateTests
{
    private const ulong Data = TinyGuestLayout.Data;
    private const ulong Area = TinyGuestLayout.Data + 0x1000; // 64-byte aligned XSAVE area

    [Theory]
    [MemberData(nameof(FallbackGuest.Modes), MemberType = typeof(FallbackGuest))]
    public void LdmxcsrLoadsAndStmxcsrStores(GuestMode mode, GuestPaging paging)
    {
        using var guest = FallbackGuest.Create(mode, paging, a =>
        {
            a.ldmxcsr(__dword_ptr[(int)Data]);
            a.stmxcsr(__dword_ptr[(int)Data + 4]);
            a.ExitWith(0);
        });
        guest.Memory.Write(Data, 0x9fc0u); // FZ, all masks, DAZ

        Assert.Equal(0, guest.RunToStop().Status);

        Assert.Equal(0x9fc0u, guest.Memory.Read<uint>(Data + 4));
        guest.Run.Vcpu.Vcpu.GetXsave(out KvmXsave state);
        Assert.Equal(0x9fc0u, BitConverter.ToUInt32(((ReadOnlySpan<byte>)state)[24..28]));
        Assert.Equal(1, guest.Fallback.Statistics.Count(Mnemonic.Ldmxcsr));
        Assert.Equal(1, guest.Fallback.Statistics.Count(Mnemonic.Stmxcsr));
    }

    [Fact]
    public void LdmxcsrWithAReservedBitRaisesGeneralProtection()
    {
        using var guest = FallbackGuest.Create(GuestMode.Long64, GuestPaging.FourLevel, a =>
        {
            a.ldmxcsr(__dword_ptr[(int)Data]);
            a.ExitWith(0);
        });
        guest.Memory.Write(Data, 0x8000_1f80u);

        guest.AssertException(guest.RunToStop(), 13, TinyGuest.Entry, errorCode: 0);
    }

    [Fact]
    public void XgetbvWithoutOsxsaveRaisesInvalidOpcode()
    {
        using var guest = FallbackGuest.Create(GuestMode.Long64, GuestPaging.FourLevel, a =>
        {
            a.xor(ecx, ecx);
            a.xgetbv();
            a.ExitWith(0);
        });

        guest.AssertException(guest.RunToStop(), 6, guest.AddressOf(Mnemonic.Xgetbv));
        Assert.Equal(1, guest.Fallback.Statistics.Count(Mnemonic.Xgetbv));
    }

    [Theory]
    [MemberData(nameof(FallbackGuest.Modes), MemberType = typeof(FallbackGuest))]
    public void XgetbvReturnsXcr0(GuestMode mode, GuestPaging paging)
    {
        using var guest = FallbackGuest.Create(mode, paging, a =>
        {
            a.xor(ecx, ecx);
            a.mov(edx, -1);
            a.xgetbv();
            a.mov(__dword_ptr[(int)Data], eax);
            a.mov(__dword_ptr[(int)Data + 4], edx);
            a.ExitWith(0);
        }, xsave: true);

        Assert.Equal(0, guest.RunToStop().Status);

        guest.Run.Vcpu.Vcpu.GetXcrs(out KvmXcrs xcrs);
        Assert.Equal(xcrs.Xcrs[0].Value, guest.Memory.Read<ulong>(Data));
        Assert.Equal(1UL, guest.Memory.Read<ulong>(Data) & 1); // x87 is always enabled
    }

    [Theory]
    [MemberData(nameof(FallbackGuest.Modes), MemberType = typeof(FallbackGuest))]
    public void XsaveStoresTheX87StateAndXrstorLoadsIt(GuestMode mode, GuestPaging paging)
    {
        using var guest = FallbackGuest.Create(mode, paging, a =>
        {
            a.mov(eax, -1);
            a.mov(edx, -1);
            a.xsave(__[(int)Area]);
            a.xsave(__[(int)Area + 0x1000]);
            a.mov(__word_ptr[(int)Area], 0x27f); // FCW: another precision control
            a.xrstor(__[(int)Area]);
            a.ExitWith(0);
        }, xsave: true);

        Assert.Equal(0, guest.RunToStop().Status);

        Assert.Equal(0x37f, guest.Memory.Read<ushort>(Area + 0x1000)); // the FCW saved: the initial one
        Assert.Equal(1UL, guest.Memory.Read<ulong>(Area + 0x1000 + 512) & 1); // XSTATE_BV names x87
        guest.Run.Vcpu.Vcpu.GetFpu(out KvmFpu fpu);
        Assert.Equal(0x27f, fpu.Fcw);
        Assert.Equal(2, guest.Fallback.Statistics.Count(Mnemonic.Xsave));
        Assert.Equal(1, guest.Fallback.Statistics.Count(Mnemonic.Xrstor));
    }

    [Fact]
    public void XsaveToAMisalignedAreaRaisesGeneralProtection()
    {
        using var guest = FallbackGuest.Create(GuestMode.Long64, GuestPaging.FourLevel, a =>
        {
            a.mov(eax, -1);
            a.mov(edx, -1);
            a.xsave(__[(int)Area + 16]);
            a.ExitWith(0);
        }, xsave: true);

        guest.AssertException(guest.RunToStop(), 13, guest.AddressOf(Mnemonic.Xsave), errorCode: 0);
    }

    [Fact]
    public void XrstorOfAHeaderWithReservedBitsRaisesGeneralProtection()
    {
        using var guest = FallbackGuest.Create(GuestMode.Long64, GuestPaging.FourLevel, a =>
        {
            a.mov(eax, -1);
            a.mov(edx, -1);
            a.xrstor(__[(int)Area]);
            a.ExitWith(0);
        }, xsave: true);
        guest.Memory.Write(Area + 512 + 16, 1UL); // header bytes 16-63 must be zero

        guest.AssertException(guest.RunToStop(), 13, guest.AddressOf(Mnemonic.Xrstor), errorCode: 0);
    }

    [Fact]
    public void XsavecWritesTheCompactedHeader()
    {
        using var guest = FallbackGuest.Create(GuestMode.Long64, GuestPaging.FourLevel, a =>
        {
            a.mov(eax, -1);
            a.mov(edx, -1);
            a.xsavec(__[(int)Area]);
            a.ExitWith(0);
        }, xsave: true);

        Assert.Equal(0, guest.RunToStop().Status);

        guest.Run.Vcpu.Vcpu.GetXcrs(out KvmXcrs xcrs);
        Assert.Equal(xcrs.Xcrs[0].Value | (1UL << 63), guest.Memory.Read<ulong>(Area + 520)); // XCOMP_BV: RFBM, compacted
        Assert.Equal(0x37f, guest.Memory.Read<ushort>(Area));
    }
}
