using VmmSharp.Boot;
using VmmSharp.Kvm;
using VmmSharp.Machine;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Machine;

/// <summary>
/// The small Linux kernel of <c>scripts/linux-tiny.sh</c>, booted through PVH with its initramfs. With VMX/SVM it runs
/// <c>/init</c>, which prints its marker and powers off. On PVM hosts every CPL0 instruction is emulated and no user
/// space can make a system call (a CPL3 <c>syscall</c> does not enter the guest kernel), so there the kernel gets as
/// far as starting <c>/init</c>, <c>/init</c> dies at its first system call, and the kernel's panic reboots the
/// machine: the run ends on its own, as a reset. Getting there needs the emulation fallback (the kernel's
/// <c>int3</c> self-test, its <c>xsaves</c>/<c>xrstors</c>).
/// </summary>
public class LinuxTinyBootTests
{
    // The goal is 60 s to the init panic on a PVM host: about 18 M instructions emulated by KVM (docs/PERFORMANCE.md), some
    // 15-40 s; the deadline leaves room for a loaded host, and the starvation check below tells the two apart.
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(240);

    // Below one 128 MiB memory section the struct pages of the whole section are set up anyway; less RAM means fewer pages to free.
    private const ulong Memory = 64UL << 20;

    // start_kernel prints this right after arch_cpu_finalize_init, whose alternatives run the int3 self-test.
    private const string PastInt3SelfTest = "pid_max: default: ";

    private const string InitPanic = "Kernel panic - not syncing: Attempted to kill init!";

    // KVM's emulator ran about 1.3 M guest instructions per second on a quiet PVM host (insn_emulation / time); a host
    // that gave the run less than a quarter of that is too loaded to tell a slow boot from a starved one.
    private const double StarvedInstructionsPerSecond = 0.3e6;

    private static bool Native => KvmSystem.Virtualization.Kind is HostVirtualizationKind.Vmx or HostVirtualizationKind.Svm;

    private static MachineRun Boot(string kernel, Func<string, bool>? stopWhen = null)
    {
        MachineRun run = MachineRun.Start(new MachineOptions(kernel)
        {
            InitrdPath = LinuxTinyKernel.Initramfs,
            CommandLine = LinuxTinyKernel.CommandLine(),
            MemorySize = Memory,
        }, Deadline, stopWhen);
        TestContext.Current.SendDiagnosticMessage(
            $"{Path.GetFileName(kernel)}: {run.Result.Outcome} after {run.Result.Elapsed.TotalSeconds:0.0} s (goal on PVM: 60 s to the init panic); " +
            $"{Emulated(run.Result)}; load average {LoadAverage()}; last line: \"{LastLine(run)}\"");
        Assert.Equal(KernelFormat.Pvh, run.Boot.Format);
        Assert.True(run.Output.Contains("Linux version 6.1.", StringComparison.Ordinal), $"no Linux banner\n{run.Describe()}");
        Assert.True(run.Output.Contains(PastInt3SelfTest, StringComparison.Ordinal), $"the kernel did not get past its int3 self-test\n{run.Describe()}");
        Assert.True(run.Result.Outcome is not MachineOutcome.Failed, $"the run failed\n{run.Describe()}");
        return run;
    }

    private static string LastLine(MachineRun run) => run.Lines.LastOrDefault(l => l.Length > 0) ?? "";

