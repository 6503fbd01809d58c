using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Support;

/// <summary>Little idioms for test guests.</summary>
internal static class AsmExtensions
{
    /// <summary>Writes AL's low byte to port 0xf4: the test harness stops the vCPU with that status.</summary>
    public static void ExitWith(this Assembler a, int status)
    {
        a.mov(al, (byte)status);
        a.@out(0xf4, al);
        a.hlt();
    }

    /// <summary>
    /// A guest program: counts in RAX forever, in a loop of two instructions without exits (at CPL3 it runs
    /// natively, so only a recall or a signal brings the vCPU out).
    /// </summary>
    public static void CountForever(Assembler a)
    {
        ArgumentNullException.ThrowIfNull(a);
        var loop = a.CreateLabel();
        a.Label(ref loop);
        a.inc(rax);
        a.jmp(loop);
    }

    /// <summary>Installs a 64-bit interrupt gate for <paramref name="vector"/> pointing at <paramref name="handler"/>.</summary>
    public static void InstallGate(this Assembler a, int vector, Label handler)
    {
        ulong gate = VmmSharp.Guests.TinyGuestLayout.Idt + (ulong)(vector * 16);
        a.lea(rax, __[handler]);
        a.mov(rbx, gate);
        a.mov(__word_ptr[rbx], ax);
        a.mov(__word_ptr[rbx + 2], VmmSharp.Guests.TinyGuestLayout.KernelCode64);
        a.mov(__word_ptr[rbx + 4], 0x8e00); // present, DPL 0, 64-bit interrupt gate
        a.shr(rax, 16);
        a.mov(__word_ptr[rbx + 6], ax);
        a.shr(rax, 16);
        a.mov(__dword_ptr[rbx + 8], eax);
    }

    /// <summary>Asserts that a handler ended the run (not a failure), showing the reason otherwise.</summary>
    public static VmmSharp.Dispatch.VcpuRunResult AssertStopped(this VmmSharp.Dispatch.VcpuRunResult result)
    {
        Assert.True(result.Outcome == VmmSharp.Dispatch.VcpuRunOutcome.Stopped, $"{result.Outcome}: {result.Reason}");
        return result;
    }
}
