using Iced.Intel;
using VmmSharp.Guests;
using VmmSharp.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Emulation;

/// <summary><c>verw</c> sets ZF exactly for selectors of data segments writable at the current privilege.</summary>
public class VerifyWriteTests
{
    [Theory]
    [MemberData(nameof(FallbackGuest.Modes), MemberType = typeof(FallbackGuest))]
    public void ZfIsSetForAWritableDataSegmentOnly(GuestMode mode, GuestPaging paging)
    {
        // Selectors: kernel data (writable), kernel code (not writable), null, beyond the GDT limit.
        ushort[] selectors = [TinyGuestLayout.KernelData, TinyGuestLayout.KernelCode64, 0, 0x100];
        using var guest = FallbackGuest.Create(mode, paging, a =>
        {
            for (int i = 0; i < selectors.Length; i++)
            {
                a.mov(ax, selectors[i]);
                a.verw(ax);
                a.setz(al);
                a.mov(__byte_ptr[(int)TinyGuestLayout.Data + i], al);
            }
            a.ExitWith(0);
        });

        Assert.Equal(0, guest.RunToStop().Status);

        Assert.Equal([1, 0, 0, 0], [.. Enumerable.Range(0, selectors.Length).Select(i => (int)guest.Memory.Read<byte>(TinyGuestLayout.Data + (ulong)i))]);
        Assert.Equal(selectors.Length, guest.Fallback.Statistics.Count(Mnemonic.Verw));
    }

    [Fact]
    public void AMemoryOperandIsReadThroughThePageWalk()
    {
        using var guest = FallbackGuest.Create(GuestMode.Long64, GuestPaging.FourLevel, a =>
        {
            a.mov(rsi, TinyGuestLayout.Data);
            a.mov(__word_ptr[rsi], TinyGuestLayout.KernelData);
            a.verw(__word_ptr[rsi]);
            a.setz(al);
            a.@out(0xf4, al);
        });

        Assert.Equal(1, guest.RunToStop().Status);
        Assert.Equal(1, guest.Fallback.Statistics.Count(Mnemonic.Verw));
    }
}
