using System.Text;
using VmmSharp.Devices.Consoles;
using VmmSharp.Devices.Virtio.Console;
using VmmSharp.Devices.Virtio.Mmio;
using VmmSharp.Memory;
using D = VmmSharp.Devices.Virtio.Queues.VirtqDescriptor;

namespace VmmSharp.Tests.Devices.Virtio;

/// <summary>virtio-console's one port: transmit to the host stream, receive into the guest's posted buffers.</summary>
public sealed class VirtioConsoleTests : IDisposable
{
    private const ulong RxDesc = 0x5000, RxAvail = 0x6000, RxUsed = 0x7000;

    private readonly GuestMemory _memory = GuestMemory.WithRam(1 << 20);
    private readonly MemoryStream _output = new();
    private readonly ConsoleOutput _consoleOutput;
    private readonly VirtioConsole _console;
    private readonly VirtioMmioTransport _transport;

    public VirtioConsoleTests()
    {
        _consoleOutput = new ConsoleOutput(_output);
        _console = new VirtioConsole(_consoleOutput);
        _transport = new VirtioMmioTransport(_console, _memory, 0xd000_0000, new RecordingIrqLine());
        var driver = new MmioDriver(_transport);
        Assert.True(driver.Negotiate(VmmSharp.Devices.Virtio.VirtioFeatures.Common));
        driver.SetUpQueue(0, 16, RxDesc, RxAvail, RxUsed);
        driver.SetUpQueue(1, 16, TestRing.Desc, TestRing.Avail, TestRing.Used);
        driver.DriverOk();
    }

    public void Dispose()
    {
        _transport.Dispose();
        _console.Dispose();
        _consoleOutput.Dispose();
        _memory.Dispose();
    }

    [Fact]
    public void What_the_guest_transmits_reaches_the_output_stream()
    {
        var tx = new TestRing(_memory, _console.Queues[1], activate: false);
        _memory.Write(TestRing.Data, "hello, "u8);
        _memory.Write(TestRing.Data + 0x100, "hvc0\n"u8);
        tx.SetDescriptor(0, TestRing.Data, 7, D.FlagNext, 1);
        tx.SetDescriptor(1, TestRing.Data + 0x100, 5);
        tx.Offer(0);

        _transport.OnNotifyEvent();

        Assert.True(_consoleOutput.Flush(TimeSpan.FromSeconds(10)));
        Assert.Equal("hello, hvc0\n", Encoding.ASCII.GetString(_output.ToArray()));
        Assert.Equal(1, tx.UsedIdx);
    }

    [Fact]
    public void Input_fills_the_posted_receive_buffers_and_what_does_not_fit_is_not_taken()
    {
        // The receive ring sits at other addresses than TestRing's defaults: write it by hand.
        _memory.Write(RxDesc, new D { Address = 0x9000, Length = 4, Flags = D.FlagWrite });
        _memory.Write(RxAvail + 4, (ushort)0);
        _memory.Write(RxAvail + 2, (ushort)1);

        int taken = _console.EnqueueInput("abcdefgh"u8);

        Assert.Equal(4, taken);
        byte[] got = new byte[4];
        _memory.Read(0x9000, got);
        Assert.Equal("abcd"u8.ToArray(), got);
        Assert.Equal(1, _memory.Read<ushort>(RxUsed + 2));
        Assert.Equal(4u, _memory.Read<uint>(RxUsed + 8));
        Assert.Equal(0, _console.EnqueueInput("efgh"u8)); // no buffer left
    }
}
