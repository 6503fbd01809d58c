using System.Diagnostics;
using System.IO.Pipes;
using Microsoft.Win32.SafeHandles;
using VmmSharp.Cli.Terminal;

namespace VmmSharp.Tests.Cli.Terminal;

public class TerminalInputTests
{
    private const uint Icanon = 0x2, Echo = 0x8, Isig = 0x1;

    [Fact]
    public unsafe void Termios_matches_the_60_byte_glibc_layout()
    {
        Assert.Equal(60, sizeof(TerminalNative.Termios));
    }

    [Fact]
    public void Non_terminal_input_is_forwarded_untouched_until_end_of_file()
    {
        string path = Path.GetTempFileName();
        try
        {
            byte[] content = [(byte)'h', 0x01, (byte)'x', (byte)'i'];
            File.WriteAllBytes(path, content);
            using SafeFileHandle handle = File.OpenHandle(path);
            var receiver = new RecordingReceiver();
            using var input = new TerminalInput(handle);
            using (input.Start(receiver))
            {
                Assert.False(input.IsTerminal);
                Assert.True(receiver.WaitFor(r => r.Received.Length == content.Length), "the file's bytes did not arrive");
            }

            Assert.Equal(content, receiver.Received);
            Assert.Empty(receiver.Stops);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Input_arriving_after_the_session_ended_never_reaches_its_receiver()
    {
        using var pipe = new AnonymousPipeServerStream(PipeDirection.Out);
        using var readEnd = new SafeFileHandle(pipe.ClientSafePipeHandle.DangerousGetHandle(), ownsHandle: false);
        var receiver = new RecordingReceiver();
        using var input = new TerminalInput(readEnd);

        input.Start(receiver).Dispose();
        pipe.Write("late"u8);
        pipe.Flush();
        Thread.Sleep(200);

        Assert.Equal(0, receiver.Offers);
    }

    [Fact]
    public void A_session_stops_promptly_while_the_guest_takes_nothing()
    {
        using var pipe = new AnonymousPipeServerStream(PipeDirection.Out);
        using var readEnd = new SafeFileHandle(pipe.ClientSafePipeHandle.DangerousGetHandle(), ownsHandle: false);
        var receiver = new RecordingReceiver { Takes = false };
        using var input = new TerminalInput(readEnd);
        IDisposable session = input.Start(receiver);
        pipe.Write("stuck"u8);
        pipe.Flush();
        Assert.True(receiver.WaitFor(r => r.Offers > 2), "the reader did not offer the bytes again");

        var clock = Stopwatch.StartNew();
        session.Dispose();
        clock.Stop();
        int offersAtStop = receiver.Offers;
        Thread.Sleep(100);

        Assert.True(clock.Elapsed < TimeSpan.FromMilliseconds(900), $"Dispose took {clock.Elapsed.TotalMilliseconds:0} ms");
        Assert.Equal(offersAtStop, receiver.Offers);
    }

    [Fact]
    public void A_terminal_is_raw_while_the_input_lives_and_restored_after()
    {
        using var pty = Pty.Open();
        uint before = pty.LocalFlags();
        Assert.NotEqual(0u, before & Icanon);

        using (var input = new TerminalInput(pty.Terminal))
        {
            Assert.True(input.IsTerminal);
            Assert.Equal(0u, pty.LocalFlags() & (Icanon | Echo | Isig));
        }

        Assert.Equal(before, pty.LocalFlags());
    }

    [Fact]
    public void On_a_terminal_keys_arrive_without_a_newline_and_Ctrl_A_x_asks_to_stop()
    {
        using var pty = Pty.Open();
        var receiver = new RecordingReceiver();
        using var input = new TerminalInput(pty.Terminal);
        using IDisposable session = input.Start(receiver);

        pty.Type((byte)'l', (byte)'s');
        Assert.True(receiver.WaitFor(r => r.Received.Length == 2), "raw keys did not arrive");
        pty.Type(0x01, (byte)'x', (byte)'z');

        Assert.True(receiver.WaitFor(r => r.Stops.Count == 1), "Ctrl-A x did not ask to stop");
        Assert.Equal(TerminalInput.QuitReason, receiver.Stops[0]);
        Assert.Equal("ls"u8.ToArray(), receiver.Received);
    }
}
