using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using VmmSharp.Cli.Api;
using VmmSharp.Machine;

namespace VmmSharp.Cli.Commands;

/// <summary>
/// <c>vmm run --api-sock PATH</c> and <c>vmm run --config-file FILE [--no-api]</c>: a microVM configured and driven the
/// way Firecracker's is. With a configuration file the guest starts at once; with only a socket it waits for the API's
/// <c>InstanceStart</c>. The command ends when the guest does, with its exit status.
/// </summary>
internal static class MicroVmCommand
{
    public sealed record Arguments(
        string? ApiSocket,
        string? ConfigFile,
        string? MetricsPath,
        string Id,
        TimeSpan? Deadline,
        LogLevel? LogLevel,
        bool Stats)
    {
        /// <summary>How often a metrics line is written unasked (<c>--metrics-interval</c>).</summary>
        public TimeSpan MetricsInterval { get; init; } = MicroVm.DefaultMetricsInterval;
    }

    public static int Run(Arguments args)
    {
        using var vm = new MicroVm(args.LogLevel) { Deadline = args.Deadline, Id = args.Id, MetricsInterval = args.MetricsInterval };
        try
        {
            if (args.MetricsPath is { } metrics)
            {
                vm.SetMetrics(new MetricsConfig { MetricsPath = metrics });
            }
            if (args.ConfigFile is { } file)
            {
                Api.ConfigFile.Apply(file, vm);
            }
        }
        catch (ApiFault f)
        {
            Console.Error.WriteLine($"vmm: {f.Message}");
            return 1;
        }

        // SIGINT/SIGTERM end the run like the guest's end would: the socket is removed, the last metrics line written.
        var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.TrySetResult(); });
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.TrySetResult(); });

        IAsyncDisposable? api = args.ApiSocket is { } socket ? ApiLauncher.Start(socket, vm) : null;
        try
        {
            if (args.ConfigFile is not null)
            {
                try
                {
                    vm.Start();
                }
                catch (ApiFault f)
                {
                    Console.Error.WriteLine($"vmm: --config-file '{args.ConfigFile}': {f.Message}");
                    return 1;
                }
            }
            if (Task.WaitAny(vm.Finished, stop.Task) == 1)
            {
                Console.Error.WriteLine("vmm: stopped by a signal");
                vm.End();
                return 128 + 15;
            }
        }
        finally
        {
            api?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }

        MachineResult result = vm.Finished.Result;
        bool drained = vm.End();
        bool failed = result.Outcome is MachineOutcome.Failed or MachineOutcome.DeadlineExceeded;
        if (args.Stats)
        {
            long dropped = vm.Output?.DroppedBytes ?? 0;
            Summary.Print($"{(failed ? "error: " : "")}{result.Reason}; status {result.ExitStatus}", result.Elapsed, result.ExitCounts,
                dropped > 0 ? $"{dropped} bytes of console output dropped" : "microVM", result.EmulatedInstructions);
        }
        else if (failed)
        {
            Console.Error.WriteLine($"vmm: error: {result.Reason}; status {result.ExitStatus}");
        }
        if (!drained)
        {
            Console.Error.WriteLine("vmm: the guest's last output did not reach standard output in time (nobody is reading it); it is dropped");
        }
        return result.ExitStatus;
    }
}
