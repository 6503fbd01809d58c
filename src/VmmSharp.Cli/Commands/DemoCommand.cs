using System.Diagnostics;
using VmmSharp.Cli.Demo;
using VmmSharp.Devices.Consoles;
using VmmSharp.Dispatch;
using VmmSharp.Guests;
using VmmSharp.Memory;
using VmmSharp.Vm;

namespace VmmSharp.Cli.Commands;

/// <summary><c>vmm run</c> with no kernel: the built-in demo guest.</summary>
internal static class DemoCommand
{
    public static int Run(TimeSpan deadline)
    {
        var clock = Stopwatch.StartNew();
        using var vm = VirtualMachine.Create(GuestMemory.WithRam(2 << 20));
        TinyGuest guest = DemoGuest.Load(vm.Memory);
        VcpuDispatcher vcpu = vm.AddVcpu();
        // The handler only queues the picture; the output's thread writes it, so a stalled stdout never holds the vCPU.
        using var output = ConsoleOutput.StandardOutput();
        vcpu.Register(VcpuEvent.Startup, TinyGuest.StartupMtd, s => guest.SetStartupState(s));
        vcpu.Register(VcpuEvent.Io, Mtd.Qual, s =>
        {
            IoExit io = s.Io;
            switch (io.Port)
            {
                case DemoGuest.ConsolePort when io.IsWrite:
                    _ = output.Write(io.Data);
                    break;
                case DemoGuest.ExitPort when io.IsWrite:
                    s.Stop((int)io.Value, "the guest wrote its exit status");
                    break;
                default:
                    s.Stop(70, $"the demo guest accessed port 0x{io.Port:x}, which it has no business with");
                    break;
            }
        });
        VcpuRunResult result = vm.Run(deadline);
        clock.Stop();
        _ = output.Flush(TimeSpan.FromSeconds(2));
        Summary.Print(result.Outcome switch
        {
            VcpuRunOutcome.Stopped => $"guest exited with status {result.Status} ({result.Reason})",
            VcpuRunOutcome.Cancelled => $"stopped: {result.Reason}",
            _ => $"error: {result.Reason}",
        }, clock.Elapsed, vm.ExitCounts());
        return result.Outcome == VcpuRunOutcome.Stopped ? result.Status : 1;
    }
}
