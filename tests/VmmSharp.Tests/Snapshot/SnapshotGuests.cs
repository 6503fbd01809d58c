using Iced.Intel;
using VmmSharp.Tests.Machine;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Snapshot;

/// <summary>
/// Guests for snapshot tests: a bzImage whose 64-bit entry builds a GDT, a TSS with an all-zero I/O bitmap and
/// user-accessible page tables (a few dozen CPL0 instructions, emulated on PVM), then drops to CPL3, where the work runs
/// natively and talks to COM1 and the debug-exit port with IOPL 3.
/// </summary>
internal static class SnapshotGuests
{
    private const ulong Gdt = 0x70000, Tss = 0x71000, Pml4 = 0x74000, UserStack = 0x6f000;
    private const ushort UserData = 0x1b, UserCode = 0x23, TssSelector = 0x28;

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
    public static byte[] AtCpl3(Action<Assembler> user) => GuestImages.BzImageRunning(a =>
    {
        Label userCode = a.CreateLabel();
        // GDT: null, kernel code 64 (0x08), kernel data (0x10), user data (0x18|3), user code 64 (0x20|3), TSS (0x28).
        a.mov(rbx, Gdt);
        a.mov(rax, 0x00af_9b00_0000_ffffUL);
        a.mov(__qword_ptr[rbx + 0x08], rax);
        a.mov(rax, 0x00cf_9300_0000_ffffUL);
        a.mov(__qword_ptr[rbx + 0x10], rax);
        a.mov(rax, 0x00cf_f300_0000_ffffUL);
        a.mov(__qword_ptr[rbx + 0x18], rax);
        a.mov(rax, 0x00af_fb00_0000_ffffUL);
        a.mov(__qword_ptr[rbx + 0x20], rax);
        const ulong tssLimit = 0x68 + 0x2000;
        ulong tssLow = tssLimit | ((Tss & 0xffffff) << 16) | (0x89UL << 40) | ((Tss >> 24 & 0xff) << 56);
        a.mov(rax, tssLow);
        a.mov(__qword_ptr[rbx + 0x28], rax);
        a.mov(__qword_ptr[rbx + 0x30], 0);
        a.mov(rax, Gdt - 16);
        a.mov(__word_ptr[rax], 0x37);
        a.mov(__qword_ptr[rax + 2], rbx);
        a.lgdt(__[rax]);
        // TSS: the I/O bitmap right after it (guest RAM is zero: every port allowed), its end marked with 0xff.
        a.mov(rbx, Tss);
        a.mov(__word_ptr[rbx + 0x66], 0x68);
        a.mov(__byte_ptr[rbx + 0x68 + 0x2000], 0xff);
        a.mov(ax, TssSelector);
        a.ltr(ax);
        // Page tables: the first 8 MiB identity-mapped with user-accessible 2 MiB pages.
        a.mov(rbx, Pml4);
        a.mov(__qword_ptr[rbx], (int)(Pml4 + 0x1000 + 7));
        a.mov(__qword_ptr[rbx + 0x1000], (int)(Pml4 + 0x2000 + 7));
        for (int i = 0; i < 4; i++)
        {
            a.mov(__qword_ptr[rbx + 0x2000 + (i * 8)], (i << 21) | 0x87);
        }
        a.mov(cr3, rbx);
        // iretq to CPL3 with IOPL 3.
        a.push(UserData);
        a.push((int)UserStack);
        a.push(0x3002);
        a.push(UserCode);
        a.lea(rax, __[userCode]);
        a.push(rax);
        a.iretq();
        a.Label(ref userCode);
        user(a);
    });
}
