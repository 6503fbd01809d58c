using Microsoft.Win32.SafeHandles;
using VmmSharp.Host;
using Xunit;

namespace VmmSharp.Tests.Host;

// Host tests live here because this branch may only touch the Buses and Devices test folders.
public class TerminalInputTests
{
    private static byte[] Filter(TerminalEscape escape, params byte[] input)
    {
        byte[] output = new byte[input.Length];
        int n = escape.Process(input, output);
        return output[..n];
    }

    [Fact]
    public void Ordinary_bytes_pass_through_the_escape_filter()
    {
        Assert.Equal("ls\r"u8.ToArray(), Filter(new TerminalEscape(), "ls\r"u8.ToArray()));
    }

    [Fact]
    public void Ctrl_A_x_requests_quit_and_drops_what_follows()
    {
        var escape = new TerminalEscape();

        Assert.Equal("a"u8.ToArray(), Filter(escape, (byte)'a', 0x01, (byte)'x', (byte)'b'));
        Assert.True(escape.QuitRequested);
        Assert.Empty(Filter(escape, (byte)'c'));
    }

    [Fact]
    public void Ctrl_A_Ctrl_A_sends_one_Ctrl_A()
    {
        var escape = new TerminalEscape();

        Assert.Equal(new byte[] { 0x01 }, Filter(escape, 0x01, 0x01));
        Assert.False(escape.QuitRequested);
    }

    [Fact]
    public void Escape_split_across_reads_still_quits()
    {
        var escape = new TerminalEscape();

        Assert.Empty(Filter(escape, 0x01));
        Assert.Empty(Filter(escape, (byte)'x'));
        Assert.True(escape.QuitRequested);
    }

    [Fact]
    public void Ctrl_A_with_an_unknown_command_is_swallowed()
    {
        var escape = new TerminalEscape();

        Assert.Equal("z"u8.ToArray(), Filter(escape, 0x01, (byte)'q', (byte)'z'));
        Assert.False(escape.QuitRequested);
    }

    [Fact]
    public void Output_shorter_than_input_is_rejected()
    {
        Assert.Throws<ArgumentException>(() => new TerminalEscape().Process([1, 2], new byte[1]));
    }

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
            var received = new List<byte>();
            using var done = new ManualResetEventSlim();
            bool quit = false;

            void OnInput(ReadOnlySpan<byte> bytes)
            {
                lock (received)
                {
                    received.AddRange(bytes.ToArray());
                    if (received.Count == content.Length)
                    {
                        done.Set();
                    }
                }
            }

            using (var input = new TerminalInput(OnInput, () => quit = true, (int)handle.DangerousGetHandle()))
            {
                Assert.False(input.IsTerminal);
                Assert.True(done.Wait(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken));
            }

            Assert.Equal(content, received);
            Assert.False(quit);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
