using VmmSharp.Machine;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Machine;

public class RebootTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    private static string ResettingKernel() => GuestImages.Write(GuestImages.BzImageRunning(a =>
    {
        a.mov(Iced.Intel.AssemblerRegisters.al, 0xfe);
        a.@out(0x64, Iced.Intel.AssemblerRegisters.al); // i8042: pulse the reset line
        a.hlt();
    }), "reboot");

    [Fact]
    public void AResetWithRebootBootsAFreshMachineUntilTheLimit()
    {
        KvmRequirement.Ensure();
        string path = ResettingKernel();
        try
        {
            var machines = new List<PcMachine>();
            MachineResult result = MachineRunner.Run(
                new MachineOptions(path) { OnReset = ResetAction.Reboot, MaxReboots = 2, ResetExitStatus = 9, Deadline = Deadline },
                machines.Add);

            Assert.Equal(3, machines.Count);
            Assert.Equal(3, machines.Distinct().Count());
            Assert.Equal(MachineOutcome.RebootLimitReached, result.Outcome);
            Assert.Equal(MachineResult.FailureStatus, result.ExitStatus);
            Assert.Equal(2, result.Reboots);
            Assert.Equal("guest requested reset after 2 reboots, the limit (MaxReboots 2)", result.Reason);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void RebootsAreBoundedByDefault()
    {
        Assert.Equal(MachineOptions.DefaultMaxReboots, new MachineOptions("k").MaxReboots);
        Assert.InRange(MachineOptions.DefaultMaxReboots, 1, 1000);
    }

    [Fact]
    public void ANegativeRebootLimitIsRefusedBeforeBooting()
    {
        int boots = 0;
        var e = Assert.Throws<MachineConfigurationException>(() =>
            MachineRunner.Run(new MachineOptions("k") { OnReset = ResetAction.Reboot, MaxReboots = -1 }, _ => boots++));
        Assert.Contains("-1", e.Message, StringComparison.Ordinal);
        Assert.Equal(0, boots);
    }

    [Fact]
    public void AResetWithExitEndsTheFirstBoot()
    {
        KvmRequirement.Ensure();
        string path = ResettingKernel();
        try
        {
            int boots = 0;
            MachineResult result = MachineRunner.Run(new MachineOptions(path) { Deadline = Deadline }, _ => boots++);
            Assert.Equal(1, boots);
            Assert.Equal("guest requested reset", result.Reason);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void AnAcpiSoftOffEndsTheRunAsAShutdownWithStatusZero()
    {
        KvmRequirement.Ensure();
        string path = GuestImages.Write(GuestImages.BzImageRunning(a =>
        {
            a.mov(Iced.Intel.AssemblerRegisters.dx, VmmSharp.Arch.X86.Layout.AcpiSleepControlPort);
            a.mov(Iced.Intel.AssemblerRegisters.al, (5 << 2) | 0x20); // SLP_TYP 5, SLP_EN: what Linux writes for poweroff
            a.@out(Iced.Intel.AssemblerRegisters.dx, Iced.Intel.AssemblerRegisters.al);
            a.hlt();
        }), "poweroff");
        try
        {
            MachineResult result = MachineRunner.Run(new MachineOptions(path) { Deadline = Deadline, OnReset = ResetAction.Reboot });
            Assert.Equal(MachineOutcome.Shutdown, result.Outcome);
            Assert.Equal(0, result.ExitStatus);
            Assert.Equal("guest powered off (ACPI S5)", result.Reason);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
