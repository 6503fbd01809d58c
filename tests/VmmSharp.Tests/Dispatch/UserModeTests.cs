using VmmSharp.Dispatch;
using VmmSharp.Guests;
using VmmSharp.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Dispatch;

public class UserModeTests
{
    [Fact]
    public void Cpl3GuestWithIopl3UsesPortsDirectly()
    {
        using var run = GuestRun.Create(GuestMode.User64, a =>
        {
            a.mov(al, (byte)'u');
            a.@out(0xe9, al);
            a.ExitWith(5);
        });
        run.HandleConsoleAndExit();
        VcpuRunResult result = run.Run().AssertStopped();
        Assert.Equal(5, result.Status);
        Assert.Equal("u", run.Output.ToString());
    }

    [Fact]
    public void IretqToCpl3ThenPorts()
    {
        using var run = GuestRun.Create(GuestMode.Long64, a =>
        {
            var user = a.CreateLabel();
            a.push(0x23);
            a.push(0x70000);
            a.push(0x3202);
            a.push(0x2b);
            a.lea(rax, __[user]);
            a.push(rax);
            a.iretq();
            a.Label(ref user);
            a.mov(al, (byte)'u');
            a.@out(0xe9, al);
            a.ExitWith(5);
        });
        run.HandleConsoleAndExit();
        VcpuRunResult result = run.Run().AssertStopped();
        Assert.Equal(5, result.Status);
        Assert.Equal("u", run.Output.ToString());
    }
}
