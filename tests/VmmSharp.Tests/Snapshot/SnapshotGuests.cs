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
        Label loop = a.CreateLabel(), noDot = a.CreateLabel();
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
        EmitHexLineAndExit(a); // RAX as 16 hex digits, then the debug exit ends the run
    });

    /// <summary>The seed of <see cref="XorshiftCounter"/> (and of vCPU 0 in <see cref="SmpGuest.TwoCpuXorshift"/>).</summary>
    public const ulong Seed = 0x9e37_79b9_7f4a_7c15UL;

    /// <summary>The PIT divisor of <see cref="TickingXorshift"/>: 1193182 / 1193, about 1000.15 ticks a second.</summary>
    public const int PitDivisor = 1193;

    /// <summary>The PIT's input clock in Hz.</summary>
    public const double PitHz = 1_193_182;

    /// <summary>Where the guests keep what the CPL3 code and a handler or another vCPU share (user-accessible RAM).</summary>
    internal const ulong Mailbox = 0x60000;

    /// <summary>What the guests compute, in C#: <paramref name="iterations"/> rounds of xorshift64 (13, 7, 17) from <paramref name="seed"/>.</summary>
    public static ulong Xorshift(ulong seed, ulong iterations)
    {
        ulong x = seed;
        for (ulong i = 0; i < iterations; i++)
        {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        return x;
    }

    /// <summary>
    /// xorshift64 from <see cref="Seed"/> for <paramref name="iterations"/> rounds at CPL3 while the in-kernel PIT ticks
    /// at about 1000 Hz (channel 0, mode 2, <see cref="PitDivisor"/>) through the in-kernel 8259 (IRQ 0 -> vector 0x20):
    /// the CPL0 handler (emulated on PVM: six instructions) counts the ticks; the CPL3 loop prints a '.' for every 100.
    /// At the end: the value as 16 hex digits, a blank, the tick count as 16 hex digits, a newline; then debug-exit 0.
    /// </summary>
    public static byte[] TickingXorshift(ulong iterations)
    {
        Label isr = default;
        const ulong ticks = Mailbox + 16; // the tick count
        return TinyKernel.UserMode(
            a =>
            {
                Label loop = a.CreateLabel(), noDot = a.CreateLabel();
                a.mov(rax, Seed);
                a.mov(rcx, iterations);
                a.mov(r8, 100);
                a.mov(r9, ticks);
                a.Label(ref loop);
                EmitRound(a);
                a.cmp(__qword_ptr[r9], r8);
                a.jb(noDot);
                a.add(r8, 100);
                a.mov(rsi, rax);
                a.mov(dx, 0x3f8);
                a.mov(al, (byte)'.');
                a.@out(dx, al);
                a.mov(rax, rsi);
                a.Label(ref noDot);
                a.dec(rcx);
                a.jnz(loop);
                a.mov(rsi, rax);
                EmitHex(a);
                a.mov(al, (byte)' ');
                a.@out(dx, al);
                a.mov(rsi, __qword_ptr[r9]);
                EmitHex(a);
                a.mov(al, (byte)'\n');
                a.@out(dx, al);
                a.mov(al, 0);
                a.@out(0xf4, al);
                a.hlt();

                // IRQ 0 at CPL0: end of interrupt to the 8259, count, return to CPL3.
                a.Label(ref isr);
                a.push(rax);
                a.mov(al, 0x20);
                a.@out(0x20, al);
                a.inc(__qword_ptr[(long)ticks]);
                a.pop(rax);
                a.iretq();
            },
            a =>
            {
                isr = a.CreateLabel();
                // Gate 0x20 -> isr.
                a.lea(rax, __[isr]);
                a.mov(rbx, TinyKernel.Idt + (0x20 * 16));
                a.mov(__word_ptr[rbx], ax);
                a.mov(__word_ptr[rbx + 2], TinyKernel.KernelCode);
                a.mov(__word_ptr[rbx + 4], 0x8e00);
                a.shr(rax, 16);
                a.mov(__word_ptr[rbx + 6], ax);
                // The 8259s: master at vector 0x20 with only IRQ 0 unmasked, slave at 0x28 all masked.
                foreach ((ushort port, byte value) in new (ushort, byte)[]
                {
                    (0x20, 0x11), (0x21, 0x20), (0x21, 0x04), (0x21, 0x01),
                    (0xa0, 0x11), (0xa1, 0x28), (0xa1, 0x02), (0xa1, 0x01),
                    (0x21, 0xfe), (0xa1, 0xff),
                    (0x43, 0x34), (0x40, PitDivisor & 0xff), (0x40, PitDivisor >> 8),
                })
                {
                    a.mov(al, value);
                    a.@out((byte)port, al);
                }
            },
            interrupts: true);
    }

    /// <summary>One xorshift64 round on RAX (RBX scratch).</summary>
    private static void EmitRound(Assembler a)
    {
        a.mov(rbx, rax);
        a.shl(rbx, 13);
        a.xor(rax, rbx);
        a.mov(rbx, rax);
        a.shr(rbx, 7);
        a.xor(rax, rbx);
        a.mov(rbx, rax);
        a.shl(rbx, 17);
        a.xor(rax, rbx);
    }

    /// <summary>RAX = xorshift64 of <paramref name="seed"/> after <paramref name="iterations"/> rounds; with <paramref name="dots"/> a '.' on COM1 every 2^24.</summary>
    internal static void EmitXorshift(Assembler a, ulong seed, ulong iterations, bool dots)
    {
        Label loop = a.CreateLabel(), noDot = a.CreateLabel();
        a.mov(rax, seed);
        a.mov(rcx, iterations);
        a.Label(ref loop);
        EmitRound(a);
        if (dots)
        {
            a.test(ecx, 0xff_ffff);
            a.jnz(noDot);
            a.mov(rsi, rax);
            a.mov(dx, 0x3f8);
            a.mov(al, (byte)'.');
            a.@out(dx, al);
            a.mov(rax, rsi);
        }
        a.Label(ref noDot);
        a.dec(rcx);
        a.jnz(loop);
    }

    /// <summary>Prints RSI as 16 hex digits on COM1 (DX is left at COM1; RAX, RCX clobbered).</summary>
    private static void EmitHex(Assembler a)
    {
        Label hex = a.CreateLabel(), digit = a.CreateLabel();
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
    }

    /// <summary>Prints RAX as 16 hex digits and a newline on COM1, then ends the run through the debug-exit port.</summary>
    internal static void EmitHexLineAndExit(Assembler a)
    {
        a.mov(rsi, rax);
        EmitHex(a);
        a.mov(al, (byte)'\n');
        a.@out(dx, al);
        a.mov(al, 0);
        a.@out(0xf4, al);
        a.hlt();
    }

    /// <summary>A bzImage that sets up CPL3 and runs <paramref name="user"/> there.</summary>
    public static byte[] AtCpl3(Action<Assembler> user) => TinyKernel.UserMode(user);
}
