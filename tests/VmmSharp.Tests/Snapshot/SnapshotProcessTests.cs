using System.Diagnostics;
using VmmSharp.Tests.Machine;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Snapshot;

/// <summary>
/// A guest paused, snapshotted and its process ended by <c>vmm run --snapshot-at</c>, then restored by
/// <c>vmm snapshot load</c> in a new process, finishes with exactly the result of an uninterrupted run.
/// </summary>
public sealed class SnapshotProcessTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vmmsharp-snap-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    internal sealed record Outcome(int Status, string Stdout, string Stderr);

    internal static Outcome Vmm(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "vmm.dll"));
        foreach (string a in args)
        {
            start.ArgumentList.Add(a);
        }
        using Process process = Process.Start(start)!;
        process.StandardInput.Close();
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(120)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"vmm {string.Join(' ', args)} did not end within 120 s; stdout so far: {stdout.Result}");
        }
        return new Outcome(process.ExitCode, stdout.Result, stderr.Result);
    }

    private static string Result(string stdout) => stdout.Trim('.', '\n', '\r');

    [Fact]
    public void AGuestRestoredInANewProcessFinishesWithTheUninterruptedResult()
    {
        KvmRequirement.Ensure();
        string kernel = Path.Combine(_dir, "xorshift");
        File.WriteAllBytes(kernel, SnapshotGuests.XorshiftCounter(1UL << 31));
        string state = Path.Combine(_dir, "state"), memory = Path.Combine(_dir, "mem");

        Outcome whole = Vmm("run", "--kernel", kernel, "--mem", "64M", "--timeout", "100");
        Assert.True(whole.Status == 1, $"status {whole.Status}: {whole.Stderr}");
        string expected = Result(whole.Stdout);
        Assert.Matches("^[0-9a-f]{16}$", expected);

        Outcome first = Vmm("run", "--kernel", kernel, "--mem", "64M", "--timeout", "100", "--snapshot-at", "1", "--snapshot", state, "--snapshot-mem", memory);
        Assert.True(first.Status == 0, $"status {first.Status}: {first.Stderr}");
        Assert.Contains("snapshot written", first.Stderr, StringComparison.Ordinal);
        Assert.DoesNotMatch("[0-9a-f]{16}", first.Stdout); // paused before the end
        Assert.True(new FileInfo(memory).Length == 64 << 20);

        Outcome second = Vmm("snapshot", "load", "--snapshot", state, "--mem", memory, "--timeout", "100", "--stats");
        Assert.True(second.Status == 1, $"status {second.Status}: {second.Stderr}");
        Assert.True(expected == Result(second.Stdout), $"restored run printed '{second.Stdout}'; {second.Stderr}");
        Assert.Contains("restored in", second.Stderr, StringComparison.Ordinal);
        // The dots of both halves add up to those of the whole run: no work was lost or done twice.
        Assert.Equal(whole.Stdout.Count(c => c == '.'), first.Stdout.Count(c => c == '.') + second.Stdout.Count(c => c == '.'));
    }
}
