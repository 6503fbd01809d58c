using VmmSharp.Kvm;
using VmmSharp.Machine;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Machine;

/// <summary>
/// Debian's stock kernel (<c>artifacts/linux-guest/vmlinux</c>) through its <c>int3</c> self-test. On a PVM host its CPL0
/// code is emulated and KVM's emulator cannot run <c>int3</c>: the emulation fallback delivers the #BP, the self-test's
/// handler returns, and the kernel goes on. Before the fallback the boot stopped there; now the tests see the line
/// that follows the self-test. Its own class, so that its minutes run beside the other tests rather than after them.
/// </summary>
public class DebianKernelFallbackTests
{
    // alternative_instructions() prints this right after int3_selftest() (free_init_pages of the SMP alternatives).
    private const string PastInt3SelfTest = "Freeing SMP alternatives memory";

    // On a quiet PVM host the line comes at ~117 s of the kernel's clock, which starts after clear_bss and the early
    // set-up (over a minute more of wall time on a loaded host); CI runs this beside the other tests on 2 cores.
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(600);

    // Less RAM, fewer struct pages to initialise and free before the line; 128 MiB is one memory section.
    private const ulong Memory = 128UL << 20;

    private const string CommandLine = "console=ttyS0 panic=-1 i8042.noaux";

    // A quiet PVM host runs ~1.3 M emulated instructions per second; below a quarter of that the host starved the run.
    private const double StarvedInstructionsPerSecond = 0.3e6;

    [Fact]
    public void TheDebianKernelGetsPastItsInt3SelfTest()
    {
        KvmRequirement.Ensure();
        string vmlinux = LinuxBootTests.Artifact("vmlinux");
        bool pvm = KvmSystem.Virtualization.Kind == HostVirtualizationKind.Pvm;
        string commandLine = pvm ? $"{CommandLine} {LinuxTinyKernel.PvmCommandLine}" : CommandLine;
        MachineRun run = MachineRun.Start(new MachineOptions(vmlinux) { CommandLine = commandLine, MemorySize = Memory },
            Deadline, text => text.Contains(PastInt3SelfTest, StringComparison.Ordinal));

        long insns = run.Result.KvmStatistics.GetValueOrDefault("insn_emulation");
        double rate = insns / run.Result.Elapsed.TotalSeconds;
        string lastLine = run.Lines.LastOrDefault(l => l.Length > 0) ?? "";
        string seen = $"{run.Result.Outcome} after {run.Result.Elapsed.TotalSeconds:0.0} s of wall time; KVM emulated {insns / 1e6:0.0} M instructions " +
            $"({rate / 1e6:0.00} M/s); fallback: {string.Join(' ', run.Result.EmulatedInstructions.Select(e => $"{e.Key} {e.Value}"))}; " +
            $"load average {LoadAverage()}; last line \"{lastLine.Trim()}\"";
        TestContext.Current.SendDiagnosticMessage($"Debian's kernel: {seen}");
        if (!run.Output.Contains(PastInt3SelfTest, StringComparison.Ordinal))
        {
            bool starved = run.Result.Outcome == MachineOutcome.DeadlineExceeded && insns > 0 && rate < StarvedInstructionsPerSecond;
            if (starved && Environment.GetEnvironmentVariable("VMMSHARP_REQUIRE_KVM") != "1")
            {
                Assert.Skip($"host too loaded to judge ({rate / 1e6:0.00} M emulated instructions/s against ~1.3 M/s on a quiet host): " +
                    $"\"{PastInt3SelfTest}\" not reached within {Deadline.TotalSeconds} s; {seen}");
            }
            Assert.Fail($"the kernel did not get past its int3 self-test (\"{PastInt3SelfTest}\") within {Deadline.TotalSeconds} s: {seen}\n{run.Describe()}");
        }
        Assert.True(run.Result.Outcome == MachineOutcome.Stopped, $"the run should have been stopped at the line\n{run.Describe()}");
        if (pvm)
        {
            // The self-test's int3 went through the fallback: KVM's emulator fails on it here.
            Assert.True(run.Result.EmulatedInstructions.Any(e => e.Key == "int3" && e.Value >= 1), $"the fallback finished no int3: {seen}");
        }
    }

    private static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }
}
