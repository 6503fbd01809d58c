using System.Diagnostics;
using VmmSharp.Dispatch;
using VmmSharp.Guests;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Vm;

/// <summary>Runs alone: its tests measure the whole process's descriptors, mappings and memory.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SoakGroup
{
    public const string Name = "Soak (runs alone)";
}

/// <summary>Creating, running and destroying VMs leaks nothing the process can see.</summary>
[Collection(SoakGroup.Name)]
public class SoakTests(ITestOutputHelper output)
{
    private const int Vms = 500, SettleVms = 100;
    private const int MaxFdGrowth = 2, MaxMappingGrowth = 4;
    private const long MaxRssGrowthKiB = 4 << 10; // a page per VM would be 1.6 MiB over 400 VMs, a guest's RAM 2 MiB each

    private static int OpenFds() => Directory.GetFileSystemEntries("/proc/self/fd").Length;

    private static int Mappings() => File.ReadAllLines("/proc/self/maps").Length;

    private static long RssKiB()
    {
        string line = File.ReadAllLines("/proc/self/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);
    }

    private static void RunOne()
    {
        // vCPU 1 of a VM with the in-kernel LAPIC waits for INIT/SIPI; make it runnable so that both run the guest.
        using var run = GuestRun.Create(GuestMode.User64, a => a.ExitWith(0), vcpus: 2, irqchip: true,
            startup: s => s.Vcpu.SetMpState(0));
        run.HandleConsoleAndExit(run.Vm.Vcpus[0]);
        run.HandleConsoleAndExit(run.Vm.Vcpus[1]);
        run.Run().AssertStopped();
    }

    [Fact]
    public void FiveHundredVmsWithIrqchipAndTwoVcpusLeakNoDescriptorsMappingsOrMemory()
    {
        KvmRequirement.Ensure();
        // The first VMs grow the runtime and libc's caches (thread stacks, arenas) to their steady size; a leak shows
        // as growth over the VMs after them.
        var clock = Stopwatch.StartNew();
        (int Fds, int Maps, long Rss) baseline = default;
        for (int i = 0; i < Vms; i++)
        {
            if (i == SettleVms)
            {
                baseline = Measure();
            }
            else if (i % 50 == 0)
            {
                GC.Collect(); // keeps the managed heap, which RSS includes, at one size
            }
            RunOne();
        }
        (int Fds, int Maps, long Rss) end = Measure();
        clock.Stop();

        output.WriteLine($"{Vms} VMs in {clock.Elapsed.TotalSeconds:0.0} s ({clock.Elapsed.TotalMilliseconds / Vms:0.0} ms each); " +
            $"over the last {Vms - SettleVms}: fds {baseline.Fds} -> {end.Fds}, mappings {baseline.Maps} -> {end.Maps}, RSS outside the managed heap {baseline.Rss} -> {end.Rss} KiB");
        Assert.True(end.Fds - baseline.Fds <= MaxFdGrowth, $"open descriptors grew from {baseline.Fds} to {end.Fds}");
        Assert.True(end.Maps - baseline.Maps <= MaxMappingGrowth, $"mappings grew from {baseline.Maps} to {end.Maps}");
        Assert.True(end.Rss - baseline.Rss <= MaxRssGrowthKiB, $"RSS grew from {baseline.Rss} to {end.Rss} KiB");
    }

    /// <summary>Descriptors, mappings, and resident memory outside the managed heap (RSS less what the GC has committed).</summary>
    private static (int Fds, int Maps, long Rss) Measure()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        // Aggressive: the GC gives its free regions back to the kernel, so that what it has committed is what is
        // resident of it. A plain collection keeps them, and their pages then count as "outside the managed heap" by
        // as much as the heap shrank since the baseline (41 MB once, in a full suite run after heavy tests).
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        return (OpenFds(), Mappings(), RssKiB() - (GC.GetGCMemoryInfo().TotalCommittedBytes >> 10));
    }
}
