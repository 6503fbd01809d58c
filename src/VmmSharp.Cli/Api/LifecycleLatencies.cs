namespace VmmSharp.Cli.Api;

/// <summary>How long the last of each lifecycle operation took (Firecracker's <c>latencies_us.pause_vm</c>, <c>resume_vm</c>, …).</summary>
internal sealed class LifecycleLatencies
{
    private readonly Lock _lock = new();
    private readonly SortedDictionary<string, long> _last = new(StringComparer.Ordinal);

    public void Record(string operation, TimeSpan elapsed)
    {
        lock (_lock)
        {
            _last[operation] = (long)elapsed.TotalMicroseconds;
        }
    }

    public KeyValuePair<string, long>[] Last()
    {
        lock (_lock)
        {
            return [.. _last];
        }
    }
}
