using VmmSharp.Guests;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Vm;

public class VirtualMachineRunTests
{
    [Fact]
    public void A_deadline_beyond_what_a_wait_takes_is_refused_before_any_vcpu_starts()
    {
        KvmRequirement.Ensure();
        using var run = GuestRun.Create(GuestMode.User64, a => a.ExitWith(0));

        var e = Assert.Throws<ArgumentOutOfRangeException>(() => run.Vm.Run(TimeSpan.FromSeconds(3_000_000)));

        Assert.Equal("deadline", e.ParamName);
        Assert.False(run.Vcpu.IsStarted, "the vCPU was started before the deadline was checked");
    }
}
