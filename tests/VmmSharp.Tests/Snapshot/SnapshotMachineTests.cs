using System.Diagnostics;
using System.Net.Sockets;
using VmmSharp.Kvm;
using VmmSharp.Machine;
using VmmSharp.Snapshot;
using VmmSharp.Tests.Guests;
using VmmSharp.Tests.Support;
using VmmSharp.Vm;

namespace VmmSharp.Tests.Snapshot;

/// <summary>Snapshots of a PcMachine in this process: lifecycle rules, in-process reset, diff snapshots.</summary>
public sealed class SnapshotMachineTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private readonly string _dir = Directory.CreateTempSubdirectory("vmmsharp-snapm-").FullName;
    private readonly string _kernel;

    public SnapshotMachineTests()
    {
        _kernel = Path.Combine(_dir, "xorshift");
        File.WriteAllBytes(_kernel, SnapshotGuests.XorshiftCounter(1UL << 29));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    private MachineOptions Options(CapturedConsole console) => new(_kernel)
    {
        MemorySize = 32 << 20,
        Console = console.Console,
        Deadline = Bound,
    };

    /// <summary>Starts the machine's run on a thread and waits until the guest printed <paramref name="dots"/> dots.</summary>
    private static Task<MachineResult> RunUntil(PcMachine machine, CapturedConsole console, int dots)
    {
        Task<MachineResult> run = Task.Factory.StartNew(machine.Run, TaskCreationOptions.LongRunning);
        Assert.True(SpinWait.SpinUntil(() => console.Text.Count(c => c == '.') >= dots || run.IsCompleted, Bound), "the guest printed nothing");
        Assert.False(run.IsCompleted, $"the guest ended early: {(run.IsCompleted ? run.Result.Reason : "")}");
        return run;
    }

    [Fact]
    public void SnapshottingARunningMachineIsRefused()
    {
        KvmRequirement.Ensure();
        using var console = new CapturedConsole();
        using var machine = new PcMachine(Options(console));
        Task<MachineResult> run = RunUntil(machine, console, 1);
        InvalidOperationException e = Assert.Throws<InvalidOperationException>(() => machine.CreateSnapshot(PathOf("s"), PathOf("m")));
        Assert.Contains("running", e.Message, StringComparison.Ordinal);
        machine.Pause();
        Assert.Equal(VmState.Paused, machine.State);
        Assert.Throws<InvalidOperationException>(machine.Pause);
        machine.RequestStop(0, "done");
        Assert.True(run.Wait(Bound));
        Assert.Equal(VmState.Stopped, machine.State);
        Assert.Contains("stopped", Assert.Throws<InvalidOperationException>(machine.Resume).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ARestoredMachineInThisProcessFinishesWithTheUninterruptedResult()
    {
        KvmRequirement.Ensure();
        string expected;
        using (var console = new CapturedConsole())
        using (var machine = new PcMachine(Options(console)))
        {
            MachineResult whole = machine.Run();
            Assert.True(whole.Outcome == MachineOutcome.DebugExit, whole.Reason);
            expected = console.Text.Trim('.', '\n');
        }

        using (var console = new CapturedConsole())
        using (var machine = new PcMachine(Options(console)))
        {
            Task<MachineResult> run = RunUntil(machine, console, 3);
            machine.Pause();
            machine.CreateSnapshot(PathOf("state"), PathOf("mem"));
            machine.RequestStop(0, "snapshot taken");
            Assert.True(run.Wait(Bound));
        }

        using (var console = new CapturedConsole())
        using (PcMachine restored = PcMachine.Restore(PathOf("state"), PathOf("mem"), o => o with { Console = console.Console, Deadline = Bound }))
        {
            Assert.Equal(VmState.Paused, restored.State);
            MachineResult result = restored.Run();
            Assert.True(result.Outcome == MachineOutcome.DebugExit, result.Reason);
            Assert.Equal(expected, console.Text.Trim('.', '\n'));
        }
    }

    [Fact]
    public void AnInProcessResetRewindsMemoryAndStateToTheSnapshot()
    {
        KvmRequirement.Ensure();
        using var console = new CapturedConsole();
        using var machine = new PcMachine(Options(console) with { Deadline = null });
        Task<MachineResult> run = RunUntil(machine, console, 2);
        machine.Pause();
        machine.CreateSnapshot(PathOf("state"), PathOf("mem"));
        machine.Vm.Vcpus[0].Vcpu.GetRegs(out KvmRegs atSnapshot);
        ulong marker = machine.Vm.Memory.Read<ulong>(0x200000);

        var snapshot = MachineSnapshot.Load(PathOf("state"), PathOf("mem"));
        TimeSpan fastest = TimeSpan.MaxValue;
        for (int round = 0; round < 5; round++)
        {
            machine.Resume();
            int dots = console.Text.Count(c => c == '.');
            Assert.True(SpinWait.SpinUntil(() => console.Text.Count(c => c == '.') > dots, Bound));
            machine.Pause();
            // The host dirties 1 MiB too, as a sandbox's call would.
            machine.Vm.Memory.Fill(0x200000, 1 << 20, 0xa5);
            machine.Vm.Vcpus[0].Vcpu.GetRegs(out KvmRegs moved);
            Assert.NotEqual(atSnapshot.Rcx, moved.Rcx);

            var clock = Stopwatch.StartNew();
            machine.Restore(snapshot);
            clock.Stop();
            fastest = clock.Elapsed < fastest ? clock.Elapsed : fastest;

            Assert.Equal(VmState.Paused, machine.State);
            machine.Vm.Vcpus[0].Vcpu.GetRegs(out KvmRegs back);
            Assert.Equal(atSnapshot.Rcx, back.Rcx);
            Assert.Equal(atSnapshot.Rip, back.Rip);
            Assert.Equal(marker, machine.Vm.Memory.Read<ulong>(0x200000));
        }
        Assert.True(machine.Vm.Memory.IsFileBacked);
        machine.RequestStop(0, "done");
        Assert.True(run.Wait(Bound));
        Console.WriteLine($"in-process reset: fastest of 5 {fastest.TotalMicroseconds:0} us");
    }

    [Fact]
    public void ADiffSnapshotWritesOnlyTheDirtiedPagesAndFoldsIntoTheFullOne()
    {
        KvmRequirement.Ensure();
        using var console = new CapturedConsole();
        using var machine = new PcMachine(Options(console) with { TrackDirtyPages = true, Deadline = null });
        Task<MachineResult> run = RunUntil(machine, console, 1);
        machine.Pause();
        machine.CreateSnapshot(PathOf("state"), PathOf("full"));
        // The guest's own writes between the two snapshots: its stack page at most (it computes in registers).
        machine.Resume();
        Thread.Sleep(50);
        machine.Pause();
        SnapshotResult diff = machine.CreateSnapshot(PathOf("state2"), PathOf("diff"), SnapshotKind.Diff);
        Assert.True(diff.MemoryBytesWritten <= 4 * 4096, $"{diff.MemoryBytesWritten} bytes written for a guest that dirtied at most a few pages");
        long data = MemoryFile.DataExtents(PathOf("diff")).Sum(e => e.Length);
        Assert.True(data <= Math.Max(diff.MemoryBytesWritten, 4096) * 2, $"the diff file holds {data} bytes of data");
        Assert.Equal(32L << 20, new FileInfo(PathOf("diff")).Length);
        machine.RequestStop(0, "done");
        Assert.True(run.Wait(Bound));

        // Folding the diff into the full file gives the memory of the second snapshot; the state file restores on it.
        MemoryFile.ApplyDiff(PathOf("diff"), PathOf("full"));
        using var console2 = new CapturedConsole();
        using PcMachine restored = PcMachine.Restore(PathOf("state2"), PathOf("full"), o => o with { Console = console2.Console, Deadline = Bound });
        MachineResult result = restored.Run();
        Assert.True(result.Outcome == MachineOutcome.DebugExit, result.Reason);
        Assert.Matches("[0-9a-f]{16}\n$", console2.Text);
    }

    [Fact]
    public void ADiffSnapshotOfGuestWritesHoldsExactlyThosePages()
    {
        KvmRequirement.Ensure();
        // A guest that writes 3 pages at 4 MiB, 4 MiB + 8 KiB and 5 MiB after the first snapshot, then spins.
        string kernel = PathOf("writer");
        File.WriteAllBytes(kernel, SnapshotGuests.AtCpl3(a =>
        {
            Iced.Intel.Label spin = a.CreateLabel(), wait = a.CreateLabel();
            a.mov(Iced.Intel.AssemblerRegisters.dx, 0x3f8);
            a.mov(Iced.Intel.AssemblerRegisters.al, (byte)'.');
            a.@out(Iced.Intel.AssemblerRegisters.dx, Iced.Intel.AssemblerRegisters.al); // "ready": the host snapshots now
            a.mov(Iced.Intel.AssemblerRegisters.rcx, 1UL << 26);
            a.Label(ref wait);
            a.dec(Iced.Intel.AssemblerRegisters.rcx);
            a.jnz(wait);
            foreach (long address in new long[] { 0x400000, 0x402000, 0x500000 })
            {
                a.mov(Iced.Intel.AssemblerRegisters.rbx, address);
                a.mov(Iced.Intel.AssemblerRegisters.__qword_ptr[Iced.Intel.AssemblerRegisters.rbx], 0x1234);
            }
            a.@out(Iced.Intel.AssemblerRegisters.dx, Iced.Intel.AssemblerRegisters.al); // "written"
            a.Label(ref spin);
            a.jmp(spin);
        }));
        using var console = new CapturedConsole();
        using var machine = new PcMachine(new MachineOptions(kernel) { MemorySize = 32 << 20, Console = console.Console, TrackDirtyPages = true });
        Task<MachineResult> run = RunUntil(machine, console, 1);
        machine.Pause();
        machine.CreateSnapshot(PathOf("s1"), PathOf("m1"));
        machine.Resume();
        Assert.True(SpinWait.SpinUntil(() => console.Text.Count(c => c == '.') >= 2, Bound));
        machine.Pause();
        machine.CreateSnapshot(PathOf("s2"), PathOf("m2"), SnapshotKind.Diff);
        machine.RequestStop(0, "done");
        Assert.True(run.Wait(Bound));

        var extents = MemoryFile.DataExtents(PathOf("m2")).ToList();
        long[] pages = [.. extents.SelectMany(e => Enumerable.Range(0, (int)(e.Length / 4096)).Select(i => e.Offset + (i * 4096L)))];
        Assert.Contains(0x400000L, pages);
        Assert.Contains(0x402000L, pages);
        Assert.Contains(0x500000L, pages);
        Assert.DoesNotContain(0x401000L, pages);
        Assert.True(pages.Length <= 6, $"the diff holds {pages.Length} pages: {string.Join(", ", pages.Select(p => $"0x{p:x}"))}");
    }

    [Fact]
    public void ADiffSnapshotHoldsThePagesTheHostWroteIntoGuestMemory()
    {
        KvmRequirement.Ensure();
        using var console = new CapturedConsole();
        using var machine = new PcMachine(Options(console) with { TrackDirtyPages = true, Deadline = null });
        Task<MachineResult> run = RunUntil(machine, console, 1);
        machine.Pause();
        machine.CreateSnapshot(PathOf("state"), PathOf("full"));
        // What device models do between two snapshots (used rings, DMA): host writes, which KVM's dirty log does not see.
        byte[] pattern = new byte[4096];
        Random.Shared.NextBytes(pattern);
        machine.Vm.Memory.Write(0x600000, pattern);
        Assert.True(machine.Vm.Memory.TryWrite(0x700ff0, "a used ring entry"u8));
        SnapshotResult diff = machine.CreateSnapshot(PathOf("state2"), PathOf("diff"), SnapshotKind.Diff);
        machine.RequestStop(0, "done");
        Assert.True(run.Wait(Bound));

        long[] pages = Pages(PathOf("diff"));
        Assert.Contains(0x600000L, pages);
        Assert.Contains(0x700000L, pages);
        Assert.Contains(0x701000L, pages); // the write crossed into the next page
        Assert.True(pages.Length <= 8, $"the diff holds {pages.Length} pages ({diff.MemoryBytesWritten} bytes)");
        MemoryFile.ApplyDiff(PathOf("diff"), PathOf("full"));
        using FileStream full = File.OpenRead(PathOf("full"));
        byte[] back = new byte[4096];
        full.Position = 0x600000;
        full.ReadExactly(back);
        Assert.Equal(pattern, back);
    }

    [Fact]
    public void FullPlusDiffIsTheMemoryOfTheSecondSnapshotWithTheVirtioBlkUsedRing()
    {
        KvmRequirement.Ensure();
        string disk = PathOf("disk");
        File.WriteAllBytes(disk, new byte[8192 * 512]);
        using var console = new CapturedConsole();
        using var machine = new PcMachine(new MachineOptions(TestGuests.VirtioKernel)
        {
            CommandLine = "blk",
            MemorySize = 64UL << 20,
            Disks = [new DiskOptions(disk)],
            Console = console.Console,
            TrackDirtyPages = true,
        });
        Task<MachineResult> run = Task.Factory.StartNew(machine.Run, TaskCreationOptions.LongRunning);
        try
        {
            // The full snapshot once the queue is set up (GET_ID answered), the diff once the disk is written and flushed
            // (the read-back still to come): between them the device wrote a used-ring entry per request, in a page the
            // guest only reads (tests/guests/virtio/virtq.c).
            WaitForLine(console, run, "BLK 0 id ");
            machine.Pause();
            machine.CreateSnapshot(PathOf("s1"), PathOf("full"));
            machine.Resume();
            WaitForLine(console, run, "BLK 0 flush ");
            machine.Pause();
            Assert.DoesNotContain("FAIL", console.Text, StringComparison.Ordinal);
            machine.CreateSnapshot(PathOf("s2"), PathOf("diff"), SnapshotKind.Diff);
            MemoryFile.ApplyDiff(PathOf("diff"), PathOf("full"));

            // Every page of the folded file is the paused guest's memory.
            using FileStream full = File.OpenRead(PathOf("full"));
            byte[] page = new byte[4096];
            long offset = 0;
            var stale = new List<ulong>();
            foreach (VmmSharp.Memory.GuestRegion region in machine.Vm.Memory.Regions)
            {
                for (ulong at = 0; at < region.Size; at += 4096, offset += 4096)
                {
                    full.Position = offset;
                    full.ReadExactly(page);
                    if (!page.AsSpan().SequenceEqual(region.HostSpan(at, 4096)))
                    {
                        stale.Add(region.GuestAddress + at);
                    }
                }
            }
            Assert.True(stale.Count == 0, $"{stale.Count} pages of full + diff differ from the guest's memory: {string.Join(", ", stale.Take(10).Select(a => $"0x{a:x}"))}");
        }
        finally
        {
            machine.RequestStop(0, "done");
            Assert.True(run.Wait(Bound));
        }
    }

    [Fact]
    public void ASnapshotOfAMachineWithVsockRestoresItsVsockDevice()
    {
        KvmRequirement.Ensure();
        string socket = PathOf("vm.vsock");
        using (var console = new CapturedConsole())
        using (var machine = new PcMachine(Options(console) with { Vsock = new VsockOptions(7, socket) }))
        {
            Task<MachineResult> run = RunUntil(machine, console, 1);
            machine.Pause();
            machine.CreateSnapshot(PathOf("state"), PathOf("mem"));
            machine.RequestStop(0, "snapshot taken");
            Assert.True(run.Wait(Bound));
        }
        Assert.False(File.Exists(socket));

        using var console2 = new CapturedConsole();
        using PcMachine restored = PcMachine.Restore(PathOf("state"), PathOf("mem"), o => o with { Console = console2.Console, Deadline = Bound });
        Assert.Equal(new VsockOptions(7, socket), restored.Options.Vsock);
        using (var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            client.Connect(new UnixDomainSocketEndPoint(socket)); // the device is back, listening for host programs
        }
        MachineResult result = restored.Run();
        Assert.True(result.Outcome == MachineOutcome.DebugExit, result.Reason);
        Assert.Matches("[0-9a-f]{16}\n$", console2.Text);
    }

    private static long[] Pages(string memoryFile)
        => [.. MemoryFile.DataExtents(memoryFile).SelectMany(e => Enumerable.Range(0, (int)(e.Length / 4096)).Select(i => e.Offset + (i * 4096L)))];

    private static void WaitForLine(CapturedConsole console, Task<MachineResult> run, string start)
    {
        Assert.True(SpinWait.SpinUntil(() => console.Text.Contains(start, StringComparison.Ordinal) || run.IsCompleted, Bound),
            $"no '{start}' within {Bound.TotalSeconds} s: {console.Text}");
        Assert.False(run.IsCompleted, $"the guest ended before '{start}': {console.Text}");
    }
}
