using VmmSharp.Dispatch;
using VmmSharp.Guests;
using VmmSharp.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Dispatch;

public class IoEventTests
{
    [Fact]
    public void RealModeGuestOutputsThroughAPortAndStartupSetsItsRegisters()
    {
        using var run = GuestRun.Create(GuestMode.Real16, a =>
        {
            a.mov(ax, bx); // BX comes from the Startup handler
            a.@out(0xe9, al);
            a.mov(al, ah);
            a.@out(0xe9, al);
            a.ExitWith(7);
        }, startup: s => s.Rbx = 'O' | ('K' << 8));
        run.HandleConsoleAndExit();

        VcpuRunResult result = run.Run();

        Assert.Equal(VcpuRunOutcome.Stopped, result.Outcome);
        Assert.Equal(7, result.Status);
        Assert.Equal("OK", run.Output.ToString());
    }

    [Fact]
    public void IoExitCarriesPortSizeDirectionAndData()
    {
        var seen = new List<string>();
        using var run = GuestRun.Create(GuestMode.Protected32, a =>
        {
            a.mov(dx, 0x3f8);
            a.mov(ax, 0xbeef);
            a.@out(dx, ax);           // 2-byte write
            a.@in(eax, dx);           // 4-byte read, answered by the handler
            a.@out(0x80, al);         // echo the low byte
            a.shr(eax, 24);
            a.@out(0x81, al);         // echo the high byte
            a.mov(esi, (uint)TinyGuestLayout.Data);
            a.mov(__dword_ptr[esi], 0x44332211);
            a.mov(ecx, 4);
            a.mov(dx, 0x90);
            a.rep.outsb();            // string write: count 4 (or 4 exits of count 1)
            a.ExitWith(0);
        });
        var stream = new List<byte>();
        Assert.True(run.Vcpu.Register(VcpuEvent.Io, Mtd.Qual, s =>
        {
            IoExit io = s.Io;
            if (io.Port == 0xf4)
            {
                s.Stop((int)io.Value, "exit");
                return;
            }
            if (io.Port == 0x90)
            {
                Assert.True(io.IsWrite);
                stream.AddRange(io.Data.ToArray());
                return;
            }
            seen.Add($"{io.Port:x}/{io.Size}/{(io.IsWrite ? "out" : "in")}/{io.Count}/{(io.IsWrite ? io.Value : 0):x}");
            if (!io.IsWrite)
            {
                io.Value = 0xcafe_f00d;
            }
        }));

        VcpuRunResult result = run.Run();

        Assert.Equal(VcpuRunOutcome.Stopped, result.Outcome);
        Assert.Equal(["3f8/2/out/1/beef", "3f8/4/in/1/0", "80/1/out/1/d", "81/1/out/1/ca"], seen);
        Assert.Equal(new byte[] { 0x11, 0x22, 0x33, 0x44 }, stream);
    }
}
