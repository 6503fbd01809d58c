using System.Text;
using VmmSharp.Devices.Consoles;
using VmmSharp.Machine;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Machine;

/// <summary>Runs a <see cref="PcMachine"/> with its serial output captured, and helpers to assert on it.</summary>
internal sealed class MachineRun
{
    public static readonly byte[] ModuleBytes = Encoding.ASCII.GetBytes("Hello module!\nsecond line of the module\n");

    private MachineRun(MachineResult result, string output, PcMachine machine)
    {
        Result = result;
        Output = output;
        Boot = machine.Boot;
        Lines = output.Replace("\r", "", StringComparison.Ordinal).Split('\n');
    }

    public MachineResult Result { get; }

    public string Output { get; }

    public string[] Lines { get; }

    public VmmSharp.Boot.BootResult Boot { get; }

    /// <summary>Builds and runs the machine; <paramref name="configure"/> adjusts the options (serial output and deadline are set here).</summary>
    /// <param name="options">The machine; its serial output and deadline are set here.</param>
    /// <param name="deadline">The run's deadline.</param>
    /// <param name="stopWhen">Ends the run early (status 0, outcome Stopped) once the output so far satisfies it; checked at each line's end.</param>
    /// <param name="afterRun">Looks at the machine after the run, before it is disposed.</param>
    /// <param name="beforeRun">Gets the machine once it is built, before it runs (to stop it from another thread, say).</param>
    /// <param name="onLine">Called with the machine and the output so far at each line's end, on the thread that wrote it (keep it short).</param>
    public static MachineRun Start(MachineOptions options, TimeSpan deadline, Func<string, bool>? stopWhen = null, Action<PcMachine>? afterRun = null,
        Action<PcMachine, string>? onLine = null, Action<PcMachine>? beforeRun = null)
    {
        var serial = new WatchedStream();
        using var output = new ConsoleOutput(serial);
        using var machine = new PcMachine(options with { Console = new HostConsole(output), Deadline = deadline });
        if (stopWhen is not null || onLine is not null)
        {
            serial.OnLine = text =>
            {
                onLine?.Invoke(machine, text);
                if (stopWhen?.Invoke(text) == true)
                {
                    machine.RequestStop(0, "the test saw what it waited for");
                }
            };
        }
        beforeRun?.Invoke(machine);
        MachineResult result = machine.Run();
        Assert.True(output.Flush(TimeSpan.FromSeconds(10)), "the guest's output did not drain");
        afterRun?.Invoke(machine);
        string text = serial.Text;
        TestContext.Current.SendDiagnosticMessage(
            $"{Path.GetFileName(options.KernelPath)}: {result.Outcome}, status {result.ExitStatus}, {result.Elapsed.TotalMilliseconds:0} ms, " +
            $"exits {string.Join(", ", result.ExitCounts.Select(kv => $"{kv.Key}={kv.Value}"))}");
        return new MachineRun(result, text, machine);
    }

    /// <summary>What a failed assertion shows: the result and everything the guest printed.</summary>
    public string Describe() => $"{Result.Outcome}, status {Result.ExitStatus}: {Result.Reason}\n--- serial output ---\n{Output}\n---";

    public void AssertLine(string expected)
        => Assert.True(Lines.Contains(expected), $"expected the line \"{expected}\"\n{Describe()}");

    /// <summary>Asserts a line that starts with <paramref name="prefix"/>, after the kernel's <c>[   1.234567] </c> timestamp if it has one.</summary>
    public void AssertLineStartsWith(string prefix)
        => Assert.True(Lines.Any(l => WithoutPrintkTime(l).StartsWith(prefix, StringComparison.Ordinal)), $"expected a line starting \"{prefix}\"\n{Describe()}");

    private static string WithoutPrintkTime(string line)
    {
        int end = line.StartsWith('[') ? line.IndexOf("] ", StringComparison.Ordinal) : -1;
        return end > 0 ? line[(end + 2)..] : line;
    }

    public void AssertNoFailLines()
        => Assert.False(Lines.Any(l => l.StartsWith("FAIL", StringComparison.Ordinal)), $"the guest reported a failed self-check\n{Describe()}");

    public void AssertDone()
    {
        AssertNoFailLines();
        AssertLine("DONE");
        Assert.True(Result.Outcome == MachineOutcome.DebugExit && Result.ExitStatus == 1, $"expected debug-exit status 1\n{Describe()}");
    }

    /// <summary>FNV-1a 32, as the test guests compute their <c>sum=</c>.</summary>
    public static uint Fnv1a(ReadOnlySpan<byte> bytes)
    {
        uint hash = 0x811c9dc5;
        foreach (byte b in bytes)
        {
            hash ^= b;
            hash *= 0x01000193;
        }
        return hash;
    }

    /// <summary>The guests' <c>first=</c>: the first min(16, size) bytes, non-printable ones as '.'.</summary>
    public static string First(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder();
        foreach (byte b in bytes[..Math.Min(16, bytes.Length)])
        {
            sb.Append(b is >= 0x20 and < 0x7f ? (char)b : '.');
        }
        return sb.ToString();
    }

    /// <summary>Writes <see cref="ModuleBytes"/> to a fresh temporary file and returns its path.</summary>
    public static string WriteModule()
    {
        string path = Path.Combine(Path.GetTempPath(), $"vmmsharp-mod-{Guid.NewGuid():N}.txt");
        File.WriteAllBytes(path, ModuleBytes);
        return path;
    }

    /// <summary>Collects what the guest prints; calls <see cref="OnLine"/> with everything so far at each newline.</summary>
    private sealed class WatchedStream : WriteOnlyStream
    {
        private readonly Lock _lock = new();
        private readonly StringBuilder _text = new();

        public Action<string>? OnLine { get; set; }

        public string Text
        {
            get
            {
                lock (_lock)
                {
                    return _text.ToString();
                }
            }
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            string? snapshot = null;
            lock (_lock)
            {
                foreach (byte b in buffer)
                {
                    _text.Append((char)b);
                }
                if (OnLine is not null && buffer.Contains((byte)'\n'))
                {
                    snapshot = _text.ToString();
                }
            }
            if (snapshot is not null)
            {
                OnLine?.Invoke(snapshot);
            }
        }
    }
}
