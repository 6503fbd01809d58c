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

    /// <summary>Asserts that a handler ended the run (not a failure), showing the reason otherwise.</summary>
    public static VmmSharp.Dispatch.VcpuRunResult AssertStopped(this VmmSharp.Dispatch.VcpuRunResult result)
    {
        Assert.True(result.Outcome == VmmSharp.Dispatch.VcpuRunOutcome.Stopped, $"{result.Outcome}: {result.Reason}");
        return result;
    }
}
