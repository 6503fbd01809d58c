namespace VmmSharp.Cli.Terminal;

/// <summary>
/// QEMU's console escape, as a pure filter over typed bytes: Ctrl-A then <c>x</c> asks to quit, Ctrl-A twice sends
/// one Ctrl-A to the guest, and Ctrl-A followed by anything else is swallowed, as QEMU does for unknown escapes.
/// </summary>
/// <remarks>The escape may straddle calls: a Ctrl-A at the end of one chunk pairs with the first byte of the next.</remarks>
internal sealed class TerminalEscape
{
    /// <summary>Ctrl-A, the escape byte.</summary>
    public const byte EscapeByte = 0x01;

    private bool _escaped;

    /// <summary>Whether the user typed Ctrl-A x; once set, all further input is dropped.</summary>
    public bool QuitRequested { get; private set; }

    /// <summary>Filters <paramref name="input"/> into <paramref name="output"/>, removing escape sequences.</summary>
    /// <param name="input">The bytes typed.</param>
    /// <param name="output">Receives the bytes for the guest; at least as long as <paramref name="input"/>.</param>
    /// <returns>How many bytes were written to <paramref name="output"/>.</returns>
    /// <exception cref="ArgumentException"><paramref name="output"/> is shorter than <paramref name="input"/>.</exception>
    public int Process(ReadOnlySpan<byte> input, Span<byte> output)
    {
        if (output.Length < input.Length)
        {
            throw new ArgumentException($"output of {output.Length} bytes is shorter than the input of {input.Length}", nameof(output));
        }
        int written = 0;
        foreach (byte b in input)
        {
            if (QuitRequested)
            {
                break;
            }
            if (_escaped)
            {
                _escaped = false;
                if (b == EscapeByte)
                {
                    output[written++] = EscapeByte;
                }
                else if (b is (byte)'x' or (byte)'X')
                {
                    QuitRequested = true;
                }
            }
            else if (b == EscapeByte)
            {
                _escaped = true;
            }
            else
            {
                output[written++] = b;
            }
        }
        return written;
    }
}
