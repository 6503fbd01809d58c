using Iced.Intel;
using VmmSharp.Guests;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Snapshot;

/// <summary>
/// A two-vCPU snapshot guest: vCPU 0 starts vCPU 1 the way a PC does (INIT/SIPI through its local APIC, a real-mode
/// start-up page below 1 MiB), and both compute at CPL3.
/// </summary>
internal static class SmpGuest
{
    /// <summary>The seed of vCPU 1 (vCPU 0 uses <see cref="SnapshotGuests.Seed"/>).</summary>
    public const ulong SecondSeed = 0x2545_f491_4f6c_dd1dUL;

    private const ulong Mailbox = SnapshotGuests.Mailbox; // vCPU 1's "done" flag; its result at +8
    private const ulong ApStart = 0x8000;          // SIPI vector 0x08: the AP starts in real mode at 0800:0000
    private const ulong ApLongMode = 0x8100;       // its 64-bit part
    private const ulong ApUserEntry = 0x8ff8;      // where the BSP leaves the address of the AP's CPL3 code
    private const ulong LapicDirectory = 0x7a000;  // a page directory for 3-4 GiB, mapping the local APIC
    private const ulong Lapic = 0xfee0_0000;

    /// <summary>
    /// Two vCPUs computing at CPL3: vCPU 0 starts vCPU 1 by INIT/SIPI through its local APIC (the in-kernel LAPIC
    /// delivers them; vCPU 1 goes from real mode to long mode and CPL3 in a few dozen emulated instructions), both run
    /// xorshift64 for <paramref name="iterations"/> rounds (from <see cref="SnapshotGuests.Seed"/> and <see cref="SecondSeed"/>), vCPU 0
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
                SnapshotGuests.EmitXorshift(a, SnapshotGuests.Seed, iterations, dots: true);
                a.Label(ref wait);
                a.pause();
                a.mov(rbx, Mailbox);
                a.cmp(__qword_ptr[rbx], 1);
                a.jne(wait);
                a.xor(rax, __qword_ptr[rbx + 8]);
                SnapshotGuests.EmitHexLineAndExit(a);

                // vCPU 1 at CPL3: the same loop from its own seed, no output; then it posts the result and spins.
                Label spin = a.CreateLabel();
                a.Label(ref apUser);
                SnapshotGuests.EmitXorshift(a, SecondSeed, iterations, dots: false);
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
}
