using System.Diagnostics;
using VmmSharp.Devices.Consoles;
using VmmSharp.Devices.Virtio;
using VmmSharp.Devices.Virtio.Console;
using VmmSharp.Devices.Virtio.Mmio;
using VmmSharp.Memory;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Devices.Virtio;

/// <summary>
/// What a guest sees of virtio-console when its host console falls behind: its transmit chains stay in the ring (no
/// byte dropped) until the console drains, then they go out in order and come back used, with an interrupt.
/// </summary>
public sealed class VirtioConsoleBackPressureTests : IDisposable
{
    private const ulong RxDesc = 0x5000, RxAvail = 0x6000, RxUsed = 0x7000;
    private const int Chains = 8, ChainBytes = 200; // 1600 bytes into a 256-byte console buffer
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private readonly GuestMemory _memory = GuestMemory.WithRam(1 << 20);
    private readonly GatedSink _sink = new();
    private readonly ConsoleOutput _output;
    private readonly VirtioConsole _console;
    private readonly VirtioMmioTransport _transport;
    private readonly TestRing _tx;
    private readonly MmioDriver _driver;
    private readonly byte[] _expected = new byte[Chains * ChainBytes];

    public VirtioConsoleBackPressureTests()
    {
        _output = new ConsoleOutput(_sink, ConsoleOutput.SpaceThreshold);
        _console = new VirtioConsole(_output);
        _transport = new VirtioMmioTransport(_console, _memory, 0xd000_0000, new RecordingIrqLine());
        var driver = _driver = new MmioDriver(_transport);
        Assert.True(driver.Negotiate(VirtioFeatures.Common));
        driver.SetUpQueue(0, 16, RxDesc, RxAvail, RxUsed);
        driver.SetUpQueue(1, 16, TestRing.Desc, TestRing.Avail, TestRing.Used);
        driver.DriverOk();
        _tx = new TestRing(_memory, _console.Queues[1], activate: false);
        for (int i = 0; i < _expected.Length; i++)
        {
            _expected[i] = (byte)('a' + (i % 26));
        }
        _memory.Write(TestRing.Data, _expected);
        for (int i = 0; i < Chains; i++)
        {
            _tx.SetDescriptor(i, TestRing.Data + (ulong)(i * ChainBytes), ChainBytes);
        }
    }

    public void Dispose()
    {
        _transport.Dispose();
        _console.Dispose();
        _sink.Dispose();
        _output.Dispose();
        _memory.Dispose();
    }

    private void OfferAll()
    {
        for (ushort i = 0; i < Chains; i++)
        {
            _tx.Offer(i);
        }
        _transport.OnNotifyEvent();
    }

    [Fact]
    public void Transmit_chains_stay_in_the_ring_while_the_console_is_full_and_nothing_is_dropped()
    {
        OfferAll();

        // The writer thread holds one chunk at the blocked sink; the buffer behind it fills, then the device stops.
        Assert.True(SpinWait.SpinUntil(() => _console.TransmitStalled, Bound), "the device never stalled on the full console");
        Assert.InRange(_tx.UsedIdx, 0, 2); // 256 + what the writer took fit at most one 200-byte chain and a bit
        Assert.Equal(0, _output.DroppedBytes);
        Assert.Equal(0, _output.FreeSpace);
        Assert.True(_console.BytesTransmitted < _expected.Length);
    }

    [Fact]
    public void Once_the_console_drains_every_byte_arrives_in_order_and_every_chain_comes_back()
    {
        OfferAll();
        Assert.True(SpinWait.SpinUntil(() => _console.TransmitStalled, Bound));
        _driver.Write(VirtioMmioRegisters.InterruptAck, _transport.InterruptStatus);
        Assert.Equal(0u, _transport.InterruptStatus);
        _memory.Write(TestRing.Avail + 4 + (2 * 16), (ushort)_tx.UsedIdx); // used_event (EVENT_IDX): wake me at the next one

        _sink.Open();

        var clock = Stopwatch.StartNew();
        while (_tx.UsedIdx < Chains && clock.Elapsed < Bound)
        {
            Thread.Sleep(5);
        }
        Assert.Equal(Chains, _tx.UsedIdx);
        Assert.True(_output.Flush(Bound));
        Assert.Equal(_expected, _sink.Written);
        Assert.Equal(0, _output.DroppedBytes);
        Assert.False(_console.TransmitStalled);
        Assert.True((_transport.InterruptStatus & 1) != 0, "no used-buffer interrupt after the console drained");
    }

    [Fact]
    public void A_reset_while_stalled_forgets_the_half_sent_chain()
    {
        OfferAll();
        Assert.True(SpinWait.SpinUntil(() => _console.TransmitStalled, Bound));

        _console.Reset();

        Assert.False(_console.TransmitStalled);
        _sink.Open();
        Assert.True(_output.Flush(Bound));
        Assert.Equal(0, _output.DroppedBytes); // what was taken before the reset still reaches the sink
    }
}
