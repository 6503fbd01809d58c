using VmmSharp.Devices.Consoles;
using VmmSharp.Devices.Virtio;
using VmmSharp.Devices.Virtio.Console;
using VmmSharp.Devices.Virtio.Mmio;
using VmmSharp.Memory;
using D = VmmSharp.Devices.Virtio.Queues.VirtqDescriptor;

namespace VmmSharp.Tests.Devices.Virtio;

/// <summary>virtio-console paused (host input held back) and restored with a posted receive buffer.</summary>
public sealed class VirtioConsoleStateTests : IDisposable
{
    private const ulong RxDesc = 0x5000, RxAvail = 0x6000, RxUsed = 0x7000, RxBuffer = 0x8000;

    private readonly GuestMemory _memory = GuestMemory.WithRam(1 << 20);
    private readonly ConsoleOutput _output = new(Stream.Null);
    private readonly VirtioConsole _console;
    private readonly VirtioMmioTransport _transport;
    private readonly TestRing _rx;

    public VirtioConsoleStateTests()
    {
        _console = new VirtioConsole(_output);
        _transport = new VirtioMmioTransport(_console, _memory, 0xd000_0000, new RecordingIrqLine());
        var driver = new MmioDriver(_transport);
        Assert.True(driver.Negotiate(VirtioFeatures.Common));
        driver.SetUpQueue(0, 16, RxDesc, RxAvail, RxUsed);
        driver.SetUpQueue(1, 16, TestRing.Desc, TestRing.Avail, TestRing.Used);
        driver.DriverOk();
        _rx = new TestRing(_memory, _console.Queues[0], RxDesc, RxAvail, RxUsed);
        _rx.SetDescriptor(0, RxBuffer, 8, D.FlagWrite);
        _rx.Offer(0);
    }

    public void Dispose()
    {
        _transport.Dispose();
        _console.Dispose();
        _output.Dispose();
        _memory.Dispose();
    }

    [Fact]
    public void A_paused_console_takes_no_input_until_resumed()
    {
        _console.Pause();
        Assert.Equal(0, _console.EnqueueInput("hi"u8));
        Assert.Equal(0, _rx.UsedIdx);

        _console.Resume();

        Assert.Equal(2, _console.EnqueueInput("hi"u8));
        Assert.Equal(1, _rx.UsedIdx);
    }

    [Fact]
    public void A_restored_console_delivers_input_into_the_buffer_posted_before_the_snapshot()
    {
        using var fresh = new VirtioConsole(_output);
        using var transport = new VirtioMmioTransport(fresh, _memory, 0xd000_0000, new RecordingIrqLine());
        StateRoundTrip.Copy(_transport, transport);

        Assert.Equal(3, fresh.EnqueueInput("abc"u8));

        Assert.Equal(1, _rx.UsedIdx);
        Assert.Equal((0u, 3u), _rx.UsedElement(0));
        Assert.Equal((byte)'a', _memory.Read<byte>(RxBuffer));
    }
}
