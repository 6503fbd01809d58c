using VmmSharp.Guests;
using VmmSharp.Kvm;
using VmmSharp.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Kvm;

/// <summary>KVM's own counters of a vCPU (<c>KVM_GET_STATS_FD</c>), against exits the test itself counts.</summary>
public class KvmStatisticsTests
{
    [Fact]
    public void TheVcpusCountersSeeEveryPortExitTheGuestMade()
    {
        KvmRequirement.Ensure();
        const int writes = 200;
        using var run = GuestRun.Create(GuestMode.User64, a =>
        {
            var loop = a.CreateLabel();
            a.mov(ecx, writes);
            a.Label(ref loop);
            a.mov(al, (byte)'.');
            a.@out(0xe9, al);
            a.dec(ecx);
            a.jnz(loop);
            a.ExitWith(0);
        });
        run.HandleConsoleAndExit();
        if (!run.Vm.Kvm.Has(KvmCapability.BinaryStatsFd))
        {
            Assert.Skip("not run: this host's KVM has no KVM_CAP_BINARY_STATS_FD");
        }
        Assert.Equal(0, run.Run().AssertStopped().Status);
        Assert.Equal(writes, run.Output.Length);

        IReadOnlyDictionary<string, long> stats = run.Vcpu.Vcpu.ReadStatistics();
        // Every port write and the exit port left the guest (PVM counts them in exits only, io_exits stays 0 there).
        Assert.InRange(stats["exits"], writes + 1, long.MaxValue);
        Assert.InRange(stats["io_exits"], 0, stats["exits"]);
        TestContext.Current.SendDiagnosticMessage($"exits {stats["exits"]}, io_exits {stats["io_exits"]}, insn_emulation {stats.GetValueOrDefault("insn_emulation")}");
    }
}
