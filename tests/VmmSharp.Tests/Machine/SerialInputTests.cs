using System.Text;
using Iced.Intel;
using VmmSharp.Machine;
using VmmSharp.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Machine;

/// <summary>Bytes typed into COM1 reach the guest's 8250 driver.</summary>
public class SerialInputTests
{
    /// <summary>A kernel that polls COM1, echoes each byte it receives, and debug-exits (status 1) on '!'.</summary>
    public static byte[] EchoKernel() => GuestImages.BzImageRunning(a =>
    {
        Label next = a.CreateLabel(), wait = a.CreateLabel(), done = a.CreateLabel();
        a.Label(ref next);
        a.mov(dx, 0x3fd);        // LSR
        a.Label(ref wait);
        a.@in(al, dx);
        a.test(al, 1);           // data ready
        a.jz(wait);
        a.mov(dx, 0x3f8);
        a.@in(al, dx);           // RBR
        a.cmp(al, (byte)'!');
        a.je(done);
        a.@out(dx, al);          // THR: echo
        a.jmp(next);
        a.Label(ref done);
        a.mov(al, 0);
        a.@out(0xf4, al);
        a.hlt();
    });

    [Fact]
    public void InputQueuedOnCom1IsReadByTheGuest()
    {
        KvmRequirement.Ensure();
        string path = GuestImages.Write(EchoKernel(), "echo");
        try
        {
            using var output = new CapturedConsole();
            MachineResult result = MachineRunner.Run(
                new MachineOptions(path) { Console = output.Console, Deadline = TimeSpan.FromSeconds(30) },
                m => Assert.Equal(6, m.Serial.EnqueueInput("hello!"u8)));

            Assert.True(result.Outcome == MachineOutcome.DebugExit, result.Reason);
            Assert.Equal(1, result.ExitStatus);
            Assert.Equal("hello", output.Text);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
