using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using VmmSharp.Devices.Consoles;

namespace VmmSharp.Cli.Terminal;

/// <summary>
/// The VMM's standard input as a guest console's input. When it is a terminal it is put in raw mode (no echo, no line
/// editing, no signals from Ctrl-C, so every key reaches the guest) and QEMU's escape applies: Ctrl-A x ends the run,
/// Ctrl-A Ctrl-A types a Ctrl-A. A pipe or file is forwarded untouched until end of file.
/// </summary>
/// <remarks>
/// <para>The terminal stays in raw mode from construction to <see cref="Dispose"/> (across the runs of a rebooting
/// guest), and is also restored when the process exits or dies of an unhandled exception, so a crashed VMM does not
/// leave the user's shell in raw mode.</para>
/// <para>Each <see cref="Start"/> runs a reader thread until its session is disposed. The thread reaches the machine
/// only through the <see cref="IConsoleReceiver"/>, which the machine makes inert when the run ends, so a reader that is
/// slow to stop cannot touch a disposed machine.</para>
/// </remarks>
internal sealed unsafe class TerminalInput : IConsoleInput, IDisposable
{
    /// <summary>What the run's result says after Ctrl-A x.</summary>
    public const string QuitReason = "stopped by the user (Ctrl-A x)";

    private readonly SafeFileHandle _input;
    private readonly TerminalEscape _escape = new();
    private TerminalNative.Termios _saved;
    private int _restored;
    private volatile bool _endOfInput;

    /// <summary>Takes <paramref name="input"/> (not owned) as the console's input; a terminal goes into raw mode now.</summary>
    /// <exception cref="VmmException">The terminal could not be put in raw mode; the message carries the error.</exception>
    public TerminalInput(SafeFileHandle input)
    {
        ArgumentNullException.ThrowIfNull(input);
        _input = input;
        IsTerminal = TerminalNative.IsATty(input) == 1;
        if (IsTerminal)
        {
            EnterRawMode();
            AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
            AppDomain.CurrentDomain.UnhandledException += OnProcessExit;
        }
    }

    /// <summary>Whether the input is a terminal (so it is in raw mode and the escape applies).</summary>
    public bool IsTerminal { get; }

    /// <summary>The process's standard input (fd 0, which the process keeps open).</summary>
    public static TerminalInput StandardInput() => new(new SafeFileHandle(0, ownsHandle: false));

