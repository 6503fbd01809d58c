using Iced.Intel;
using VmmSharp.Tests.Boot;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Machine;

/// <summary>Small bzImages whose 64-bit entry (load address + 0x200) runs code assembled here.</summary>
internal static class GuestImages
{
    private const int SetupSects = 4;
    private const int EntryOffset = 0x200;

    /// <summary>A bzImage whose 64-bit entry runs <paramref name="program"/>, assembled for the address it is loaded at.</summary>
    public static byte[] BzImageRunning(Action<Assembler> program)
    {
        var asm = new Assembler(64);
        program(asm);
        using var stream = new MemoryStream();
        asm.Assemble(new StreamCodeWriter(stream), 0x100000 + EntryOffset);
        byte[] code = stream.ToArray();
        byte[] image = TestImages.BzImage(setupSects: SetupSects, relocatable: false, prefAddress: 0x100000);
        int entry = ((SetupSects + 1) * 512) + EntryOffset;
        code.CopyTo(image, entry);
        return image;
    }

    /// <summary>A bzImage that executes <c>ud2</c> with the empty IDT of the boot protocol: #UD, #NP, #DF, triple fault.</summary>
    public static byte[] TripleFault() => BzImageRunning(a => a.ud2());

    /// <summary>Writes <paramref name="image"/> to a fresh temporary file and returns its path.</summary>
    public static string Write(byte[] image, string name)
    {
        string path = Path.Combine(Path.GetTempPath(), $"vmmsharp-{name}-{Guid.NewGuid():N}");
        File.WriteAllBytes(path, image);
        return path;
    }

    /// <summary>
    /// Touches an unhandled port (0x80, QEMU's debug port) and reads unbacked MMIO in the 32-bit hole; debug-exits
    /// with 0 when the read gave all ones, else with 1.
    /// </summary>
    public static byte[] OpenBus() => BzImageRunning(a =>
    {
        Label fail = a.CreateLabel();
        a.mov(al, 0x55);
        a.@out(0x80, al);
        a.@in(al, 0x80);
        a.cmp(al, 0xff);
        a.jne(fail);
        a.mov(rbx, 0xd000_0000UL);
        a.mov(rax, __qword_ptr[rbx]);
        a.mov(__qword_ptr[rbx], rax);
        a.cmp(rax, -1);
        a.jne(fail);
        a.mov(al, 0);
        a.@out(0xf4, al);
        a.hlt();
        a.Label(ref fail);
        a.mov(al, 1);
        a.@out(0xf4, al);
        a.hlt();
    });
}
