using Iced.Intel;
using VmmSharp.Guests;
using VmmSharp.Memory;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Cli.Demo;

/// <summary>
/// The built-in guest of <c>vmm run</c>. It starts in 32-bit protected mode, switches itself to 64-bit long
/// mode (PAE, EFER.LME, paging, a far jump), loads its TSS, drops to CPL3 with IRETQ and there draws the
/// Mandelbrot set in fixed-point arithmetic: CPL3 code runs natively even on PVM. It prints through
/// port 0xe9 (the debug console) and ends by writing its exit status to port 0xf4.
/// </summary>
internal static class DemoGuest
{
    /// <summary>The debug-console port the guest prints through.</summary>
    public const byte ConsolePort = 0xe9;

    /// <summary>The port the guest writes its exit status to.</summary>
    public const byte ExitPort = 0xf4;

    private const ulong LongModeCode = TinyGuestLayout.Code + 0x1000;
    private const int Width = 72, Height = 24, MaxIterations = 64;

    /// <summary>Writes both halves of the guest into <paramref name="memory"/> and returns the 32-bit entry part.</summary>
    public static TinyGuest Load(GuestMemory memory)
    {
        TinyGuest entry = TinyGuest.Assemble(GuestMode.Protected32, EnterLongMode);
        entry.Load(memory);
        var asm = new Assembler(64);
        LongModeAndUser(asm);
        using var stream = new MemoryStream();
        asm.Assemble(new StreamCodeWriter(stream), LongModeCode);
        memory.Write(LongModeCode, stream.ToArray());
        return entry;
    }

    private static void EnterLongMode(Assembler a)
    {
        a.mov(eax, cr4);
        a.or(eax, 0x20); // PAE
        a.mov(cr4, eax);
        a.mov(eax, (uint)TinyGuestLayout.Pml4);
        a.mov(cr3, eax);
        a.mov(ecx, 0xc000_0080); // EFER
        a.rdmsr();
        a.or(eax, 0x100); // LME
        a.wrmsr();
        a.mov(eax, cr0);
        a.or(eax, 0x8000_0000); // PG: long mode is active from here
        a.mov(cr0, eax);
        a.jmp(TinyGuestLayout.KernelCode64, (uint)LongModeCode);
    }

    private static void LongModeAndUser(Assembler a)
    {
        Label user = a.CreateLabel(), palette = a.CreateLabel(), banner = a.CreateLabel();
        a.mov(ax, TinyGuestLayout.KernelData);
        a.mov(ds, ax);
        a.mov(es, ax);
        a.mov(ss, ax);
        a.mov(ax, TinyGuestLayout.TssSelector);
        a.ltr(ax);
        a.mov(rsp, TinyGuestLayout.KernelStackTop);
        // IRETQ to CPL3 with IOPL 3, so the user code may use IN and OUT itself.
        a.push(TinyGuestLayout.UserData);
        a.push((int)TinyGuestLayout.StackTop);
        a.push(0x3002);
        a.push(TinyGuestLayout.UserCode64);
        a.lea(rax, __[user]);
        a.push(rax);
        a.iretq();

        // ---- CPL3 ----
        a.Label(ref user);
        Label row = a.CreateLabel(), column = a.CreateLabel(), iterate = a.CreateLabel(), escaped = a.CreateLabel();
        a.xor(r8d, r8d);                 // y
        a.Label(ref row);
        a.imul(r10, r8, 410);            // ci = y * 2.4/24 - 1.2 (Q12 fixed point)
        a.sub(r10, 4915);
        a.xor(r9d, r9d);                 // x
        a.Label(ref column);
        a.imul(r11, r9, 171);            // cr = x * 3.0/72 - 2.1
        a.sub(r11, 8602);
        a.xor(r12d, r12d);               // zr
        a.xor(r13d, r13d);               // zi
        a.xor(r14d, r14d);               // i
        a.Label(ref iterate);
        a.mov(rax, r12);
        a.imul(rax, r12);
        a.sar(rax, 12);                  // zr^2
        a.mov(rbx, r13);
        a.imul(rbx, r13);
        a.sar(rbx, 12);                  // zi^2
        a.lea(rcx, __[rax + rbx]);
        a.cmp(rcx, 4 * 4096);
        a.jg(escaped);
        a.imul(r13, r12);
        a.sar(r13, 11);                  // 2 * zr * zi
        a.add(r13, r10);
        a.sub(rax, rbx);
        a.lea(r12, __[rax + r11]);
        a.inc(r14d);
        a.cmp(r14d, MaxIterations);
        a.jb(iterate);
        a.Label(ref escaped);
        a.lea(rsi, __[palette]);
        a.mov(eax, r14d);
        a.shr(eax, 3);                   // 64 iterations onto 9 characters
        a.mov(al, __byte_ptr[rsi + rax]);
        a.@out(ConsolePort, al);
        a.inc(r9d);
        a.cmp(r9d, Width);
        a.jb(column);
        a.mov(al, (byte)'\n');
        a.@out(ConsolePort, al);
        a.inc(r8d);
        a.cmp(r8d, Height);
        a.jb(row);
        // The banner, then exit status 0.
        Label print = a.CreateLabel(), done = a.CreateLabel();
        a.lea(rsi, __[banner]);
        a.Label(ref print);
        a.lodsb();
        a.test(al, al);
        a.jz(done);
        a.@out(ConsolePort, al);
        a.jmp(print);
        a.Label(ref done);
        a.xor(eax, eax);
        a.@out(ExitPort, al);
        a.hlt();

        a.Label(ref palette);
        a.db(" .:-=+*%#@"u8.ToArray());
        a.Label(ref banner);
        a.db("Drawn at CPL3 in 64-bit long mode by the guest; every character above was one port-I/O exit.\n\0"u8.ToArray());
    }
}
