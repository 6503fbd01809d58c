using VmmSharp.Dispatch;
using VmmSharp.Guests;
using VmmSharp.Profiling;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Profiling;

/// <summary>The sampling profiler on a real guest: recalls from its thread, RIPs from the vCPU's Recall handler.</summary>
public class RipSamplerTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);


    private static (GuestProfile Profile, VcpuRunResult Result) SampleSpinningGuest(int capacity, TimeSpan duration)
    {
        using var entered = new ManualResetEventSlim();
        using var run = GuestRun.Create(GuestMode.User64, AsmExtensions.CountForever, startup: _ => entered.Set());
        using var sampler = new RipSampler(TimeSpan.FromMilliseconds(1), capacity);
        Assert.True(sampler.Attach(run.Vcpu));
        Task<VcpuRunResult> done = run.Vcpu.Start();
        Assert.True(entered.Wait(Bound));
        sampler.Start();
        Thread.Sleep(duration);
        sampler.Stop();
        run.Vcpu.RequestStop();
        Assert.True(done.Wait(Bound), "the vCPU did not stop");
        return (sampler.Profile(), done.Result);
    }

    [Fact]
    public void SamplesLandWhereTheGuestRuns()
    {
        KvmRequirement.Ensure();
        (GuestProfile profile, _) = SampleSpinningGuest(RipSampler.DefaultCapacity, TimeSpan.FromMilliseconds(500));

        // Recalls that come while one is pending merge into it, and a loaded host wakes the sampler late: far fewer than 500.
        Assert.True(profile.Total >= 3, $"only {profile.Total} samples in 500 ms at 1 ms");
        Assert.Equal(0, profile.Dropped);
        Assert.All(profile.Counts.Keys, rip => Assert.InRange(rip, TinyGuest.Entry, TinyGuest.Entry + 8));
        Assert.Equal(profile.Total, profile.Counts.Values.Sum());
        TestContext.Current.SendDiagnosticMessage($"{profile.Total} samples in 500 ms");
    }

    [Fact]
    public void SamplesBeyondTheBufferAreCountedAsDropped()
    {
        KvmRequirement.Ensure();
        (GuestProfile profile, _) = SampleSpinningGuest(capacity: 3, TimeSpan.FromMilliseconds(500));

        Assert.Equal(3, profile.Total);
        Assert.True(profile.Dropped > 0, "no sample was dropped past a buffer of 3");
    }

    [Fact]
    public void TheRecallSlotOfAVcpuIsTakenOnce()
    {
        KvmRequirement.Ensure();
        using var run = GuestRun.Create(GuestMode.User64, AsmExtensions.CountForever);
        using var first = new RipSampler(TimeSpan.FromMilliseconds(5));
        using var second = new RipSampler(TimeSpan.FromMilliseconds(5));
        Assert.True(first.Attach(run.Vcpu));
        Assert.False(second.Attach(run.Vcpu));
    }

    [Fact]
    public void ByFunctionSumsTheSamplesOfOneSymbol()
    {
        var profile = new GuestProfile(new Dictionary<ulong, long> { [0x1000] = 2, [0x1004] = 3, [0x2000] = 1, [0x10] = 4 }, 10, 0, TimeSpan.FromMilliseconds(1));
        SymbolTable symbols = SymbolTable.FromSystemMap("0000000000001000 T f\n0000000000002000 T g\n");
        Assert.Equal<ProfileEntry>([new("f", 0x1000, 5), new("[user or low memory]", 0, 4), new("g", 0x2000, 1)], profile.ByFunction(symbols));
    }
}
