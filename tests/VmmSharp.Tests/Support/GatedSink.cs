namespace VmmSharp.Tests.Support;

/// <summary>
/// A console sink that blocks every write until the gate opens: a stalled stdout pipe. Never opened, it blocks forever;
/// dispose it at the end of a test to let a writer thread go.
/// </summary>
internal sealed class GatedSink : WriteOnlyStream
{
    private readonly ManualResetEventSlim _gate = new(false);
    private readonly MemoryStream _written = new();
    private int _blockedWrites;

    public GatedSink(bool open = false)
    {
        if (open)
        {
            _gate.Set();
        }
    }

    /// <summary>How many writes are waiting at the gate (0 or 1: one writer thread).</summary>
    public int BlockedWrites => Volatile.Read(ref _blockedWrites);

    public byte[] Written
    {
        get
        {
            lock (_written)
            {
                return _written.ToArray();
            }
        }
    }

    public void Open() => _gate.Set();

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        Interlocked.Increment(ref _blockedWrites);
        _gate.Wait();
        Interlocked.Decrement(ref _blockedWrites);
        lock (_written)
        {
            _written.Write(buffer);
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _gate.Set(); // release a writer still waiting, so no thread outlives the test blocked
        }
        base.Dispose(disposing);
    }
}