    private static string Emulated(MachineResult result)
    {
        long insns = result.KvmStatistics.GetValueOrDefault("insn_emulation");
        return $"KVM emulated {insns / 1e6:0.0} M instructions ({insns / result.Elapsed.TotalSeconds / 1e6:0.00} M/s), " +
            $"{result.KvmStatistics.GetValueOrDefault("exits")} exits, fallback: {string.Join(' ', result.EmulatedInstructions.Select(e => $"{e.Key} {e.Value}"))}";
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

    /// <summary>
    /// On PVM: the run ends by itself, with /init's death and the panic's reboot. A deadline that fires is a failure,
    /// unless KVM's own counters show that the host starved the run (then the test is skipped, saying how far it got).
    /// </summary>
    private static void AssertPvmEnd(MachineRun run)
    {
        if (run.Result.Outcome == MachineOutcome.DeadlineExceeded)
        {
            long insns = run.Result.KvmStatistics.GetValueOrDefault("insn_emulation");
            double rate = insns / run.Result.Elapsed.TotalSeconds;
            string seen = $"not reached within {Deadline.TotalSeconds} s: the start of /init and the panic's reboot; the kernel got as far as " +
                $"\"{LastLine(run)}\"; {Emulated(run.Result)}, load average {LoadAverage()}";
            Assert.True(insns > 0 && rate < StarvedInstructionsPerSecond, $"{seen}\n{run.Describe()}");
            Assert.Skip($"host too loaded to judge the boot time ({rate / 1e6:0.00} M emulated instructions/s against ~1.3 M/s on a quiet host): {seen}");
        }
        Assert.True(run.Output.Contains(LinuxTinyKernel.InitStart, StringComparison.Ordinal), $"the kernel did not start /init\n{run.Describe()}");
        Assert.True(run.Output.Contains(InitPanic, StringComparison.Ordinal), $"expected the panic of a dead /init\n{run.Describe()}");
        Assert.True(run.Output.IndexOf(LinuxTinyKernel.InitStart, StringComparison.Ordinal) < run.Output.IndexOf(InitPanic, StringComparison.Ordinal),
            $"the panic came before /init was started\n{run.Describe()}");
        Assert.True(run.Result.Outcome == MachineOutcome.Reset, $"expected the panic's reboot to end the run\n{run.Describe()}");
        TestContext.Current.SendDiagnosticMessage(
            $"the kernel started /init after {InitStartSeconds(run)} s of its own clock and the run ended by the guest's reset after " +
            $"{run.Result.Elapsed.TotalSeconds:0.0} s (goal 60 s). Not run: /init's own work (\"{LinuxTinyKernel.InitMarker}\") and its power-off: " +
            $"on this host's KVM ({KvmSystem.Virtualization.Kind}) a system call from guest user mode does not enter the guest kernel, so /init dies at its first one.");
    }

    // The printk timestamp of the "Run /init" line, as printed.
    private static string InitStartSeconds(MachineRun run)
    {
        string? line = run.Lines.FirstOrDefault(l => l.Contains(LinuxTinyKernel.InitStart, StringComparison.Ordinal));
        int open = line?.IndexOf('[', StringComparison.Ordinal) ?? -1, close = line?.IndexOf(']', StringComparison.Ordinal) ?? -1;
        return open >= 0 && close > open ? line![(open + 1)..close].Trim() : "?";
    }

    [Fact]
    public void TheKernelStartsInitAndTheRunEndsByItself()
    {
        KvmRequirement.Ensure();
        MachineRun run = Boot(LinuxTinyKernel.Vmlinux);
        if (Native)
        {
            // Without ACPI the kernel cannot power off: reboot() returns, /init exits, and the panic reboots.
            Assert.True(run.Output.Contains(LinuxTinyKernel.InitMarker, StringComparison.Ordinal), $"/init did not run\n{run.Describe()}");
            Assert.True(run.Result.Outcome == MachineOutcome.Reset, $"expected the reboot after /init\n{run.Describe()}");
            return;
        }
        AssertPvmEnd(run);
    }

    [Fact]
    public void TheAcpiKernelTakesItsInterruptRoutingFromOurMadt()
    {
        KvmRequirement.Ensure();
        // On PVM this stops past the int3 self-test, the MADT long in use (the rest of the boot is the other test's); natively it runs to the power-off.
        const string madt = "ACPI: Using ACPI (MADT) for SMP configuration information";
        MachineRun run = Boot(LinuxTinyKernel.AcpiVmlinux, Native ? null : text => text.Contains(PastInt3SelfTest, StringComparison.Ordinal));
        Assert.True(run.Output.Contains(madt, StringComparison.Ordinal), $"MADT not used\n{run.Describe()}");
        Assert.True(run.Output.Contains("ACPI: INT_SRC_OVR (bus 0 bus_irq 0 global_irq 2 dfl dfl)", StringComparison.Ordinal), $"no IRQ 0 override\n{run.Describe()}");
        if (Native)
        {
            Assert.True(run.Output.Contains("ACPI: Interpreter enabled", StringComparison.Ordinal), $"the ACPI interpreter did not start\n{run.Describe()}");
            Assert.True(run.Output.Contains(LinuxTinyKernel.InitMarker, StringComparison.Ordinal), $"/init did not run\n{run.Describe()}");
            Assert.True(run.Result.Outcome == MachineOutcome.Shutdown, $"expected the ACPI power-off\n{run.Describe()}");
            return;
        }
        TestContext.Current.SendDiagnosticMessage(
            "not run here (PVM): the ACPI interpreter on our DSDT, /init and the ACPI power-off; the DSDT's devices are the virtio tests' part.");
    }
}
