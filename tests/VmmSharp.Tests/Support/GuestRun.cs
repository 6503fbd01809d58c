using System.Text;
using Iced.Intel;
using VmmSharp.Dispatch;
using VmmSharp.Guests;
using VmmSharp.Memory;
using VmmSharp.Vm;

namespace VmmSharp.Tests.Support;

/// <summary>A real VM running one tiny guest on /dev/kvm, with a deadline on every run.</summary>
internal sealed class GuestRun : IDisposable
{
    public static readonly TimeSpan DefaultDeadline = TimeSpan.FromSeconds(20);

    private GuestRun(VirtualMachine vm, TinyGuest guest)
    {
        Vm = vm;
        Guest = guest;
    }

    public VirtualMachine Vm { get; }

    public TinyGuest Guest { get; }

    public VcpuDispatcher Vcpu => Vm.Vcpus[0];

    public StringBuilder Output { get; } = new();

    /// <summary>Creates a VM with one vCPU whose Startup handler enters <paramref name="mode"/> at the code.</summary>
    public static GuestRun Create(GuestMode mode, Action<Assembler> program, int vcpus = 1, bool irqchip = false,
        Mtd extraStartupMtd = Mtd.None, Action<VcpuState>? startup = null)
    {
        KvmRequirement.Ensure();
        TinyGuest guest = TinyGuest.Assemble(mode, program);
        var vm = VirtualMachine.Create(GuestMemory.WithRam(2 << 20), irqchip);
        var run = new GuestRun(vm, guest);
        try
        {
            guest.Load(vm.Memory);
            vm.CpuCount = vcpus;
            for (int i = 0; i < vcpus; i++)
            {
                VcpuDispatcher d = vm.AddVcpu();
                Assert.True(d.Register(VcpuEvent.Startup, TinyGuest.StartupMtd | extraStartupMtd, s =>
                {
                    guest.SetStartupState(s, TinyGuestLayout.StackTop - (ulong)(s.Id.Value * 0x4000));
                    startup?.Invoke(s);
                }));
            }
            return run;
        }
        catch
        {
            run.Dispose();
            throw;
        }
    }

    /// <summary>Port 0xe9 prints, port 0xf4 stops the vCPU with the value as status (as the guests here use them).</summary>
    public void HandleConsoleAndExit(VcpuDispatcher? vcpu = null)
    {
        Assert.True((vcpu ?? Vcpu).Register(VcpuEvent.Io, Mtd.Qual, s =>
        {
            IoExit io = s.Io;
            if (io.Port == 0xe9 && io.IsWrite)
            {
                lock (Output)
                {
                    Output.Append((char)io.Value);
                }
            }
            else if (io.Port == 0xf4 && io.IsWrite)
            {
                s.Stop((int)io.Value, "guest wrote to 0xf4");
            }
            else
            {
                throw new InvalidOperationException($"unexpected port access 0x{io.Port:x}");
            }
        }));
    }

    public VcpuRunResult Run(TimeSpan? deadline = null) => Vm.Run(deadline ?? DefaultDeadline);

    public void Dispose() => Vm.Dispose();
}
