using Iced.Intel;
using VmmSharp.Guests;
using VmmSharp.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Emulation;

/// <summary><c>cmpxchg16b</c> at CPL0, finished by the fallback on guest RAM.</summary>
public class CompareExchange16Tests
{
    private const ulong Target = TinyGuestLayout.Data;

    [Fact]
    public void AMatchStoresRcxRbxAndSetsZf()
    {
        using var guest = FallbackGuest.Create(GuestMode.Long64, GuestPaging.FourLevel, a =>
        {
            a.mov(rsi, Target);
            a.mov(rax, 0x1111UL);
            a.mov(rdx, 0x2222UL);
            a.mov(rbx, 0x3333UL);
            a.mov(rcx, 0x4444UL);
            a.@lock.cmpxchg16b(__xmmword_ptr[rsi]);
            a.setz(al);
            a.@out(0xf4, al);
        });
        guest.Memory.Write(Target, 0x1111UL);
        guest.Memory.Write(Target + 8, 0x2222UL);

        Assert.Equal(1, guest.RunToStop().Status);

        Assert.Equal(0x3333UL, guest.Memory.Read<ulong>(Target));
        Assert.Equal(0x4444UL, guest.Memory.Read<ulong>(Target + 8));
        Assert.Equal(1, guest.Fallback.Statistics.Count(Mnemonic.Cmpxchg16b));
    }

    [Fact]
    public void AMismatchLoadsTheValueIntoRdxRaxAndClearsZf()
    {
        using var guest = FallbackGuest.Create(GuestMode.Long64, GuestPaging.FourLevel, a =>
        {
            a.mov(rsi, Target);
            a.xor(eax, eax);
            a.xor(edx, edx);
            a.cmpxchg16b(__xmmword_ptr[rsi]);
            a.setz(bl);
            a.mov(__qword_ptr[rsi + 16], rax);
            a.mov(__qword_ptr[rsi + 24], rdx);
            a.mov(al, bl);
            a.@out(0xf4, al);
        });
        guest.Memory.Write(Target, 0xaaaaUL);
        guest.Memory.Write(Target + 8, 0xbbbbUL);

        Assert.Equal(0, guest.RunToStop().Status);

        Assert.Equal(0xaaaaUL, guest.Memory.Read<ulong>(Target + 16));
        Assert.Equal(0xbbbbUL, guest.Memory.Read<ulong>(Target + 24));
        Assert.Equal(0xaaaaUL, guest.Memory.Read<ulong>(Target)); // unchanged
    }

    [Fact]
    public void AMisalignedOperandRaisesGeneralProtection()
    {
        using var guest = FallbackGuest.Create(GuestMode.Long64, GuestPaging.FourLevel, a =>
        {
            a.mov(rsi, Target + 8);
            a.cmpxchg16b(__xmmword_ptr[rsi]);
            a.ExitWith(1);
        });

        var result = guest.RunToStop();

        // KVM's emulator makes this alignment check itself before it gives up, so the #GP may not come from the fallback.
        guest.AssertException(result, 13, guest.AddressOf(Mnemonic.Cmpxchg16b), errorCode: 0);
    }

    [Fact]
    public void AnOperandOnAnUnmappedPageRaisesAPageFaultForAWrite()
    {
        const ulong unmapped = 0x2000_0000;
        using var guest = FallbackGuest.Create(GuestMode.Long64, GuestPaging.FourLevel, a =>
        {
            a.mov(rsi, unmapped + 0x40);
            a.cmpxchg16b(__xmmword_ptr[rsi]);
            a.ExitWith(1);
        });
        guest.Unmap64(unmapped);

        var result = guest.RunToStop();

        guest.AssertException(result, 14, guest.AddressOf(Mnemonic.Cmpxchg16b), errorCode: 2); // not present, write, supervisor
        Assert.Equal(unmapped + 0x40, guest.Recorded().Cr2);
    }

    [Fact]
    public void TwoVcpusIncrementingOneCounterLoseNoUpdate()
    {
        const int perVcpu = 300;
        using var guest = FallbackGuest.Create(GuestMode.Long64, GuestPaging.FourLevel, a =>
        {
            // A 128-bit counter whose high half is always the low half's complement, so a torn update shows.
            Label next = a.CreateLabel(), retry = a.CreateLabel();
            a.mov(rsi, Target);
            a.mov(edi, perVcpu);
            a.Label(ref next);
            a.mov(rax, __qword_ptr[rsi]);
            a.mov(rdx, __qword_ptr[rsi + 8]);
            a.Label(ref retry);
            a.lea(rbx, __[rax + 1]);
            a.mov(rcx, rbx);
            a.not(rcx);
            a.@lock.cmpxchg16b(__xmmword_ptr[rsi]);
            a.jnz(retry);
            a.dec(edi);
            a.jnz(next);
            // The run ends when the first vCPU stops: wait for the other one to finish its increments.
            Label wait = a.CreateLabel();
            a.@lock.inc(__dword_ptr[rsi + 32]);
            a.Label(ref wait);
            a.pause();
            a.cmp(__dword_ptr[rsi + 32], 2);
            a.jb(wait);
            a.ExitWith(0);
        }, vcpus: 2);
        guest.Memory.Write(Target, 0UL);
        guest.Memory.Write(Target + 8, ~0UL);
        guest.Memory.Write(Target + 32, 0UL);

        Assert.Equal(0, guest.RunToStop().Status);

        Assert.Equal((ulong)(2 * perVcpu), guest.Memory.Read<ulong>(Target));
        Assert.Equal(~(ulong)(2 * perVcpu), guest.Memory.Read<ulong>(Target + 8));
        Assert.True(guest.Fallback.Statistics.Count(Mnemonic.Cmpxchg16b) >= 2 * perVcpu);
    }
}
