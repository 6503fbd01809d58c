using System.Text;
using VmmSharp.Dispatch;
using VmmSharp.Guests;
using VmmSharp.Memory;
using VmmSharp.Tests.Support;
using VmmSharp.Vm;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests;

/// <summary>The README's library example, kept compiling and working (its Console.Write goes to a buffer here).</summary>
public class ReadmeExampleTests
{
    [Fact]
    public void TheReadmeExampleRunsAsShown()
    {
        KvmRequirement.Ensure();
        var console = new StringBuilder();

        TinyGuest guest = TinyGuest.Assemble(GuestMode.User64, a =>
        {
            a.mov(al, (byte)'h'); a.@out(0xe9, al);
            a.mov(al, (byte)'i'); a.@out(0xe9, al);
            a.mov(al, 0); a.@out(0xf4, al);
        });
        using var vm = VirtualMachine.Create(GuestMemory.WithRam(2 << 20));
        guest.Load(vm.Memory);
        VcpuDispatcher vcpu = vm.AddVcpu();
        vcpu.Register(VcpuEvent.Startup, TinyGuest.StartupMtd, s => guest.SetStartupState(s));
        vcpu.Register(VcpuEvent.Io, Mtd.Qual, s =>           // QUAL: the exit itself, no register transfer
        {
            if (s.Io.Port == 0xe9) console.Append((char)s.Io.Value);
            else s.Stop((int)s.Io.Value, "guest exit");
        });
        VcpuRunResult result = vm.Run(TimeSpan.FromSeconds(5));

        Assert.Equal(VcpuRunOutcome.Stopped, result.Outcome);
        Assert.Equal(0, result.Status);
        Assert.Equal("hi", console.ToString());
    }
}
