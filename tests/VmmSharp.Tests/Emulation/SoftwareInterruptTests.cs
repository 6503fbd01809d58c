using Iced.Intel;
using VmmSharp.Guests;
using VmmSharp.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Emulation;

/// <summary><c>int3</c> and <c>int n</c> at CPL0 reach the guest's IDT through the fallback, with RIP past the instruction.</summary>
public class SoftwareInterruptTests
{
    [Theory]
    [MemberData(nameof(FallbackGuest.Modes), MemberType = typeof(FallbackGuest))]
    public void Int3DeliversBreakpointWithRipAfterTheInstruction(GuestMode mode, GuestPaging paging)
    {
        using var guest = FallbackGuest.Create(mode, paging, a =>
        {
            a.nop();
            a.int3();
            a.ExitWith(1); // not reached: the handler stops the vCPU
        });

        var result = guest.RunToStop();

        guest.AssertException(result, 3, guest.AddressOf(Mnemonic.Int3) + 1);
        Assert.Equal(1, guest.Fallback.Statistics.Count(Mnemonic.Int3));
    }

    [Theory]
    [MemberData(nameof(FallbackGuest.Modes), MemberType = typeof(FallbackGuest))]
    public void IntNDeliversThatVectorWithRipAfterTheInstruction(GuestMode mode, GuestPaging paging)
    {
        using var guest = FallbackGuest.Create(mode, paging, a =>
        {
            a.@int(0x80);
            a.ExitWith(1);
        });

        var result = guest.RunToStop();

        guest.AssertException(result, 0x80, guest.AddressOf(Mnemonic.Int) + 2);
        Assert.Equal(1, guest.Fallback.Statistics.Count(Mnemonic.Int));
    }

    [Fact]
    public void IntNWithAnExceptionVectorPushesNoErrorCode()
    {
        // int 0x0d is a software interrupt through gate 13: no error code, unlike a real #GP.
        using var guest = FallbackGuest.Create(GuestMode.Long64, GuestPaging.FourLevel, a =>
        {
            a.@int(0x0d);
            a.ExitWith(1);
        });

        var result = guest.RunToStop();

        guest.AssertException(result, 13, TinyGuest.Entry + 2);
    }

    [Fact]
    public void AHandlerAtAnUnmappedAddressGetsThePageFaultTheHardwareDelivers()
    {
        const ulong unmapped = 0x2000_0000; // inside the identity map's range, its 2 MiB page removed
        using var guest = FallbackGuest.Create(GuestMode.Long64, GuestPaging.FourLevel, a =>
        {
            a.int3();
            a.ExitWith(1);
        });
        guest.Unmap64(unmapped);
        ulong gate = TinyGuestLayout.Idt + (3 * 16);
        guest.Memory.Write(gate, (unmapped & 0xffff) | ((ulong)TinyGuestLayout.KernelCode64 << 16) | (0x8eUL << 40) | ((unmapped >> 16 & 0xffff) << 48));

        var result = guest.RunToStop();

        // The #BP is delivered, then fetching its handler faults: #PF, not present, supervisor fetch, at the handler.
        guest.AssertException(result, 14, unmapped, errorCode: 0);
        Assert.Equal(unmapped, guest.Recorded().Cr2);
    }

    /// <summary>Where <see cref="Int3ThroughAnAlias"/> runs the guest's code: a second mapping of its first 2 MiB.</summary>
    private const ulong Alias = 0x2000_0000;

    /// <summary>
    /// A guest that jumps to its <c>int3</c> (instruction 3) through <see cref="Alias"/>, with the fallback fetching
    /// instructions through its own page walk (ignoring the bytes the exit carries here, as on a host without
    /// KVM_CAP_EXIT_ON_EMULATION_FAILURE) after <paramref name="beforeFallback"/>.
    /// </summary>
    private static FallbackGuest Int3ThroughAnAlias(Action<FallbackGuest>? beforeFallback = null)
    {
        FallbackGuest? created = null;
        FallbackGuest guest = FallbackGuest.Create(GuestMode.Long64, GuestPaging.FourLevel, a =>
        {
            Label target = a.CreateLabel();
            a.lea(rax, __[target]);
            a.add(rax, (int)Alias);
            a.jmp(rax);
            a.Label(ref target);
            a.int3();
            a.ExitWith(1);
        }, beforeFallback: beforeFallback is null ? null : _ => beforeFallback(created!), fetchThroughPageWalk: true);
        created = guest;
        guest.AliasFirstPage64(Alias);
        return guest;
    }

    [Fact]
    public void AnInstructionOnAPageThePageWalkCannotTranslateGetsAPageFaultInjected()
    {
        // When the emulation failure reaches the VMM the alias is gone (as if another vCPU had unmapped it meanwhile),
        // so the fallback's own fetch of the instruction fails: it must inject the #PF the fetch raises (not present,
        // supervisor; CR2 the instruction's address) instead of decoding stale bytes.
        using FallbackGuest guest = Int3ThroughAnAlias(beforeFallback: g => g.Unmap64(Alias));
        ulong int3At = Alias + guest.InstructionAddress(3);

        var result = guest.RunToStop();

        guest.AssertException(result, 14, int3At, errorCode: 0); // I/D stays clear: this guest has neither EFER.NXE nor CR4.SMEP
        Assert.Equal(int3At, guest.Recorded().Cr2);
    }

    [Fact]
    public void Int3FetchedThroughThePageWalkIsDeliveredPastTheInstruction()
    {
        // The alias kept: the page walk's fetch finds the instruction and the #BP is delivered past it.
        using FallbackGuest guest = Int3ThroughAnAlias();

        var result = guest.RunToStop();

        guest.AssertException(result, 3, Alias + guest.InstructionAddress(4));
    }

    [Fact]
    public void ANotPresentGateRaisesSegmentNotPresentNamingTheGate()
    {
        using var guest = FallbackGuest.Create(GuestMode.Long64, GuestPaging.FourLevel, a =>
        {
            a.@int(0x80);
            a.ExitWith(1);
        });
        guest.Memory.Write(TinyGuestLayout.Idt + (0x80 * 16) + 5, (byte)0x0e); // clear P

        var result = guest.RunToStop();

        // #NP with the IDT bit set in the error code: (vector << 3) | IDT.
        guest.AssertException(result, 11, TinyGuest.Entry, errorCode: (0x80 << 3) | 2);
    }
}
