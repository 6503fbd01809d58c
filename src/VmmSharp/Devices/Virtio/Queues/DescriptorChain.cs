namespace VmmSharp.Devices.Virtio.Queues;

/// <summary>
/// A descriptor chain taken from a queue: its head index and its buffers in order, device-readable ones first.
/// One instance is reused for every chain (no allocation per request); its capacity bounds the chain's length.
/// </summary>
public sealed class DescriptorChain
{
    private readonly ChainSegment[] _segments;

    /// <summary>Creates a chain that holds up to <paramref name="capacity"/> buffers.</summary>
    public DescriptorChain(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _segments = new ChainSegment[capacity];
    }

    /// <summary>The most buffers this chain can hold.</summary>
    public int Capacity => _segments.Length;

    /// <summary>The head descriptor's index: what goes back in the used ring.</summary>
    public ushort Head { get; private set; }

    /// <summary>How many buffers the chain has.</summary>
    public int Count { get; private set; }

    /// <summary>How many of them (the first ones) the device reads.</summary>
    public int ReadableCount { get; private set; }

    /// <summary>The bytes the device may read, summed over the readable buffers.</summary>
    public ulong ReadableLength { get; private set; }

    /// <summary>The bytes the device may write, summed over the writable buffers.</summary>
    public ulong WritableLength { get; private set; }

    /// <summary>The buffers, in chain order.</summary>
    public ReadOnlySpan<ChainSegment> Segments => _segments.AsSpan(0, Count);

    /// <summary>The buffers the device reads.</summary>
    public ReadOnlySpan<ChainSegment> Readable => _segments.AsSpan(0, ReadableCount);

    /// <summary>The buffers the device writes.</summary>
    public ReadOnlySpan<ChainSegment> Writable => _segments.AsSpan(ReadableCount, Count - ReadableCount);

    internal void Begin(ushort head)
    {
        Head = head;
        Count = 0;
        ReadableCount = 0;
        ReadableLength = 0;
        WritableLength = 0;
    }

    /// <summary>Appends a buffer; false when the chain is full or a readable buffer follows a writable one.</summary>
    internal bool TryAdd(ChainSegment segment)
    {
        if (Count == _segments.Length || (!segment.IsWriteOnly && ReadableCount != Count))
        {
            return false;
        }
        _segments[Count++] = segment;
        if (segment.IsWriteOnly)
        {
            WritableLength += segment.Length;
        }
        else
        {
            ReadableCount++;
            ReadableLength += segment.Length;
        }
        return true;
    }
}
