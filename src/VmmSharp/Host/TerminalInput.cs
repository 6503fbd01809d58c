using System.Runtime.InteropServices;
using VmmSharp.Interop;

namespace VmmSharp.Host;

/// <summary>
/// Feeds the VMM's standard input to a guest console. When stdin is a terminal it is put in raw mode (no echo, no
/// line editing, no signals from Ctrl-C, so every key reaches the guest) and QEMU's escape applies: Ctrl-A x quits,
/// Ctrl-A Ctrl-A types a Ctrl-A. When stdin is a pipe or file its bytes are forwarded untouched until end of file.
/// </summary>
/// <remarks>
/// The terminal's settings are restored on <see cref="Dispose"/>, and also when the process exits or dies of an
/// unhandled exception, so a crashed VMM does not leave the user's shell in raw mode.
/// </remarks>
public sealed unsafe class TerminalInput : IDisposable
{
    private readonly int _fd;
    private readonly int _wakeRead;
    private readonly int _wakeWrite;
    private readonly Action<ReadOnlySpan<byte>> _onInput;
    private readonly Action _onQuit;
    private readonly TerminalEscape _escape = new();
    private readonly Thread _thread;
    private TerminalNative.Termios _saved;
    private int _restored;
    private volatile bool _stopping;

    /// <summary>Starts reading <paramref name="fd"/> (stdin by default) on a background thread.</summary>
    /// <param name="onInput">Receives the bytes for the guest, on the reader thread.</param>
    /// <param name="onQuit">Called once, on the reader thread, when the user types Ctrl-A x.</param>
    /// <param name="fd">The file descriptor to read; 0 for stdin.</param>
    /// <exception cref="VmmException">The terminal could not be put in raw mode; the message carries errno.</exception>
    public TerminalInput(Action<ReadOnlySpan<byte>> onInput, Action onQuit, int fd = 0)
    {
        ArgumentNullException.ThrowIfNull(onInput);
        ArgumentNullException.ThrowIfNull(onQuit);
        _fd = fd;
        _onInput = onInput;
        _onQuit = onQuit;
        IsTerminal = TerminalNative.IsATty(fd) == 1;
        if (IsTerminal)
        {
            EnterRawMode();
            AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
            AppDomain.CurrentDomain.UnhandledException += OnProcessExit;
        }
        // Dispose wakes the reader through this pipe, so it ends at once instead of after a poll timeout.
        int* wake = stackalloc int[2];
        if (Libc.Pipe2(wake, Libc.O_CLOEXEC) != 0)
        {
            throw new VmmException($"pipe2 for the terminal reader failed: errno {Marshal.GetLastPInvokeError()}");
        }
        _wakeRead = wake[0];
        _wakeWrite = wake[1];
        _thread = new Thread(ReadLoop) { IsBackground = true, Name = "terminal input" };
        _thread.Start();
    }

    /// <summary>Whether the descriptor is a terminal (so it is in raw mode and the escape applies).</summary>
    public bool IsTerminal { get; }

    /// <summary>Stops reading and restores the terminal; the reader thread ends at once.</summary>
    public void Dispose()
    {
        _stopping = true;
        Restore();
        if (IsTerminal)
        {
            AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
            AppDomain.CurrentDomain.UnhandledException -= OnProcessExit;
        }
        byte one = 1;
        _ = Libc.Write(_wakeWrite, &one, 1);
        if (Thread.CurrentThread != _thread && _thread.Join(TimeSpan.FromSeconds(1)))
        {
            _ = Libc.Close(_wakeRead);
            _ = Libc.Close(_wakeWrite);
        }
    }

    private void EnterRawMode()
    {
        TerminalNative.Termios raw;
        fixed (TerminalNative.Termios* saved = &_saved)
        {
            if (TerminalNative.TcGetAttr(_fd, saved) != 0)
            {
                throw new VmmException($"tcgetattr on fd {_fd} failed: errno {Marshal.GetLastPInvokeError()}");
            }
            raw = *saved;
        }
        // The settings QEMU uses for a stdio console: raw input, but keep output processing so "\n" still returns the carriage.
        raw.InputFlags &= ~(TerminalNative.IGNBRK | TerminalNative.BRKINT | TerminalNative.PARMRK | TerminalNative.ISTRIP
            | TerminalNative.INLCR | TerminalNative.IGNCR | TerminalNative.ICRNL | TerminalNative.IXON);
        raw.OutputFlags |= TerminalNative.OPOST;
        raw.LocalFlags &= ~(TerminalNative.ECHO | TerminalNative.ECHONL | TerminalNative.ICANON | TerminalNative.ISIG | TerminalNative.IEXTEN);
        raw.ControlFlags = (raw.ControlFlags & ~(TerminalNative.CSIZE | TerminalNative.PARENB)) | TerminalNative.CS8;
        raw.ControlChars[TerminalNative.VMIN] = 1;
        raw.ControlChars[TerminalNative.VTIME] = 0;
        if (TerminalNative.TcSetAttr(_fd, TerminalNative.TCSANOW, &raw) != 0)
        {
            throw new VmmException($"tcsetattr (raw mode) on fd {_fd} failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    private void Restore()
    {
        if (IsTerminal && Interlocked.Exchange(ref _restored, 1) == 0)
        {
            fixed (TerminalNative.Termios* saved = &_saved)
            {
                // Best effort: on exit there is nobody left to tell if it fails.
                _ = TerminalNative.TcSetAttr(_fd, TerminalNative.TCSANOW, saved);
            }
        }
    }

    private void OnProcessExit(object? sender, EventArgs e) => Restore();

    private void ReadLoop()
    {
        byte[] buffer = new byte[256];
        byte[] filtered = new byte[256];
        Libc.PollFd* pollFds = stackalloc Libc.PollFd[2];
        while (!_stopping)
        {
            // Wait for input or for Dispose's wake-up byte.
            pollFds[0] = new Libc.PollFd { Fd = _fd, Events = Libc.POLLIN };
            pollFds[1] = new Libc.PollFd { Fd = _wakeRead, Events = Libc.POLLIN };
            int ready = Libc.Poll(pollFds, 2, -1);
            if (ready < 0 && Marshal.GetLastPInvokeError() == Libc.EINTR)
            {
                continue;
            }
            if (ready < 0 || _stopping || pollFds[1].ReturnedEvents != 0)
            {
                return;
            }
            nint count;
            fixed (byte* p = buffer)
            {
                count = Libc.Read(_fd, p, (nuint)buffer.Length);
            }
            if (count < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno is Libc.EINTR or Libc.EAGAIN)
                {
                    continue;
                }
                return;
            }
            if (count == 0 || _stopping)
            {
                return; // end of file: nothing more will come
            }
            if (!IsTerminal)
            {
                _onInput(buffer.AsSpan(0, (int)count));
                continue;
            }
            int forwarded = _escape.Process(buffer.AsSpan(0, (int)count), filtered);
            if (forwarded > 0)
            {
                _onInput(filtered.AsSpan(0, forwarded));
            }
            if (_escape.QuitRequested)
            {
                Restore();
                _onQuit();
                return;
            }
        }
    }
}
