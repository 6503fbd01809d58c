using System.Diagnostics;
using System.Globalization;

namespace VmmSharp.Cli.Bench;

/// <summary>
/// Times the tests of the virtio-bench guest (tests/guests/virtio-bench) from its output lines as they arrive:
/// "BENCH &lt;test&gt; begin" starts a test's clock, "BENCH &lt;test&gt; end count=N errors=E" stops it.
/// </summary>
internal sealed class GuestPhases
{
    private readonly Dictionary<string, long> _begun = [];
    private readonly List<string> _failures = [];
    private readonly Action<string>? _onLine;

    /// <summary>Collects phases; <paramref name="onLine"/> sees every line too (e.g. to start a sender on "ready").</summary>
    public GuestPhases(Action<string>? onLine = null) => _onLine = onLine;

    /// <summary>One timed test.</summary>
    /// <param name="Name">The test's name, e.g. seqread.</param>
    /// <param name="Count">Requests (or frames) it completed.</param>
    /// <param name="Errors">Requests the device answered with an error.</param>
    /// <param name="Seconds">From the begin line to the end line.</param>
    public sealed record Phase(string Name, long Count, long Errors, double Seconds)
    {
        /// <summary>Requests per second.</summary>
        public double Rate => Count / Seconds;
    }

    /// <summary>The tests in the order they ended.</summary>
    public List<Phase> Phases { get; } = [];

    /// <summary>Whether the guest said "BENCH done".</summary>
    public bool Done { get; private set; }

    /// <summary>Lines the guest printed starting with FAIL, and the VMM's own error lines.</summary>
    public IReadOnlyList<string> Failures => _failures;

    /// <summary>Feeds one line, read at <paramref name="timestamp"/> (<see cref="Stopwatch.GetTimestamp"/>).</summary>
    public void OnLine(string line, long timestamp)
    {
        _onLine?.Invoke(line);
        if (line.StartsWith("FAIL", StringComparison.Ordinal) || line.StartsWith("vmm: error", StringComparison.Ordinal)
            || line.StartsWith("qemu-system", StringComparison.Ordinal))
        {
            _failures.Add(line);
            return;
        }
        string[] w = line.Split(' ');
        if (w.Length >= 2 && w[0] == "BENCH" && w[1] == "done")
        {
            Done = true;
        }
        if (w.Length < 3 || w[0] != "BENCH")
        {
            return;
        }
        if (w[2] == "begin")
        {
            _begun[w[1]] = timestamp;
        }
        else if (w[2] == "end" && w.Length >= 5 && _begun.TryGetValue(w[1], out long begun))
        {
            Phases.Add(new Phase(w[1], Value(w[3], "count="), Value(w[4], "errors="), Stopwatch.GetElapsedTime(begun, timestamp).TotalSeconds));
        }
    }

    /// <summary>Throws with the guest's output unless it finished cleanly with no failed request.</summary>
    public void Check(string who, ChildProcess.Result r)
    {
        if (!Done || _failures.Count > 0 || Phases.Any(p => p.Errors != 0 || p.Count == 0))
        {
            string tail = string.Join(" | ", r.Output.Trim().Split('\n').TakeLast(6));
            throw new VmmException($"{who}: the benchmark guest did not finish cleanly (exit status {r.ExitStatus}): {tail}");
        }
    }

    private static long Value(string word, string key) =>
        word.StartsWith(key, StringComparison.Ordinal) ? long.Parse(word[key.Length..], CultureInfo.InvariantCulture) : 0;
}
