using VmmSharp.Cli.Terminal;

namespace VmmSharp.Tests.Cli.Terminal;

public class TerminalEscapeTests
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
}
