using System.Buffers.Binary;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Guests;

/// <summary>
/// Tiny kernels for the PC machine (<c>vmm run --kernel</c>): a minimal bzImage (boot protocol 2.15, loaded at 1 MiB,
/// not relocatable) whose 64-bit entry runs code assembled here. <see cref="UserMode(Action{Assembler})"/> first builds a GDT, a TSS with
/// an all-zero I/O bitmap and user-accessible page tables for the first 8 MiB (a few dozen CPL0 instructions, emulated
/// on PVM), then drops to CPL3 with IOPL 3, where the work runs natively and may use every port.
/// </summary>
public static class TinyKernel
{
    private const int SetupSects = 4;
    private const int EntryOffset = 0x200; // the 64-bit entry: load address + 0x200
    private const ulong LoadAddress = 0x100000;
    private const ulong Gdt = 0x70000, Tss = 0x71000, Pml4 = 0x74000;

    /// <summary>The stack the CPL3 code starts with.</summary>
    public const ulong UserStack = 0x6f000;

    /// <summary>The IDT <see cref="UserMode(Action{Assembler}, Action{Assembler}?, bool)"/> loads (256 gates, all absent until set).</summary>
    public const ulong Idt = 0x78000;

    /// <summary>The top of the CPL0 stack an interrupt at CPL3 switches to (the TSS's RSP0).</summary>
    public const ulong KernelStack = 0x7f000;

    /// <summary>The GDT's kernel code selector (64-bit).</summary>
    public const ushort KernelCode = 0x08;

    /// <summary>The GDT's descriptor (limit, base), for <c>lgdt</c> (an AP's start-up code loads it too).</summary>
    public const ulong GdtDescriptor = Gdt - 16;

    /// <summary>The root of the user page tables (what CR3 holds).</summary>
    public const ulong PageTableRoot = Pml4;

    /// <summary>The page directory pointer table of the user page tables: entry 0 maps the first 8 MiB, the others are free.</summary>
    public const ulong Pdpt = Pml4 + 0x1000;

    /// <summary>A bzImage whose 64-bit entry runs <paramref name="program"/> at CPL0, assembled for the address it runs at.</summary>
    public static byte[] BzImage(Action<Assembler> program)
    {
        ArgumentNullException.ThrowIfNull(program);
        var asm = new Assembler(64);
        program(asm);
        using var stream = new MemoryStream();
        asm.Assemble(new StreamCodeWriter(stream), LoadAddress + EntryOffset);
        byte[] code = stream.ToArray();
        byte[] image = new byte[((SetupSects + 1) * 512) + EntryOffset + code.Length];
        Span<byte> s = image;
        s[0x1f1] = SetupSects;
        BinaryPrimitives.WriteUInt16LittleEndian(s[0x1fe..], 0xAA55);
        s[0x200] = 0xeb;
        s[0x201] = 0x6a; // jump over the header, which runs to 0x26c
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x202..], 0x53726448); // "HdrS"
        BinaryPrimitives.WriteUInt16LittleEndian(s[0x206..], 0x20f);
        s[0x211] = 0x1; // LOADED_HIGH
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x214..], (uint)LoadAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x22c..], 0x7fffffff);
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x230..], 0x200000);
        BinaryPrimitives.WriteUInt16LittleEndian(s[0x236..], 0x1); // XLF_KERNEL_64
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x238..], 2047);
        BinaryPrimitives.WriteUInt64LittleEndian(s[0x258..], LoadAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x260..], 0x20000);
        code.CopyTo(s[(((SetupSects + 1) * 512) + EntryOffset)..]);
        return image;
    }

    /// <summary>A bzImage that sets up CPL3 and runs <paramref name="user"/> there (with RSP at <see cref="UserStack"/>).</summary>
    public static byte[] UserMode(Action<Assembler> user) => UserMode(user, null, interrupts: false);

    /// <summary>
    /// Like <see cref="UserMode(Action{Assembler})"/>, but runs <paramref name="kernel"/> at CPL0 just before dropping to CPL3
    /// (the GDT, TSS, IDT at <see cref="Idt"/> and page tables are set; keep it short: CPL0 is emulated on PVM), and enters
    /// CPL3 with interrupts on if <paramref name="interrupts"/> (an interrupt then runs on <see cref="KernelStack"/>).
    /// </summary>
    public static byte[] UserMode(Action<Assembler> user, Action<Assembler>? kernel, bool interrupts)
    {
        ArgumentNullException.ThrowIfNull(user);
        return BzImage(a =>
        {
            const ushort userData = 0x1b, userCode = 0x23, tssSelector = 0x28;
            Label userEntry = a.CreateLabel();
            // GDT: null, kernel code 64, kernel data, user data (0x18|3), user code 64 (0x20|3), TSS (0x28).
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
            a.mov(rax, tssLimit | ((Tss & 0xffffff) << 16) | (0x89UL << 40) | ((Tss >> 24 & 0xff) << 56));
            a.mov(__qword_ptr[rbx + 0x28], rax);
            a.mov(__qword_ptr[rbx + 0x30], 0);
            a.mov(rax, Gdt - 16);
            a.mov(__word_ptr[rax], 0x37);
            a.mov(__qword_ptr[rax + 2], rbx);
            a.lgdt(__[rax]);
            // TSS: the I/O bitmap right after it (fresh guest RAM is zero: every port allowed), its end marked with 0xff.
            a.mov(rbx, Tss);
            a.mov(__word_ptr[rbx + 0x66], 0x68);
            a.mov(__byte_ptr[rbx + 0x68 + 0x2000], 0xff);
            a.mov(__dword_ptr[rbx + 4], (int)KernelStack); // RSP0
            a.mov(ax, tssSelector);
            a.ltr(ax);
            a.mov(rax, Idt - 16);
            a.mov(__word_ptr[rax], 0xfff);
            a.mov(__qword_ptr[rax + 2], (int)Idt);
            a.lidt(__[rax]);
            // Page tables: the first 8 MiB identity-mapped with user-accessible 2 MiB pages.
            a.mov(rbx, Pml4);
            a.mov(__qword_ptr[rbx], (int)(Pml4 + 0x1000 + 7));
            a.mov(__qword_ptr[rbx + 0x1000], (int)(Pml4 + 0x2000 + 7));
            for (int i = 0; i < 4; i++)
            {
                a.mov(__qword_ptr[rbx + 0x2000 + (i * 8)], (i << 21) | 0x87);
            }
            a.mov(cr3, rbx);
            kernel?.Invoke(a);
            // iretq to CPL3 with IOPL 3 (and IF if asked).
            a.push(userData);
            a.push((int)UserStack);
            a.push(interrupts ? 0x3202 : 0x3002);
            a.push(userCode);
            a.lea(rax, __[userEntry]);
            a.push(rax);
            a.iretq();
            a.Label(ref userEntry);
            user(a);
        });
    }
}
