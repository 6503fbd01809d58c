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

    /// <summary>The seed of <see cref="XorshiftCounter"/> (and of vCPU 0 in <see cref="TwoCpuXorshift"/>).</summary>
    public const ulong Seed = 0x9e37_79b9_7f4a_7c15UL;

    /// <summary>The seed of vCPU 1 in <see cref="TwoCpuXorshift"/>.</summary>
    public const ulong SecondSeed = 0x2545_f491_4f6c_dd1dUL;

    /// <summary>The PIT divisor of <see cref="TickingXorshift"/>: 1193182 / 1193, about 1000.15 ticks a second.</summary>
    public const int PitDivisor = 1193;

    /// <summary>The PIT's input clock in Hz.</summary>
    public const double PitHz = 1_193_182;

    private const ulong Mailbox = 0x60000;         // vCPU 1's "done" flag; its result at +8; the tick count at +16
    private const ulong ApStart = 0x8000;          // SIPI vector 0x08: the AP starts in real mode at 0800:0000
    private const ulong ApLongMode = 0x8100;       // its 64-bit part
    private const ulong ApUserEntry = 0x8ff8;      // where the BSP leaves the address of the AP's CPL3 code
    private const ulong LapicDirectory = 0x7a000;  // a page directory for 3-4 GiB, mapping the local APIC
    private const ulong Lapic = 0xfee0_0000;

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
    /// Two vCPUs computing at CPL3: vCPU 0 starts vCPU 1 by INIT/SIPI through its local APIC (the in-kernel LAPIC
    /// delivers them; vCPU 1 goes from real mode to long mode and CPL3 in a few dozen emulated instructions), both run
    /// xorshift64 for <paramref name="iterations"/> rounds (from <see cref="Seed"/> and <see cref="SecondSeed"/>), vCPU 0
    /// printing a '.' every 2^24 rounds; vCPU 0 then waits for vCPU 1's result, prints the XOR of both as 16 hex
    /// digits and a newline, and debug-exits 0 (status 1).
    /// </summary>
    public static byte[] TwoCpuXorshift(ulong iterations)
    {
        Label apUser = default, trampoline = default, longPart = default;
        byte[] realMode = ApRealMode(), longMode = ApLongModePart();
        return TinyKernel.UserMode(
            a =>
            {
                Label wait = a.CreateLabel();
                EmitXorshift(a, Seed, iterations, dots: true);
                a.Label(ref wait);
                a.pause();
                a.mov(rbx, Mailbox);
                a.cmp(__qword_ptr[rbx], 1);
                a.jne(wait);
                a.xor(rax, __qword_ptr[rbx + 8]);
                EmitHexLineAndExit(a);

                // vCPU 1 at CPL3: the same loop from its own seed, no output; then it posts the result and spins.
                Label spin = a.CreateLabel();
                a.Label(ref apUser);
                EmitXorshift(a, SecondSeed, iterations, dots: false);
                a.mov(rbx, Mailbox);
                a.mov(__qword_ptr[rbx + 8], rax);
                a.mov(__qword_ptr[rbx], 1);
                a.Label(ref spin);
                a.pause();
                a.jmp(spin);

                a.Label(ref trampoline);
                a.db(realMode);
                a.Label(ref longPart);
                a.db(longMode);
            },
            a =>
            {
                apUser = a.CreateLabel();
                trampoline = a.CreateLabel();
                longPart = a.CreateLabel();
                // The AP's start-up code below 1 MiB, and where its CPL3 code is.
                a.lea(rsi, __[trampoline]);
                a.mov(edi, (uint)ApStart);
                a.mov(ecx, realMode.Length);
                a.rep.movsb();
                a.lea(rsi, __[longPart]);
                a.mov(edi, (uint)ApLongMode);
                a.mov(ecx, longMode.Length);
                a.rep.movsb();
                a.lea(rax, __[apUser]);
                a.mov(rbx, ApUserEntry);
                a.mov(__qword_ptr[rbx], rax);
                // Map the local APIC (uncached 2 MiB page at 0xfee00000), then INIT and SIPI (vector 0x08) to all but self.
                a.mov(rbx, TinyKernel.Pdpt);
                a.mov(__qword_ptr[rbx + 24], (int)(LapicDirectory | 3));
                a.mov(rbx, LapicDirectory + (((Lapic - 0xc000_0000) >> 21) * 8));
                a.mov(eax, (uint)(Lapic | 0x93));
                a.mov(__qword_ptr[rbx], rax);
                a.mov(rbx, TinyKernel.PageTableRoot);
                a.mov(cr3, rbx);
                a.mov(rbx, Lapic);
                a.mov(__dword_ptr[rbx + 0xf0], 0x1ff);
                a.mov(__dword_ptr[rbx + 0x300], 0x000c_4500);
                a.mov(__dword_ptr[rbx + 0x300], 0x000c_4600 | (int)(ApStart >> 12));
                a.mov(__dword_ptr[rbx + 0x300], 0x000c_4600 | (int)(ApStart >> 12));
            },
            interrupts: false);
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
        const ulong ticks = Mailbox + 16;
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
    private static void EmitXorshift(Assembler a, ulong seed, ulong iterations, bool dots)
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

    private static void EmitHexLineAndExit(Assembler a)
    {
        a.mov(rsi, rax);
        EmitHex(a);
        a.mov(al, (byte)'\n');
        a.@out(dx, al);
        a.mov(al, 0);
        a.@out(0xf4, al);
        a.hlt();
    }

    /// <summary>
    /// The AP's real-mode start at 0800:0000: load the GDT, PAE, CR3, EFER.LME, then PE and PG at once (straight into
    /// long mode's compatibility mode) and a far jump to the 64-bit kernel code segment at <see cref="ApLongMode"/>.
    /// </summary>
    private static byte[] ApRealMode()
    {
        var a = new Assembler(16);
        a.cli();
        a.mov(ax, (ushort)(TinyKernel.GdtDescriptor >> 4));
        a.mov(ds, ax);
        a.db(0x66, 0x0f, 0x01, 0x16, (byte)(TinyKernel.GdtDescriptor & 0xf), 0x00); // o32 lgdt [GdtDescriptor & 0xf]
        a.mov(eax, cr4);
        a.or(eax, 0x20);
        a.mov(cr4, eax);
        a.mov(eax, (uint)TinyKernel.PageTableRoot);
        a.mov(cr3, eax);
        a.mov(ecx, 0xc000_0080);
        a.rdmsr();
        a.or(eax, 0x100);
        a.wrmsr();
        a.mov(eax, cr0);
        a.or(eax, unchecked((int)0x8000_0001));
        a.mov(cr0, eax);
        a.db(0x66, 0xea);                                           // o32 jmp far 0x08:ApLongMode
        a.dd((uint)ApLongMode);
        a.dw(TinyKernel.KernelCode);
        return Assemble(a, ApStart);
    }

    /// <summary>The AP's 64-bit CPL0 part: data segments, then <c>iretq</c> to its CPL3 code (interrupts off).</summary>
    private static byte[] ApLongModePart()
    {
        var a = new Assembler(64);
        a.mov(ax, 0x10);
        a.mov(ds, ax);
        a.mov(es, ax);
        a.mov(ss, ax);
        a.mov(esp, 0x7e000);
        a.push(0x1b);
        a.push(0x6e000);
        a.push(0x3002);
        a.push(0x23);
        a.mov(rax, ApUserEntry);
        a.push(__qword_ptr[rax]);
        a.iretq();
        return Assemble(a, ApLongMode);
    }

    private static byte[] Assemble(Assembler a, ulong at)
    {
        using var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), at);
        return stream.ToArray();
    }

    /// <summary>A bzImage that sets up CPL3 and runs <paramref name="user"/> there.</summary>
    public static byte[] AtCpl3(Action<Assembler> user) => TinyKernel.UserMode(user);
}
