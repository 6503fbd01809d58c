using VmmSharp.Devices.Consoles;

namespace VmmSharp.Tests.Cli.Terminal;

/// <summary>A console receiver that records what it was offered and asked; it takes everything unless told otherwise.</summary>
internal sealed class RecordingReceiver : IConsoleReceiver
{
    private readonly Lock _lock = new();
    private readonly List<byte> _received = [];
    private readonly List<string> _stops = [];

    /// <summary>Whether offers are taken; false models a guest whose FIFO stays full.</summary>
    public bool Takes { get; set; } = true;

    public int Offers { get; private set; }

    public byte[] Received
    {
        get
        {
            lock (_lock)
            {
                return [.. _received];
            }
        }
    }

    public IReadOnlyList<string> Stops
    {
        get
        {
            lock (_lock)
            {
                return [.. _stops];
            }
        }
    }

    public int Offer(ReadOnlySpan<byte> input)
    {
        lock (_lock)
        {
            Offers++;
            if (!Takes)
            {
                return 0;
            }
            _received.AddRange(input.ToArray());
            return input.Length;
        }
    }

    public void RequestStop(string reason)
    {
        lock (_lock)
        {
            _stops.Add(reason);
        }
    }

    /// <summary>Waits until <paramref name="condition"/> holds, for at most 5 s.</summary>
    public bool WaitFor(Func<RecordingReceiver, bool> condition)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!condition(this))
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(5))
            {
                return false;
            }
            Thread.Sleep(5);
        }
        return true;
    }
}
