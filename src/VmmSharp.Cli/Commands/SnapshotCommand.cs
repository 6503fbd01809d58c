using System.Diagnostics;
using VmmSharp.Devices.Consoles;
using VmmSharp.Machine;

namespace VmmSharp.Cli.Commands;

/// <summary>
/// <c>vmm snapshot load --snapshot FILE --mem FILE</c>: restores a snapshot into a new machine in this process and runs
/// it to its end, like <c>vmm run</c>; and the <c>vmm run --snapshot-at</c> side that pauses, snapshots and exits.
/// </summary>
internal static class SnapshotCommand
{
    private static readonly TimeSpan OutputDrainTimeout = TimeSpan.FromSeconds(2);

    /// <summary>Restores and runs; prints the time from the load request to the guest running on stderr with <paramref name="stats"/>.</summary>
    public static int Load(string statePath, string memoryPath, TimeSpan? deadline, bool stats)
    {
        var clock = Stopwatch.StartNew();
        using var output = ConsoleOutput.StandardOutput();
        using PcMachine machine = PcMachine.Restore(statePath, memoryPath, o => o with
        {
            Console = new HostConsole(output),
            Deadline = deadline,
            HandOffTeardown = true,
        });
        TimeSpan restored = clock.Elapsed;
        // The guest runs its next instruction when the first exit after the restore arrives: watch for it (with --stats).
        TimeSpan firstExit = TimeSpan.Zero;
        using var done = new CancellationTokenSource();
        Task watch = stats
            ? Task.Factory.StartNew(() =>
            {
                while (!done.IsCancellationRequested && machine.Vm.Vcpus.All(v => v.TotalExits == 0))
                {
                    Thread.SpinWait(20);
                }
                firstExit = clock.Elapsed;
            }, TaskCreationOptions.LongRunning)
            : Task.CompletedTask;
        MachineResult result = machine.Run();
        done.Cancel();
        watch.Wait();
        machine.Vm.HandOffTeardown();
        bool drained = output.Flush(OutputDrainTimeout);
        bool failed = result.Outcome is MachineOutcome.Failed or MachineOutcome.DeadlineExceeded;
        if (stats)
        {
            Console.Error.WriteLine($"vmm: restored in {restored.TotalMilliseconds:0.00} ms, first guest exit after {firstExit.TotalMilliseconds:0.00} ms; {result.Reason}; status {result.ExitStatus} after {result.Elapsed.TotalMilliseconds:0.0} ms");
        }
        else if (failed)
        {
            Console.Error.WriteLine($"vmm: error: {result.Reason}; status {result.ExitStatus}");
        }
        if (!drained)
        {
            Console.Error.WriteLine("vmm: the guest's last output did not reach standard output; it is dropped");
        }
        return result.ExitStatus;
    }

    /// <summary>
    /// For <c>vmm run --snapshot-at</c>: after <paramref name="after"/>, pauses <paramref name="machine"/>, writes the snapshot
    /// and ends the run (status 0, or 1 with the reason if the snapshot failed).
    /// </summary>
    public static void ScheduleSnapshot(PcMachine machine, TimeSpan after, string statePath, string memoryPath)
    {
        _ = Task.Run(async () =>
        {
            await Task.Delay(after).ConfigureAwait(false);
            try
            {
                machine.Pause();
                SnapshotResult r = machine.CreateSnapshot(statePath, memoryPath);
                Console.Error.WriteLine($"vmm: snapshot written to '{statePath}' and '{memoryPath}' ({r.MemoryBytesWritten >> 10} KiB of memory) in {r.Elapsed.TotalMilliseconds:0.0} ms");
                machine.RequestStop(0, "snapshot taken");
            }
            catch (Exception e) when (e is VmmException or IOException or InvalidOperationException or UnauthorizedAccessException)
            {
                // The guest may have ended its run first; otherwise the snapshot failed: say why and end the run.
                Console.Error.WriteLine($"vmm: snapshot not taken: {e.Message}");
                machine.RequestStop(1, $"snapshot not taken: {e.Message}");
            }
        });
    }
}
