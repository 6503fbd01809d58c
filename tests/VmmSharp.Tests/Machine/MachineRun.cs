using System.Text;
using VmmSharp.Machine;

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
    public static MachineRun Start(MachineOptions options, TimeSpan deadline)
    {
        var serial = new MemoryStream();
        using var machine = new PcMachine(options with { SerialOutput = serial, Deadline = deadline });
        MachineResult result = machine.Run();
        string output = Encoding.ASCII.GetString(serial.ToArray());
        TestContext.Current.SendDiagnosticMessage(
            $"{Path.GetFileName(options.KernelPath)}: {result.Outcome}, status {result.ExitStatus}, {result.Elapsed.TotalMilliseconds:0} ms, " +
            $"exits {string.Join(", ", result.ExitCounts.Select(kv => $"{kv.Key}={kv.Value}"))}");
        return new MachineRun(result, output, machine);
    }

    /// <summary>What a failed assertion shows: the result and everything the guest printed.</summary>
    public string Describe() => $"{Result.Outcome}, status {Result.ExitStatus}: {Result.Reason}\n--- serial output ---\n{Output}\n---";

    public void AssertLine(string expected)
        => Assert.True(Lines.Contains(expected), $"expected the line \"{expected}\"\n{Describe()}");

    public void AssertLineStartsWith(string prefix)
        => Assert.True(Lines.Any(l => l.StartsWith(prefix, StringComparison.Ordinal)), $"expected a line starting \"{prefix}\"\n{Describe()}");

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
}
