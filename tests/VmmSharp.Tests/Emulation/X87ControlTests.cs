using Iced.Intel;
using VmmSharp.Dispatch;
using VmmSharp.Guests;
using VmmSharp.Kvm;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Emulation;

/// <summary><c>fwait</c>, <c>fnclex</c> and <c>emms</c> as the x87 state says.</summary>
public class X87ControlTests
{
    /// <summary>Startup: a pending, unmasked zero-divide (FSW.ZE and ES, FCW.ZM clear) and all x87 registers tagged valid.</summary>
    private static void PendingZeroDivide(VcpuState s)
    {
        KvmFpu fpu = s.Fpu;
        fpu.Fcw = 0x37b;
        fpu.Fsw = 0x84;
        fpu.Ftwx = 0xff;
        s.Fpu = fpu;
    }

    [Theory]
    [MemberData(nameof(FallbackGuest.Modes), MemberType = typeof(FallbackGuest))]
    public void FwaitWithNothingPendingGoesOn(GuestMode mode, GuestPaging paging)
    {
        using var guest = FallbackGuest.Create(mode, paging, a =>
        {
            a.wait();
            a.ExitWith(0);
        });

        Assert.Equal(0, guest.RunToStop().Status);
        Assert.Equal(1, guest.Fallback.Statistics.Count(Mnemonic.Wait));
    }

    [Fact]
    public void FwaitWithAPendingUnmaskedExceptionRaisesMathFaultWithNe()
    {
        // The 64-bit guest runs with CR0.NE set: the error is #MF, reported at the fwait.
        using var guest = FallbackGuest.Create(GuestMode.Long64, GuestPaging.FourLevel, a =>
        {
            a.nop();
            a.wait();
            a.ExitWith(0);
        }, extraStartupMtd: Mtd.Fpu, startup: PendingZeroDivide);

        var result = guest.RunToStop();

        guest.AssertException(result, 16, guest.AddressOf(Mnemonic.Wait));
        Assert.Equal(1, guest.Fallback.Statistics.Faults);
    }

    [Fact]
    public void FwaitWithoutNeSignalsFerrAndGoesOn()
    {
        // The 32-bit guest runs with CR0.NE clear: the legacy FERR# path, no exception.
        int ferr = 0;
        using var guest = FallbackGuest.Create(GuestMode.Protected32, GuestPaging.Off, a =>
        {
            a.wait();
            a.ExitWith(0);
        }, extraStartupMtd: Mtd.Fpu, startup: PendingZeroDivide, floatingPointError: () => ferr++);

        Assert.Equal(0, guest.RunToStop().Status);
        Assert.Equal(1, ferr);
    }

    [Theory]
    [MemberData(nameof(FallbackGuest.Modes), MemberType = typeof(FallbackGuest))]
    public void FnclexClearsTheExceptionFlags(GuestMode mode, GuestPaging paging)
    {
        using var guest = FallbackGuest.Create(mode, paging, a =>
        {
            a.fnclex();
            a.wait(); // nothing pending any more
            a.ExitWith(0);
        }, extraStartupMtd: Mtd.Fpu, startup: PendingZeroDivide);

        Assert.Equal(0, guest.RunToStop().Status);
        guest.Run.Vcpu.Vcpu.GetFpu(out KvmFpu fpu);
        Assert.Equal(0, fpu.Fsw & 0x80ff);
        Assert.Equal(1, guest.Fallback.Statistics.Count(Mnemonic.Fnclex));
    }

    [Theory]
    [MemberData(nameof(FallbackGuest.Modes), MemberType = typeof(FallbackGuest))]
    public void EmmsEmptiesTheTagWord(GuestMode mode, GuestPaging paging)
    {
        using var guest = FallbackGuest.Create(mode, paging, a =>
        {
            a.emms();
            a.ExitWith(0);
        }, extraStartupMtd: Mtd.Fpu, startup: s =>
        {
            KvmFpu fpu = s.Fpu;
            fpu.Ftwx = 0xff;
            s.Fpu = fpu;
        });

        Assert.Equal(0, guest.RunToStop().Status);
        guest.Run.Vcpu.Vcpu.GetFpu(out KvmFpu after);
        Assert.Equal(0, after.Ftwx);
        Assert.Equal(1, guest.Fallback.Statistics.Count(Mnemonic.Emms));
    }
}
