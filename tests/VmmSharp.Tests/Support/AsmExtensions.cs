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
}
