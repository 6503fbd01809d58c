using Iced.Intel;
using VmmSharp.Guests;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Snapshot;

/// <summary>Guests for snapshot tests: CPL3 programs in <see cref="TinyKernel"/> bzImages, talking to COM1 and the debug-exit port.</summary>
internal static class SnapshotGuests
{
    /// <summary>
    /// xorshift64 from a fixed seed for <paramref name="iterations"/> rounds, a '.' on COM1 every 2^24 rounds, then the
    /// value as 16 hex digits and a newline, then debug-exit 0 (status 1). An uninterrupted run and a restored one print the same.
    /// </summary>
    public static byte[] XorshiftCounter(ulong iterations) => AtCpl3(a =>
    {
        Label loop = a.CreateLabel(), noDot = a.CreateLabel(), hex = a.CreateLabel(), digit = a.CreateLabel();
        a.mov(rax, 0x9e37_79b9_7f4a_7c15UL);
        a.mov(rcx, iterations);
        a.Label(ref loop);
        a.mov(rbx, rax);
        a.shl(rbx, 13);
        a.xor(rax, rbx);
        a.mov(rbx, rax);
        a.shr(rbx, 7);
        a.xor(rax, rbx);
        a.mov(rbx, rax);
        a.shl(rbx, 17);
        a.xor(rax, rbx);
        a.test(ecx, 0xff_ffff);
        a.jnz(noDot);
        a.mov(rsi, rax);
        a.mov(dx, 0x3f8);
        a.mov(al, (byte)'.');
        a.@out(dx, al);
        a.mov(rax, rsi);
        a.Label(ref noDot);
        a.dec(rcx);
        a.jnz(loop);
        // Print RAX as 16 hex digits.
        a.mov(rsi, rax);
        a.mov(rcx, 16);
        a.mov(dx, 0x3f8);
        a.Label(ref hex);
        a.rol(rsi, 4);
        a.mov(rax, rsi);
        a.and(eax, 0xf);
        a.add(eax, '0');
        a.cmp(eax, '9');
        a.jbe(digit);
        a.add(eax, 'a' - '9' - 1);
        a.Label(ref digit);
        a.@out(dx, al);
        a.dec(rcx);
        a.jnz(hex);
        a.mov(al, (byte)'\n');
        a.@out(dx, al);
        a.mov(al, 0);
        a.@out(0xf4, al);
        a.hlt(); // not reached: the debug exit ends the run
    });

    /// <summary>A bzImage that sets up CPL3 and runs <paramref name="user"/> there.</summary>
    public static byte[] AtCpl3(Action<Assembler> user) => TinyKernel.UserMode(user);
}
