using BenchmarkDotNet.Attributes;
using VmmSharp.Buses;
using VmmSharp.Memory;

namespace VmmSharp.Benchmarks;

/// <summary>
/// The host-side work on a VM exit that does not need KVM: routing a port access through the I/O bus
/// and a typed guest-memory read. The memory diagnoser shows they allocate nothing.
/// </summary>
[MemoryDiagnoser]
public class HotPathBenchmarks : IDisposable
{
    private readonly IoBus _bus = new();
    private readonly GuestMemory _memory = new(new GuestRegionSpec(0, 1 << 20), new GuestRegionSpec(0x1_0000_0000, 1 << 20));
    private readonly byte[] _data = new byte[4];

    /// <summary>Registers 16 devices, as a PC has about that many port ranges.</summary>
    public HotPathBenchmarks()
    {
        for (int i = 0; i < 16; i++)
        {
            _bus.Register((ushort)(0x100 + (i * 0x40)), 8, new Sink());
        }
        _bus.Register(0x3f8, 8, new Sink());
    }

    /// <summary>A 1-byte write to a registered port.</summary>
    [Benchmark]
    public bool IoBusWrite() => _bus.Write(0x3f8, _data.AsSpan(0, 1));

    /// <summary>A 4-byte read from a port no device claims (all ones).</summary>
    [Benchmark]
    public bool IoBusUnhandledRead() => _bus.Read(0x9999, _data);

    /// <summary>A bounds-checked 8-byte read in the second region.</summary>
    [Benchmark]
    public ulong GuestMemoryRead() => _memory.Read<ulong>(0x1_0000_0100);

    /// <inheritdoc/>
    public void Dispose()
    {
        _memory.Dispose();
        GC.SuppressFinalize(this);
    }

    private sealed class Sink : IPioDevice
    {
        public void Read(ushort offset, Span<byte> data) => data.Clear();

        public void Write(ushort offset, ReadOnlySpan<byte> data)
        {
        }
    }
}