    /// <inheritdoc/>
    public IDisposable Start(IConsoleReceiver receiver)
    {
        ArgumentNullException.ThrowIfNull(receiver);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _restored) != 0, this);
        return new Session(this, receiver);
    }

    /// <summary>Restores the terminal's settings. Sessions still running keep reading but the escape no longer applies.</summary>
    public void Dispose()
    {
        Restore();
        if (IsTerminal)
        {
            AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
            AppDomain.CurrentDomain.UnhandledException -= OnProcessExit;
        }
    }

    private void EnterRawMode()
    {
        TerminalNative.Termios raw;
        fixed (TerminalNative.Termios* saved = &_saved)
        {
            if (TerminalNative.TcGetAttr(_input, saved) != 0)
            {
                throw new VmmException($"the terminal on standard input cannot be read (tcgetattr): {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
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
        if (TerminalNative.TcSetAttr(_input, TerminalNative.TCSANOW, &raw) != 0)
        {
            throw new VmmException($"the terminal on standard input cannot be put in raw mode (tcsetattr): {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }
    }

    private void Restore()
    {
        if (Interlocked.Exchange(ref _restored, 1) == 0 && IsTerminal)
        {
            fixed (TerminalNative.Termios* saved = &_saved)
            {
                // Best effort: on exit there is nobody left to tell if it fails.
                _ = TerminalNative.TcSetAttr(_input, TerminalNative.TCSANOW, saved);
            }
        }
    }

    private void OnProcessExit(object? sender, EventArgs e) => Restore();

    /// <summary>One run's reader: a thread that polls the input and a wake-up pipe, and feeds the receiver.</summary>
    private sealed class Session : IDisposable
    {
        private static readonly TimeSpan JoinTimeout = TimeSpan.FromSeconds(1);

        private readonly TerminalInput _owner;
        private readonly IConsoleReceiver _receiver;
        private readonly SafeFileHandle _wakeRead;
        private readonly SafeFileHandle _wakeWrite;
        private readonly Thread? _thread;
        private volatile bool _stopping;

        public Session(TerminalInput owner, IConsoleReceiver receiver)
        {
            _owner = owner;
            _receiver = receiver;
            // Dispose wakes the reader through this pipe, so it ends at once instead of after a poll timeout.
            int* fds = stackalloc int[2];
            if (TerminalNative.Pipe2(fds, TerminalNative.O_CLOEXEC) != 0)
            {
                throw new VmmException($"a pipe for the terminal reader cannot be made: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
            }
            _wakeRead = new SafeFileHandle(fds[0], ownsHandle: true);
            _wakeWrite = new SafeFileHandle(fds[1], ownsHandle: true);
            if (!owner._endOfInput)
            {
                // The reader holds both handles for as long as it runs, so Dispose may close them without waiting for it.
                bool inputRef = false, wakeRef = false;
                owner._input.DangerousAddRef(ref inputRef);
                _wakeRead.DangerousAddRef(ref wakeRef);
                _thread = new Thread(ReadLoop) { IsBackground = true, Name = "terminal input" };
                _thread.Start();
            }
        }

        public void Dispose()
        {
            if (_stopping)
            {
                return;
            }
            _stopping = true;
            byte one = 1;
            _ = TerminalNative.Write(_wakeWrite, &one, 1);
            // A reader still running holds references to the handles, so they close when it ends.
            _ = _thread?.Join(JoinTimeout);
            _wakeRead.Dispose();
            _wakeWrite.Dispose();
        }

        private void ReadLoop()
        {
            try
            {
                ReadUntilStopped((int)_owner._input.DangerousGetHandle(), (int)_wakeRead.DangerousGetHandle());
            }
            finally
            {
                _wakeRead.DangerousRelease();
                _owner._input.DangerousRelease();
            }
        }

        private void ReadUntilStopped(int inputFd, int wakeFd)
        {
            byte[] buffer = new byte[256];
            byte[] filtered = new byte[256];
            TerminalNative.PollFd* fds = stackalloc TerminalNative.PollFd[2];
            while (!_stopping)
            {
                fds[0] = new TerminalNative.PollFd { Fd = inputFd, Events = TerminalNative.POLLIN };
                fds[1] = new TerminalNative.PollFd { Fd = wakeFd, Events = TerminalNative.POLLIN };
                int ready = TerminalNative.Poll(fds, 2, -1);
                if (ready < 0 && Marshal.GetLastPInvokeError() == TerminalNative.EINTR)
                {
                    continue;
                }
                if (ready < 0 || _stopping || fds[1].ReturnedEvents != 0)
                {
                    return;
                }
                nint count;
                fixed (byte* p = buffer)
                {
                    count = TerminalNative.Read(_owner._input, p, (nuint)buffer.Length);
                }
                if (count < 0 && Marshal.GetLastPInvokeError() is TerminalNative.EINTR or TerminalNative.EAGAIN)
                {
                    continue;
                }
                if (count <= 0)
                {
                    _owner._endOfInput = true; // end of file (or an error): nothing more will come, this run or the next
                    return;
                }
                if (!_owner.IsTerminal)
                {
                    Deliver(buffer.AsSpan(0, (int)count), wakeFd);
                    continue;
                }
                int forwarded = _owner._escape.Process(buffer.AsSpan(0, (int)count), filtered);
                Deliver(filtered.AsSpan(0, forwarded), wakeFd);
                if (_owner._escape.QuitRequested)
                {
                    _owner.Restore();
                    _receiver.RequestStop(QuitReason);
                    return;
                }
            }
        }

        /// <summary>Offers the bytes until the guest has taken them all (its FIFO is small) or the session stops.</summary>
        private void Deliver(ReadOnlySpan<byte> bytes, int wakeFd)
        {
            TerminalNative.PollFd wake = default;
            while (!bytes.IsEmpty && !_stopping)
            {
                bytes = bytes[_receiver.Offer(bytes)..];
                if (!bytes.IsEmpty)
                {
                    // Wait a little for the guest to drain its FIFO, but wake at once for Dispose.
                    wake = new TerminalNative.PollFd { Fd = wakeFd, Events = TerminalNative.POLLIN };
                    _ = TerminalNative.Poll(&wake, 1, 2);
                }
            }
        }
    }
}
